"""Small DynamoDB helpers over PynamoDB: transactions and conditional-failure checks."""
from __future__ import annotations

import functools

from pynamodb.connection import Connection
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
