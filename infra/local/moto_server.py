"""moto's server, with DynamoDB's single-item atomicity and IAM checked as AWS checks it.

DynamoDB applies a conditional write to an item atomically: of racing writers with the same
condition exactly one succeeds. moto's server answers each request on its own thread and
checks a condition, then writes, with nothing held between — under load two racers can both
pass (seen in CI: two of eight checkpoint compare-and-swaps succeeded). Vellum's idempotency
rests on those conditions, and its contract tests race them, so this runs every DynamoDB
request under one lock. SQS and S3 are left concurrent: a long-polling receive waits inside
its request and must not hold up the rest.

IAM (enforced once infra/local/up has provisioned and POSTed 0 to /moto-api/reset-auth):
moto 5 checks signatures and identity policies, but not quite as AWS does. Here:
  - S3 is checked against the IAM action AWS checks, not the API operation's name
    (HeadObject needs s3:GetObject, CreateMultipartUpload/UploadPart/Complete need
    s3:PutObject, ListObjectsV2 and HeadBucket need s3:ListBucket, a version's read or delete
    s3:GetObjectVersion / s3:DeleteObjectVersion); a copy also needs s3:GetObject on its
    source; each key of a DeleteObjects needs s3:DeleteObject; a presigned URL is checked
    against the permissions of the key that signed it.
  - DynamoDB is checked against the table's ARN (an index's for a query on one), every table
    of a batch, and each item action of a transaction (TransactWriteItems needs PutItem,
    UpdateItem, DeleteItem or ConditionCheckItem on each item's table), not against "*".
  - SNS Publish is checked against its topic's ARN, not "*"; SQS GetQueueUrl against the
    queue it names; SQS's batch operations against the single message's action
    (SendMessageBatch needs sqs:SendMessage).
  - A refusal says which action on which resource, as AWS's own messages do, and is logged;
    so is every request ("IAM request: <user> <service>:<operation>"), which is how
    crates/aws/tests/requests.rs counts what each function asks of AWS.
Conditions in policies are not evaluated (moto's evaluation of them is incomplete): Vellum's
policies use none; least privilege rests on actions and resources.
"""

import copy
import json
import re
import sys
import threading
from urllib.parse import parse_qs, unquote, urlparse

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError
import moto.dynamodb.exceptions as _ddb_errors
import moto.dynamodb.models as _dynamodb_models
from moto.dynamodb.models.table import Table as _Table
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.responses import DynamoHandler
from moto.iam.access_control import IAMRequest, S3IAMRequest
from moto.s3.exceptions import S3ClientError
from moto.s3.responses import ACTION_MAP, S3Response
from moto.server import main
from moto.sns.responses import SNSResponse
from moto.sqs.responses import SQSResponse

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action



def log_line(line):
    """One write per line: print() writes the newline separately, so the server's own
    request lines (another thread) could land inside ours, and the counts read from this
    log (crates/aws/tests/requests.rs) would see operations that do not exist."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _one_at_a_time(self):  # type: ignore[no-untyped-def]
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _one_at_a_time  # type: ignore[method-assign]


def _transact_write_items(self, transact_items):  # type: ignore[no-untyped-def]
    """moto's TransactWriteItems (5.2), backing up each item it changes instead of deep-copying
    the whole table once for every item of the transaction (which, on a table the tests have
    filled, took gigabytes and minutes: moto was killed for memory). Rolled back item by item
    in reverse; atomic because every DynamoDB request here runs under one lock."""
    if len(transact_items) > 100:
        raise _ddb_errors.TooManyTransactionsException()
    changed = []  # (table, key, the item before, or None)
    targets = set()

    def roll_back():  # type: ignore[no-untyped-def]
        for table_name, key, before in reversed(changed):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before)

    errors = []
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise _ddb_errors.TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise _ddb_errors.MultipleTransactionsException()
            targets.add(target)
            current = self.get_item(table_name, key)
            if condition is not None:
                if not get_filter_expression(condition, names, values).expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise _ddb_errors.ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
                changed.append((table_name, key, before))
            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition,
                              expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition, expression_attribute_names=names,
                                 expression_attribute_values=values)
            errors.append((None, None, None))
        except (_ddb_errors.MultipleTransactionsException, _ddb_errors.MockValidationException):
            roll_back()
            raise
        except _ddb_errors.ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 (as moto: any other failure cancels the transaction)
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        roll_back()
        raise _ddb_errors.TransactionCanceledException(errors)


_dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]


class _Partition(threading.local):
    hash_key = None


_partition = _Partition()
_query = _Table.query
_all_items = _Table.all_items


def _query_one_partition(self, hash_key, *args, **kwargs):  # type: ignore[no-untyped-def]
    # index_name is the eighth parameter of Table.query, given by name or by position.
    """A query of the table (not an index) reads its one partition. moto lists and sorts
    every item of the table for every query, which makes a query cost as much as the whole
    table the tests have filled (seconds each): the same answer, from the partition alone."""
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name is None and self.range_key_attr and hash_key is not None:
        _partition.hash_key = hash_key
    try:
        return _query(self, hash_key, *args, **kwargs)
    finally:
        _partition.hash_key = None


def _items_of_the_partition(self):  # type: ignore[no-untyped-def]
    if _partition.hash_key is None:
        return _all_items(self)
    return sorted(self.items.get(_partition.hash_key, {}).values(), key=lambda x: x.range_key)


_Table.query = _query_one_partition  # type: ignore[method-assign]
_Table.all_items = _items_of_the_partition  # type: ignore[method-assign]


def _enforced():
    if ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return True
    ActionAuthenticatorMixin.request_count += 1
    return False


def _refused(principal, action, resource):
    log_line(f"IAM refused: {principal} {action} {resource}")


def _check(handler, request_cls, action, resource, signature=True, operation=None):
    """One action on one resource, with the request's credentials. With `operation` (the
    request's first check), the request itself is logged too: requests are counted by it."""
    uri = urlparse(handler.uri)
    path = handler.raw_path + ("?" + uri.query if uri.query else "")
    request = request_cls(
        account_id=handler.current_account,
        method=handler.method,
        path=path,
        data=handler.data,
        body=handler.raw_body,
        headers=handler.headers,
        action=action,
    )
    if signature:
        request.check_signature()
    if operation:
        log_line(f"IAM request: {request._access_key.arn} {operation}")
    try:
        request.check_action_permitted(resource)
        log_line(f"IAM allowed: {request._access_key.arn} {request._action} {resource}")
    except Exception:
        principal = request._access_key.arn
        _refused(principal, request._action, resource)
        if request_cls is S3IAMRequest:
            raise S3ClientError(
                "AccessDenied",
                f"User: {principal} is not authorized to perform: {request._action} on resource: "
                f'"{resource}" because no identity-based policy allows the {request._action} action',
            )
        message = f"User: {principal} is not authorized to perform: {request._action} on resource: {resource}"
        if "json" in (handler.headers.get("Content-Type") or ""):
            # The JSON protocols (DynamoDB, SQS) answer 400 AccessDeniedException, as AWS does.
            error = JsonRESTError("AccessDeniedException", message)
            error.code = 400
            raise error
        raise AccessDeniedError(user_arn=principal, action=f"{request._action} on resource: {resource}")


# S3: the API operation (moto's router names it) -> the IAM action AWS checks.
S3_ACTIONS = {
    "HeadObject": "GetObject",
    "GetObject": "GetObject",
    "GetObjectAttributes": "GetObject",
    "PutObject": "PutObject",
    "CopyObject": "PutObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "UploadPartCopy": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "AbortMultipartUpload": "AbortMultipartUpload",
    "ListParts": "ListMultipartUploadParts",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "HeadBucket": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "DeleteObject": "DeleteObject",
    "DeleteObjects": "DeleteObject",
    "ListBuckets": "ListAllMyBuckets",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "PutBucketNotificationConfiguration": "PutBucketNotification",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "PutBucketObjectLockConfiguration",
    "PutBucketReplication": "PutReplicationConfiguration",
    "GetBucketReplication": "GetReplicationConfiguration",
}
# With ?versionId, a version's own action.
S3_VERSION_ACTIONS = {
    "GetObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectTagging": "GetObjectVersionTagging",
    "PutObjectTagging": "PutObjectVersionTagging",
}


def _s3_action(handler, key_name):
    operation = handler._get_action()
    query = parse_qs(urlparse(handler.uri).query, keep_blank_values=True)
    if operation:
        action = S3_ACTIONS.get(operation, operation)
    else:
        # Unknown to the router: moto's own table, by method and query.
        table = ACTION_MAP["KEY" if key_name else "BUCKET"].get(handler.method, {})
        action = next((a for q, a in table.items() if q in query), table.get("DEFAULT", "Unknown"))
    if "versionId" in query:
        action = S3_VERSION_ACTIONS.get(action, action)
    return operation, action


def _s3_authorize(self, bucket_name=None, key_name=None):  # type: ignore[no-untyped-def]
    if not _enforced():
        return
    operation, action = _s3_action(self, key_name)
    resource = f"arn:aws:s3:::{bucket_name or '*'}" + (f"/{key_name}" if key_name else "")
    query = parse_qs(urlparse(self.uri).query)
    if "Authorization" not in self.headers:
        credential = (query.get("X-Amz-Credential") or [""])[0]
        if not credential:
            _refused("anonymous", f"s3:{action}", resource)
            raise S3ClientError("AccessDenied", f"Anonymous users may not perform s3:{action} on {resource}")
        # A presigned URL: judged by the permissions of the key that signed it.
        # (Its signature is not checked here: moto's check reads the Authorization header.)
        received = self.headers
        self.headers = dict(received)
        self.headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=x"
        try:
            _check(self, S3IAMRequest, action, resource, signature=False, operation=f"s3:{operation}")
        finally:
            self.headers = received
        return
    checks = [(action, resource)]
    source = self.headers.get("x-amz-copy-source")
    if source and operation in ("CopyObject", "UploadPartCopy"):
        source = unquote(source.split("?versionId=")[0]).lstrip("/")
        checks.append(("GetObject", f"arn:aws:s3:::{source}"))
    if operation == "DeleteObjects":
        body = self.raw_body.decode() if isinstance(self.raw_body, bytes) else str(self.raw_body)
        keys = re.findall(r"<Key>(.*?)</Key>", body)
        checks = [("DeleteObject", f"arn:aws:s3:::{bucket_name}/{k}") for k in keys] or checks
    for i, (act, res) in enumerate(checks):
        _check(self, S3IAMRequest, act, res, signature=i == 0, operation=f"s3:{operation}" if i == 0 else None)


S3Response._authenticate_and_authorize_s3_action = _s3_authorize  # type: ignore[method-assign]

# DynamoDB: every table (and index) a request touches, with the action AWS checks on each.
TRANSACT_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def _dynamodb_checks(handler):
    operation = handler._get_action()
    raw = handler.raw_body or handler.body or b"{}"
    try:
        body = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError):
        body = {}
    arn = lambda table: f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{table}"  # noqa: E731
    if operation in ("TransactWriteItems", "TransactGetItems"):
        checks = []
        for item in body.get("TransactItems", []):
            for kind, spec in item.items():
                checks.append((TRANSACT_ITEM_ACTIONS.get(kind, kind), arn(spec.get("TableName", "*"))))
        return checks
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [(operation, arn(t)) for t in body.get("RequestItems", {})]
    table = body.get("TableName")
    if not table:
        return [(operation, "*")]
    resource = arn(table)
    if body.get("IndexName"):
        resource += f"/index/{body['IndexName']}"
    return [(operation, resource)]


def _dynamodb_authorize(self, resource="*"):  # type: ignore[no-untyped-def]
    if not _enforced():
        return
    operation = f"dynamodb:{self._get_action()}"
    for i, (action, res) in enumerate(_dynamodb_checks(self)):
        _check(self, IAMRequest, action, res, signature=i == 0, operation=operation if i == 0 else None)


DynamoHandler._authenticate_and_authorize_normal_action = _dynamodb_authorize  # type: ignore[method-assign]


# SQS's batch operations are authorized by the single message's action.
SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _normal_authorize(self, resource="*"):  # type: ignore[no-untyped-def]
    """Every other service (SQS, SNS, IAM, STS): moto's check, logged as ours are."""
    if not _enforced():
        return
    if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    operation = self._get_action()
    action = SQS_ACTIONS.get(operation, operation) if isinstance(self, SQSResponse) else operation
    _check(self, IAMRequest, action, resource, operation=f"{self.service_name}:{operation}")


ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _normal_authorize  # type: ignore[method-assign]


def _sns_resource(self):  # type: ignore[no-untyped-def]
    return self._get_param("TopicArn") or self._get_param("TargetArn") or "*"


SNSResponse._determine_resource = _sns_resource  # type: ignore[attr-defined]

_sqs_resource = SQSResponse._determine_resource


def _sqs_queue_resource(self):  # type: ignore[no-untyped-def]
    """GetQueueUrl and CreateQueue name their queue by QueueName, not QueueUrl."""
    name = self._get_param("QueueName")
    if name:
        return f"arn:aws:sqs:{self.region}:{self.current_account}:{name}"
    return _sqs_resource(self)


SQSResponse._determine_resource = _sqs_queue_resource  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
