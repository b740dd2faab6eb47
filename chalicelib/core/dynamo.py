"""Small DynamoDB helpers over PynamoDB: conditional writes, transactions, conditional-failure checks.

Conditional writes are how every consumer here stays idempotent and every state move stays ordered: a write
whose condition does not hold (a replay, an older event, a racing writer who won) is an answer, not an error.

    if not update_if(order, [PickerOrder.status.set("paid")], PickerOrder.last_event < version):
        ...  # someone newer got there first: nothing changed
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from botocore.awsrequest import AWSResponse
from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from .storage import TableMeta

_REHEARSAL = "chalicelib.core.dynamo.rehearsal"


@functools.cache
def _connection() -> Connection:
    # The tables' own settings: their timeouts, and the very DynamoDB client they share (core.aws).
    return Connection(region=TableMeta.region, host=TableMeta.host,
                      connect_timeout_seconds=TableMeta.connect_timeout_seconds,
                      read_timeout_seconds=TableMeta.read_timeout_seconds,
                      max_retry_attempts=TableMeta.max_retry_attempts,
                      max_pool_connections=TableMeta.max_pool_connections)


def warm_up() -> None:
    """What a Lambda's first DynamoDB call would do once per process, done in its init phase instead, so its first
    request costs about what the second does (bench/cold_start.py): make the client every table shares (~15-20 ms
    of botocore work), then rehearse a read on it (a GetItem and a Query: serialising, endpoint rules, signing, the
    user agent, parsing an answer, ~4 ms) against a canned empty answer: nothing leaves the process, so no grant
    is needed. Best effort: a rehearsal that fails leaves that work to the first request."""
    client = _connection().client
    import encodings.idna  # noqa: F401 - the first connection encodes the endpoint's host name with it

    client.meta.events.register_first("before-send.dynamodb", _canned_answer, unique_id=_REHEARSAL)
    try:
        client.get_item(TableName="rehearsal", Key={"key": {"S": "rehearsal"}})
        client.query(TableName="rehearsal", KeyConditionExpression="#key = :key",
                     ExpressionAttributeNames={"#key": "key"}, ExpressionAttributeValues={":key": {"S": "rehearsal"}})
    except Exception:  # noqa: BLE001 - e.g. no credentials where a test imports a handler: not an error here
        pass
    finally:
        client.meta.events.unregister("before-send.dynamodb", unique_id=_REHEARSAL)


class _CannedBody:
    def stream(self):
        yield b"{}"


def _canned_answer(request, **_) -> AWSResponse:
    """botocore's before-send hook: an answer in place of sending the request."""
    return AWSResponse(request.url, 200, {}, _CannedBody())


def transaction() -> TransactWrite:
    """`with transaction() as tx: tx.save(...); tx.update(...)`: all or nothing, up to 100 items."""
    return TransactWrite(connection=_connection())


def condition_failed(error: Exception) -> bool:
    """True when a write failed only because its condition did not hold."""
    code = getattr(error, "cause_response_code", None)
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = [r for r in (getattr(error, "cancellation_reasons", None) or []) if r is not None]
        return bool(reasons) and all(r.code in ("ConditionalCheckFailed", "None") for r in reasons)
    return False


def _applied(write: Callable[[], Any]) -> bool:
    try:
        write()
    except (PutError, UpdateError, DeleteError, TransactWriteError) as error:
        if condition_failed(error):
            return False
        raise
    return True


def update_if(item, actions: list, condition) -> bool:
    """One conditional UpdateItem: True when applied, False when its condition did not hold (anything else
    raises). PynamoDB refreshes `item` from the answer when applied."""
    return _applied(lambda: item.update(actions=actions, condition=condition))


def save_if(item, condition) -> bool:
    """One conditional PutItem: True when written, False when its condition did not hold."""
    return _applied(lambda: item.save(condition=condition))


def delete_if(item, condition) -> bool:
    """One conditional DeleteItem: True when deleted, False when its condition did not hold."""
    return _applied(lambda: item.delete(condition=condition))


def transact_if(build: Callable[[TransactWrite], None]) -> bool:
    """One transaction, written by `build(tx)`: True when committed, False when a condition of it did not hold
    (a conflict with a concurrent transaction, or any other failure, raises)."""

    def write() -> None:
        with transaction() as tx:
            build(tx)

    return _applied(write)
