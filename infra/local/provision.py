"""Provisions on the emulator what template.yaml describes, idempotently: run it again and
nothing changes. Reads the endpoint and region from the environment."""
import json

import boto3

PREFIX = "vellum-local-"
STAGES = ["start", "extract", "checksum", "scan", "identify", "characterize", "normalize", "mets", "package", "store"]
MAX_RECEIVES = 5
# Six times the longest function timeout (15 minutes), as the template sets it.
VISIBILITY = str(6 * 900)

s3 = boto3.client("s3")
sqs = boto3.client("sqs")
ddb = boto3.client("dynamodb")
sns = boto3.client("sns")
region = s3.meta.region_name

for name in ["uploads", "working", "aips", "aips-replica", "dips"]:
    bucket = PREFIX + name
    locked = name.startswith("aips")
    created = True
    try:
        # The AIP buckets under Object Lock, as the template makes them (versioned by it).
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": region},
            ObjectLockEnabledForBucket=locked,
        )
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        created = False
    if name == "uploads":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if locked and created:
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}},
        )

# Each stage's queue, and the long-job queue the normalize function hands long jobs to
# (hidden for 12 hours while one runs, as the template makes it).
QUEUES = {**{stage: VISIBILITY for stage in STAGES}, "normalize-long": str(12 * 3600)}

urls = {}
for stage, visibility in QUEUES.items():
    dlq = sqs.create_queue(QueueName=f"{PREFIX}{stage}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    urls[stage] = sqs.create_queue(
        QueueName=f"{PREFIX}{stage}",
        Attributes={
            "VisibilityTimeout": visibility,
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}),
        },
    )["QueueUrl"]

start_arn = sqs.get_queue_attributes(QueueUrl=urls["start"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
s3.put_bucket_notification_configuration(
    Bucket=PREFIX + "uploads",
    NotificationConfiguration={
        "QueueConfigurations": [
            {
                "QueueArn": start_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": suffix}]}},
            }
            # Every package, wherever it is put: intake refuses one outside the profile
            # prefixes with a log the archivist can read. Vellum's own logs end in .log.
            for suffix in [".zip", ".tar.gz", ".tgz", ".tar"]
        ]
    },
)

table = PREFIX + "state"
if table not in ddb.list_tables()["TableNames"]:
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"}
            for a in ["pk", "sk", "gsi1pk", "gsi1sk"]
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "transfers-by-time",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})

# Users, API keys and sessions: a table of their own, which only the dashboard's role reaches.
access = PREFIX + "access"
if access not in ddb.list_tables()["TableNames"]:
    ddb.create_table(
        TableName=access,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ["pk", "sk"]],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    ddb.update_time_to_live(TableName=access, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})

sns.create_topic(Name=PREFIX + "aip-stored")
print(f"provisioned: 5 buckets, {len(QUEUES)} queues with dead-letter queues, tables {table} and {access}, topic {PREFIX}aip-stored")
