"""Small DynamoDB helpers over PynamoDB: conditional writes, transactions, conditional-failure checks.

Conditional writes are how every consumer here stays idempotent and every state move stays ordered: a write
whose condition does not hold (a replay, an older event, a racing writer who won) is an answer, not an error.

    if not update_if(order, [PickerOrder.status.set("paid")], PickerOrder.last_event < version):
        ...  # someone newer got there first: nothing changed
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from .storage import TableMeta


@functools.cache
def _connection() -> Connection:
    # The tables' own settings: their timeouts, and the very DynamoDB client they share (core.aws).
    return Connection(region=TableMeta.region, host=TableMeta.host,
                      connect_timeout_seconds=TableMeta.connect_timeout_seconds,
                      read_timeout_seconds=TableMeta.read_timeout_seconds,
                      max_retry_attempts=TableMeta.max_retry_attempts,
                      max_pool_connections=TableMeta.max_pool_connections)


def warm_up() -> None:
    """Make the DynamoDB client every table shares now (~15-20 ms of botocore work), so that a Lambda pays
    for it in its init phase rather than inside its first request."""
    _connection().client


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
