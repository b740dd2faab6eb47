"""Base for every PynamoDB table of the app.

Subclasses are the one source of truth for table names, keys, indexes and TTL: the deploy template is
generated from them (deploy/template.py), so a table cannot drift from the code that reads it.
"""
from __future__ import annotations

import datetime as dt
import os
from typing import Any, TypeVar

import pynamodb.connection.base
from pynamodb.attributes import NumberAttribute, TTLAttribute
from pynamodb.models import Model

from . import clock
from .aws import botocore_session

# PynamoDB makes a new botocore session per table connection (each re-reads botocore's data, ~60-100 ms
# per table at cold start); every table and transaction shares the thread's session instead.
pynamodb.connection.base.get_session = botocore_session


class TableMeta:
    """Connection settings every table shares; subclasses write `class Meta(TableMeta): table_name = ...`."""

    # None in AWS; the emulator's address locally. Read at import, as PynamoDB expects.
    host = os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    billing_mode = "PAY_PER_REQUEST"
    connect_timeout_seconds = 2
    read_timeout_seconds = 3
    max_retry_attempts = 3
    # Every table shares one client (core.aws), so one pool: wide enough for the widest thread pool that
    # writes (the deptrans sender, up to 64), or urllib3 drops and reopens connections past 10. Opened lazily.
    max_pool_connections = 64


class Table(Model):
    """Base of the app's tables (discovered by the template generator); never instantiated itself."""

    class Meta(TableMeta):
        table_name = None


def ttl_attribute_name(model: type[Table]) -> str | None:
    for name, attribute in model.get_attributes().items():
        if isinstance(attribute, TTLAttribute):
            return attribute.attr_name or name
    return None


def is_live(expires_at: dt.datetime | None) -> bool:
    """DynamoDB deletes expired items late (hours on AWS, a minute locally): every read must filter."""
    return expires_at is None or expires_at > clock.now()


T = TypeVar("T", bound=Model)


def get_live(model: type[T], hash_key: Any, range_key: Any = None, *, consistent_read: bool = False) -> T | None:
    """The item if it exists and has not expired (by the model's TTL attribute: TTL deletes late), else None."""
    try:
        item = model.get(hash_key, range_key, consistent_read=consistent_read)
    except model.DoesNotExist:
        return None
    expiry = next((name for name, attribute in model.get_attributes().items()
                   if isinstance(attribute, TTLAttribute)), None)
    return item if expiry is None or is_live(getattr(item, expiry)) else None


def epoch(moment: dt.datetime) -> int:
    return int(clock.to_utc(moment).timestamp())


class EpochSeconds(NumberAttribute):
    """A datetime stored as integer epoch seconds (sortable, comparable in conditions)."""

    def serialize(self, value: dt.datetime):
        return super().serialize(epoch(value))

    def deserialize(self, value):
        return dt.datetime.fromtimestamp(super().deserialize(value), dt.timezone.utc)
