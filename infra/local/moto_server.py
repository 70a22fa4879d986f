"""moto's server, with DynamoDB's single-item atomicity.

DynamoDB applies a conditional write to an item atomically: of racing writers with the same
condition exactly one succeeds. moto's server answers each request on its own thread and
checks a condition, then writes, with nothing held between — under load two racers can both
pass (seen in CI: two of eight checkpoint compare-and-swaps succeeded). Vellum's idempotency
rests on those conditions, and its contract tests race them, so this runs every DynamoDB
request under one lock. SQS and S3 are left concurrent: a long-polling receive waits inside
its request and must not hold up the rest.
"""

import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action


def _one_at_a_time(self):  # type: ignore[no-untyped-def]
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _one_at_a_time  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
