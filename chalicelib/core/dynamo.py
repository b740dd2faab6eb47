"""Small DynamoDB helpers over PynamoDB: transactions and conditional-failure checks."""
from __future__ import annotations

import functools

from pynamodb.connection import Connection
from pynamodb.transactions import TransactWrite

from .storage import TableMeta


@functools.cache
def _connection() -> Connection:
    return Connection(region=TableMeta.region, host=TableMeta.host)


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
