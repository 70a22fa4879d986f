"""Reads a SAM template and checks the rules Vellum's template keeps: every policy statement
names its actions and resources (no "*" action or resource, no "service:*"), every queue
that is not a dead-letter queue has one (a redrive policy), every SQS event source reports
per-message failures, and there is a queue for each of the nine stages.

usage: check_template.py TEMPLATE   (exit 1 and a line per problem when a rule is broken)"""
import sys

from cfnlint.decode import cfn_yaml

STAGES = ["start", "extract", "checksum", "scan", "identify", "characterize", "mets", "package", "store"]


def as_list(v):
    return v if isinstance(v, list) else [v]


def wildcard(value):
    return isinstance(value, str) and (value == "*" or value.endswith(":*"))


def main(path):
    template = cfn_yaml.load(path)
    resources = template.get("Resources", {})
    problems = []
    for name, res in resources.items():
        kind = res.get("Type")
        props = res.get("Properties", {}) or {}
        if kind == "AWS::Serverless::Function":
            for policy in as_list(props.get("Policies", [])):
                if not isinstance(policy, dict) or "Statement" not in policy:
                    problems.append(f"{name}: a policy that is not a statement list (a managed or template policy): {policy}")
                    continue
                for st in as_list(policy["Statement"]):
                    for action in as_list(st.get("Action", [])):
                        if wildcard(action):
                            problems.append(f"{name}: the action {action!r} is a wildcard")
                    for resource in as_list(st.get("Resource", [])):
                        if wildcard(resource):
                            problems.append(f"{name}: the resource {resource!r} is a wildcard")
            for ev_name, ev in (props.get("Events") or {}).items():
                if ev.get("Type") == "SQS":
                    types = (ev.get("Properties") or {}).get("FunctionResponseTypes", [])
                    if "ReportBatchItemFailures" not in types:
                        problems.append(f"{name}.{ev_name}: no ReportBatchItemFailures")
        if kind == "AWS::SQS::Queue":
            qname = str(props.get("QueueName", name))
            if "DeadLetter" not in name and "dlq" not in qname:
                if "deadLetterTargetArn" not in (props.get("RedrivePolicy") or {}):
                    problems.append(f"{name}: a queue without a dead-letter queue")
    queue_names = " ".join(str((r.get("Properties") or {}).get("QueueName", "")) for r in resources.values())
    for stage in STAGES:
        if f"-{stage}}}" not in queue_names.replace('"', "") and f"-{stage}" not in queue_names:
            problems.append(f"no queue for the {stage} stage")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
