"""Reads a SAM template and checks the rules Vellum's template keeps: every policy statement
names its actions and resources (no "*" action or resource, no "service:*"; "*" only for
an action AWS grants on nothing narrower, ECR's pull token), every queue
that is not a dead-letter queue has one (a redrive policy), every SQS event source reports
per-message failures, there is a queue for each of the nine stages, every function has an
alarm on its errors, an IAM role's inline policies keep the same rule, the dashboard sits
behind an HTTP API with a JWT authorizer, and the monitor has a schedule. What is preserved
outlives the stack: every bucket that does not expire its objects, and every table, is
retained on delete and replace; the AIP bucket is versioned and under Object Lock; every
bucket refuses requests without TLS; the AIPs and their second copy (VELLUM_REPLICA_BUCKET)
are versioned, under Object Lock and encrypted with a customer-managed KMS key that rotates;
no table has a local secondary index. Flow control: every SQS event source has a maximum
concurrency, every function it drives allows its own continuation loop (RecursiveLoop), and
every dead-letter queue has an alarm, every stage queue an alarm on the age of its oldest
message, every function one on its throttles, and every SQS-driven function one on the
messages it gives back (the handler's BatchItemFailures metric). Every function logs to a log group with a retention.
Every function is built as the template says: a zip function by its Makefile (runtime and
handler its own), the characterize and normalize functions as container images whose
Dockerfiles install their tools (ExifTool and MediaInfo; ImageMagick, FFmpeg, Ghostscript and
Tesseract, MediaConch) at pinned versions and run each once while they build.

usage: check_template.py TEMPLATE   (exit 1 and a line per problem when a rule is broken)"""
import sys

from cfnlint.decode import cfn_yaml

STAGES = ["start", "extract", "checksum", "scan", "identify", "characterize", "normalize", "mets", "package", "store"]


def as_list(v):
    return v if isinstance(v, list) else [v]


def wildcard(value):
    return isinstance(value, str) and (value == "*" or value.endswith(":*"))


# Actions AWS grants on no narrower resource than "*" (ECR's pull token): a statement of
# only these may name it.
STAR_ONLY = {"ecr:GetAuthorizationToken"}


def statements_problems(name, statements):
    problems = []
    for st in as_list(statements):
        actions = as_list(st.get("Action", []))
        for action in actions:
            if wildcard(action):
                problems.append(f"{name}: the action {action!r} is a wildcard")
        star_only = bool(actions) and all(a in STAR_ONLY for a in actions)
        for resource in as_list(st.get("Resource", [])):
            if wildcard(resource) and not (star_only and resource == "*"):
                problems.append(f"{name}: the resource {resource!r} is a wildcard")
    return problems


def refs(value):
    """Every resource name a Ref or GetAtt in value points at."""
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else str(v).split(".")[0])
            else:
                found |= refs(v)
    elif isinstance(value, list):
        for v in value:
            found |= refs(v)
    return found


def main(path):
    template = cfn_yaml.load(path)
    resources = template.get("Resources", {})
    problems = []
    alarmed = set()
    throttle_alarmed = set()
    for res in resources.values():
        if res.get("Type") == "AWS::CloudWatch::Alarm":
            props = res.get("Properties") or {}
            if props.get("MetricName") == "Errors":
                alarmed |= refs(props.get("Dimensions"))
            if props.get("MetricName") == "Throttles":
                throttle_alarmed |= refs(props.get("Dimensions"))
    for name, res in resources.items():
        kind = res.get("Type")
        props = res.get("Properties", {}) or {}
        if kind == "AWS::IAM::Role":
            for policy in as_list(props.get("Policies", [])):
                problems += statements_problems(name, (policy.get("PolicyDocument") or {}).get("Statement", []))
            if props.get("ManagedPolicyArns"):
                problems.append(f"{name}: a managed policy, not one of its own")
        if kind == "AWS::Serverless::Function":
            if name not in alarmed:
                problems.append(f"{name}: no alarm on its errors")
            if name not in throttle_alarmed:
                problems.append(f"{name}: no alarm on its throttles")
            for policy in as_list(props.get("Policies", [])):
                if not isinstance(policy, dict) or "Statement" not in policy:
                    problems.append(f"{name}: a policy that is not a statement list (a managed or template policy): {policy}")
                    continue
                problems += statements_problems(name, policy["Statement"])
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
    problems += dashboard_and_monitor_problems(resources)
    problems += preservation_problems(template, resources)
    problems += flow_control_problems(resources)
    problems += build_problems(path, resources)
    for p in problems:
        print(p)
    return 1 if problems else 0


def dashboard_and_monitor_problems(resources):
    problems = []
    functions = {n: r.get("Properties") or {} for n, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"}
    dashboard = next((p for p in functions.values() if str(p.get("CodeUri", "")).endswith("dashboard")), None)
    monitor = next((p for p in functions.values() if str(p.get("CodeUri", "")).endswith("monitor")), None)
    if dashboard is None:
        problems.append("no dashboard function")
    else:
        apis = set()
        for ev in (dashboard.get("Events") or {}).values():
            if ev.get("Type") == "HttpApi":
                apis |= refs((ev.get("Properties") or {}).get("ApiId"))
        jwt = False
        for api in apis:
            auth = ((resources.get(api) or {}).get("Properties") or {}).get("Auth") or {}
            default = (auth.get("Authorizers") or {}).get(auth.get("DefaultAuthorizer"), {})
            jwt = jwt or "JwtConfiguration" in default
        if not jwt:
            problems.append("the dashboard is not behind an HTTP API whose default authorizer is a JWT authorizer")
    if monitor is None or not any(
        ev.get("Type") in ("Schedule", "ScheduleV2") for ev in (monitor.get("Events") or {}).values()
    ):
        problems.append("no monitor function on a schedule")
    return problems


def preservation_problems(template, resources):
    problems = []
    tls_only = set()
    for res in resources.values():
        if res.get("Type") != "AWS::S3::BucketPolicy":
            continue
        props = res.get("Properties") or {}
        for st in as_list((props.get("PolicyDocument") or {}).get("Statement", [])):
            secure = ((st.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport")
            if st.get("Effect") == "Deny" and str(secure).lower() == "false" and "s3:*" in as_list(st.get("Action")):
                tls_only |= refs(props.get("Bucket"))
    env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    variables = env.get("Variables") or {}
    aip_buckets = refs(variables.get("VELLUM_AIPS_BUCKET")) | refs(variables.get("VELLUM_REPLICA_BUCKET"))
    if not refs(variables.get("VELLUM_REPLICA_BUCKET")):
        problems.append("no second storage location for the AIPs (VELLUM_REPLICA_BUCKET names no bucket)")
    for name, res in resources.items():
        kind = res.get("Type")
        props = res.get("Properties") or {}
        if kind == "AWS::S3::Bucket":
            expires = any(
                "ExpirationInDays" in rule for rule in (props.get("LifecycleConfiguration") or {}).get("Rules", [])
            )
            if not expires and (res.get("DeletionPolicy") != "Retain" or res.get("UpdateReplacePolicy") != "Retain"):
                problems.append(f"{name}: preserved bytes not retained (DeletionPolicy and UpdateReplacePolicy: Retain)")
            if name not in tls_only:
                problems.append(f"{name}: no bucket policy refusing requests without TLS")
            if name in aip_buckets:
                if (props.get("VersioningConfiguration") or {}).get("Status") != "Enabled":
                    problems.append(f"{name}: the AIP bucket is not versioned")
                if props.get("ObjectLockEnabled") is not True or not props.get("ObjectLockConfiguration"):
                    problems.append(f"{name}: the AIP bucket is not under Object Lock")
                rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
                keys = set()
                for rule in rules:
                    default = rule.get("ServerSideEncryptionByDefault") or {}
                    if default.get("SSEAlgorithm") == "aws:kms":
                        keys |= refs(default.get("KMSMasterKeyID"))
                rotated = [
                    k
                    for k in keys
                    if (resources.get(k) or {}).get("Type") == "AWS::KMS::Key"
                    and ((resources[k].get("Properties") or {}).get("EnableKeyRotation") is True)
                ]
                if not rotated:
                    problems.append(f"{name}: the AIP bucket is not encrypted with a customer-managed KMS key that rotates")
        if kind == "AWS::DynamoDB::Table":
            if props.get("LocalSecondaryIndexes"):
                problems.append(f"{name}: a local secondary index caps each partition's items at 10 GB")
            if res.get("DeletionPolicy") != "Retain" or res.get("UpdateReplacePolicy") != "Retain":
                problems.append(f"{name}: the table is not retained (DeletionPolicy and UpdateReplacePolicy: Retain)")
    if not aip_buckets:
        problems.append("no AIP bucket named by VELLUM_AIPS_BUCKET")
    return problems


def flow_control_problems(resources):
    problems = []
    alarmed_queues = set()
    aged_queues = set()
    retained_logs = {
        n for n, r in resources.items()
        if r.get("Type") == "AWS::Logs::LogGroup" and (r.get("Properties") or {}).get("RetentionInDays")
    }
    retried_stages = set()
    for res in resources.values():
        if res.get("Type") == "AWS::CloudWatch::Alarm":
            props = res.get("Properties") or {}
            alarmed_queues |= refs(props.get("Dimensions"))
            if props.get("MetricName") == "BatchItemFailures":
                for d in as_list(props.get("Dimensions") or []):
                    if isinstance(d, dict) and d.get("Name") == "Stage":
                        retried_stages.add(str(d.get("Value")))
            if props.get("MetricName") == "ApproximateAgeOfOldestMessage":
                aged_queues |= refs(props.get("Dimensions"))
    for name, res in resources.items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function":
            if not refs((props.get("LoggingConfig") or {}).get("LogGroup")) & retained_logs:
                problems.append(f"{name}: no log group with a retention")
            queued = False
            for ev_name, ev in (props.get("Events") or {}).items():
                if ev.get("Type") == "SQS":
                    queued = True
                    scaling = (ev.get("Properties") or {}).get("ScalingConfig") or {}
                    if "MaximumConcurrency" not in scaling:
                        problems.append(f"{name}.{ev_name}: no maximum concurrency")
                    # The handler's metric of messages given back (lambda.rs), by stage.
                    stage = "".join(refs((ev.get("Properties") or {}).get("Queue"))).lower().removesuffix("queue")
                    if stage not in retried_stages:
                        problems.append(f"{name}.{ev_name}: no alarm on its batch-item failures (Vellum/BatchItemFailures)")
            if queued and props.get("RecursiveLoop") != "Allow":
                problems.append(f"{name}: continues through its own queue without RecursiveLoop: Allow")
        if res.get("Type") == "AWS::SQS::Queue":
            qname = str(props.get("QueueName", name))
            if ("DeadLetter" in name or "dlq" in qname) and name not in alarmed_queues:
                problems.append(f"{name}: a dead-letter queue without an alarm")
            if "deadLetterTargetArn" in (props.get("RedrivePolicy") or {}) and name not in aged_queues:
                problems.append(f"{name}: no alarm on the age of its oldest message")
    return problems



def build_problems(path, resources):
    """Each function as it is built: a zip by its Makefile, or an image by its Dockerfile."""
    import os
    import re

    top = os.path.dirname(os.path.abspath(path))
    problems = []
    for name, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        meta = res.get("Metadata") or {}
        if props.get("PackageType") == "Image":
            dockerfile = os.path.join(top, str(meta.get("DockerContext", ".")), str(meta.get("Dockerfile", "")))
            try:
                text = open(dockerfile).read()
            except OSError:
                problems.append(f"{name}: an image function without its Dockerfile ({dockerfile})")
                continue
            tools = {
                "CharacterizeFunction": [
                    ("ExifTool", "EXIFTOOL_VERSION", "exiftool -ver"),
                    ("MediaInfo", "MEDIAINFO_VERSION", "mediainfo --Version"),
                ],
                "NormalizeFunction": [
                    ("ImageMagick", "IMAGEMAGICK_VERSION", "convert -version"),
                    ("FFmpeg", "FFMPEG_VERSION", "ffmpeg -version"),
                    ("Ghostscript", "GHOSTSCRIPT_VERSION", "gs --version"),
                    ("Tesseract", "TESSERACT_VERSION", "tesseract --version"),
                    ("MediaConch", "MEDIACONCH_VERSION", "mediaconch --version"),
                    ("ExifTool", "EXIFTOOL_VERSION", "exiftool -ver"),
                    ("MediaInfo", "MEDIAINFO_VERSION", "mediainfo --Version"),
                ],
            }
            if name in tools:
                for tool, version, check in tools[name]:
                    if not re.search(rf"^ARG {version}=\S+$", text, re.M):
                        problems.append(f"{name}: the image does not pin {tool} ({version})")
                    if check not in text:
                        problems.append(f"{name}: the image's build does not run {tool} once ({check!r})")
        else:
            if props.get("Runtime") != "provided.al2023" or props.get("Handler") != "bootstrap":
                problems.append(f"{name}: a zip function without its own provided.al2023 runtime and bootstrap handler")
            makefile = os.path.join(top, str(props.get("CodeUri", "")), "Makefile")
            if meta.get("BuildMethod") != "makefile" or not os.path.exists(makefile):
                problems.append(f"{name}: not built by its Makefile (BuildMethod: makefile, {makefile})")
            elif f"build-{name}:" not in open(makefile).read():
                problems.append(f"{name}: its Makefile has no build-{name} target")
    for name, tools in [("CharacterizeFunction", "ExifTool and MediaInfo"), ("NormalizeFunction", "ImageMagick, FFmpeg, Ghostscript, Tesseract and MediaConch")]:
        function = resources.get(name) or {}
        if (function.get("Properties") or {}).get("PackageType") != "Image":
            problems.append(f"{name}: not a container image, so {tools} are not beside it")
    return problems


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
