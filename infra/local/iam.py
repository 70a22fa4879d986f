"""Gives every function of template.yaml its own IAM user on the emulator, holding exactly the
policies CloudFormation would give its role, so that the local runner can act as each
function and the emulator (IAM enforced) refuses what its role does not allow.

What a function's role holds, as SAM builds it:
  - its `Policies` (inline documents and SAM policy templates), intrinsic functions resolved
    against this stack's names (NamePrefix "vellum-local", the emulator's account and region);
  - AWSLambdaBasicExecutionRole (logs only), and for a function with an SQS event
    AWSLambdaSQSQueueExecutionRole (sqs:ReceiveMessage, DeleteMessage, GetQueueAttributes on
    every queue: AWS's managed policy is that wide).

Also an operator user (every action: the person who deploys and uploads, and the tests'
own hand). Prints the users file's JSON, or writes it (--out): {"<LogicalId>":
{"access_key_id", "secret_access_key"}, ...}, the operator as "operator".

usage: iam.py [--template template.yaml] [--suffix S] [--out FILE] [--show-policies]
  --suffix S      names the users <LogicalId><S> (a second set beside the first)
  --show-policies prints each function's resolved policy instead of creating users
"""
import argparse
import json
import sys

from cfnlint.decode import cfn_yaml

ACCOUNT = "123456789012"
PARTITION = "aws"

# What each name resolves to on the emulator (infra/local/up exports the same).
PARAMETERS = {"NamePrefix": "vellum-local", "Environment": "staging", "ConfigS3Uri": "", "ScannerMode": "none"}

# SAM's managed policies, as AWS defines them (only the statements that reach these services).
BASIC_EXECUTION = {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}
SQS_QUEUE_EXECUTION = {
    "Effect": "Allow",
    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
    "Resource": "*",
}


class Unresolvable(Exception):
    pass


class Stack:
    def __init__(self, template, region):
        self.template = template
        self.region = region
        self.resources = template.get("Resources", {})
        self.parameters = {}
        for name, spec in template.get("Parameters", {}).items():
            if name in PARAMETERS:
                self.parameters[name] = PARAMETERS[name]
            elif "Default" in spec:
                self.parameters[name] = spec["Default"]
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::StackName": "vellum-local",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def condition(self, name):
        return bool(self.value(self.template["Conditions"][name]))

    def physical_name(self, logical):
        resource = self.resources[logical]
        props = resource.get("Properties", {})
        kind = resource["Type"]
        key = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::Logs::LogGroup": "LogGroupName",
        }.get(kind)
        if key and key in props:
            return self.value(props[key])
        return f"{self.parameters['NamePrefix']}-{logical}"

    def arn(self, logical):
        kind = self.resources[logical]["Type"]
        name = self.physical_name(logical)
        r, a, p = self.region, ACCOUNT, PARTITION
        return {
            "AWS::S3::Bucket": f"arn:{p}:s3:::{name}",
            "AWS::SQS::Queue": f"arn:{p}:sqs:{r}:{a}:{name}",
            "AWS::DynamoDB::Table": f"arn:{p}:dynamodb:{r}:{a}:table/{name}",
            "AWS::SNS::Topic": f"arn:{p}:sns:{r}:{a}:{name}",
            "AWS::Logs::LogGroup": f"arn:{p}:logs:{r}:{a}:log-group:{name}:*",
            "AWS::KMS::Key": f"arn:{p}:kms:{r}:{a}:key/{logical}",
        }.get(kind) or f"arn:{p}:{kind}:{r}:{a}:{logical}"

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            kind = self.resources[name]["Type"]
            if kind == "AWS::SNS::Topic":
                return self.arn(name)
            if kind == "AWS::SQS::Queue":
                return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{self.physical_name(name)}"
            return self.physical_name(name)
        raise Unresolvable(f"Ref {name}")

    def get_att(self, logical, attribute):
        if attribute == "Arn":
            return self.arn(logical)
        if attribute in ("QueueName", "TopicName"):
            return self.physical_name(logical)
        raise Unresolvable(f"GetAtt {logical}.{attribute}")

    def sub(self, text, variables):
        out, i = [], 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            end = text.index("}", start)
            name = text[start + 2 : end]
            if name in variables:
                out.append(str(variables[name]))
            elif "." in name and name.split(".")[0] in self.resources:
                out.append(self.get_att(*name.split(".", 1)))
            else:
                out.append(str(self.ref(name)))
            i = end + 1
        return "".join(out)

    def value(self, v):
        if isinstance(v, list):
            return [x for x in (self.value(x) for x in v) if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self.ref(arg)
            if k == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if k == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], {n: self.value(x) for n, x in arg[1].items()})
                return self.sub(arg, {})
            if k == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if k == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if k == "Fn::Split":
                return str(self.value(arg[1])).split(arg[0])
            if k == "Fn::Join":
                return arg[0].join(str(x) for x in self.value(arg[1]))
            if k == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if k == "Fn::Not":
                return not self.value(arg[0])
            if k == "Fn::And":
                return all(self.value(x) for x in arg)
            if k == "Fn::Or":
                return any(self.value(x) for x in arg)
            if k == "Condition":
                return self.condition(arg)
        out = {}
        for k, x in v.items():
            x = self.value(x)
            if x is not NO_VALUE:
                out[k] = x
        return out

    def functions(self):
        """The functions, and the roles of the code that runs as a task (the long-job worker),
        marked in the template with `Metadata: {vellum: {local-user: true}}`."""
        return {
            n: r
            for n, r in self.resources.items()
            if r["Type"] == "AWS::Serverless::Function"
            or (r["Type"] == "AWS::IAM::Role" and ((r.get("Metadata") or {}).get("vellum") or {}).get("local-user"))
        }

    def policy_of(self, logical):
        """The statements of the function's (or the task's) role, as CloudFormation would
        resolve them."""
        resource = self.functions()[logical]
        props = resource["Properties"]
        if resource["Type"] == "AWS::IAM::Role":
            statements = []
            for policy in props.get("Policies", []):
                st = self.value(policy["PolicyDocument"])["Statement"]
                statements.extend(st if isinstance(st, list) else [st])
            return {"Version": "2012-10-17", "Statement": statements}
        statements = [BASIC_EXECUTION]
        if any(e.get("Type") == "SQS" for e in props.get("Events", {}).values()):
            statements.append(SQS_QUEUE_EXECUTION)
        for policy in props.get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                resolved = self.value(policy)
                st = resolved["Statement"]
                statements.extend(st if isinstance(st, list) else [st])
            else:
                raise Unresolvable(
                    f"{logical}: the policy {policy!r} is a managed policy or a SAM policy template; "
                    "write it as a statement (infra/local/iam.py resolves statements only)"
                )
        return {"Version": "2012-10-17", "Statement": statements}


class _NoValue:
    pass


NO_VALUE = _NoValue()


def create_user(iam, name, policy, known):
    """The user with `policy` as its only policy; its key kept when `known` holds a live one
    (run again, nothing changes but the policy), else a new one."""
    try:
        iam.create_user(UserName=name)
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    iam.put_user_policy(UserName=name, PolicyName="role", PolicyDocument=json.dumps(policy))
    live = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]]
    if known and known["access_key_id"] in live:
        return known
    for stale in live:
        iam.delete_access_key(UserName=name, AccessKeyId=stale)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--template", default="template.yaml")
    args.add_argument("--suffix", default="")
    args.add_argument("--out")
    args.add_argument("--show-policies", action="store_true")
    args.add_argument("--region", default="eu-west-1")
    opts = args.parse_args()
    stack = Stack(cfn_yaml.load(opts.template), opts.region)
    policies = {name: stack.policy_of(name) for name in stack.functions()}
    if opts.show_policies:
        print(json.dumps(policies, indent=2))
        return
    import boto3

    iam = boto3.client("iam", region_name=opts.region)
    known = {}
    if opts.out:
        try:
            with open(opts.out) as f:
                known = json.load(f)
        except (OSError, ValueError):
            pass
    users = {}
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    if not opts.suffix:
        # First: the keys this script itself may be using stay valid.
        users["operator"] = create_user(iam, "operator", everything, known.get("operator"))
    for name, policy in policies.items():
        users[name] = create_user(iam, name + opts.suffix, policy, known.get(name))
    text = json.dumps(users, indent=2)
    if opts.out:
        with open(opts.out, "w") as f:
            f.write(text)
        print(f"{len(users)} users on the emulator, their keys in {opts.out}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    main()
