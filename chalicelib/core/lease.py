"""A lease lock: one runner of a periodic job at a time, across Lambda instances.

A conditional put takes the lease when nobody holds it or the holder's lease has expired, so a runner
that crashed blocks the job for at most `seconds`. DynamoDB TTL cleans old leases; reads never trust it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import time
import uuid

from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from . import clock, coldstart, metrics
from .dynamo import delete_if, save_if
from .errors import describe
from .logs import get_logger
from .storage import EpochSeconds, Table, TableMeta

log = get_logger(__name__)


class Lease(Table):
    class Meta(TableMeta):
        table_name = "leases"

    name = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    # Not a TTLAttribute: the lock must compare expiry itself; `expires_ttl` lets DynamoDB sweep.
    held_until = EpochSeconds()
    expires_ttl = TTLAttribute(null=True)


def acquire(name: str, seconds: float, owner: str | None = None) -> str | None:
    """Take the lease for `seconds`; return the owner token, or None when someone else holds it."""
    owner = owner or uuid.uuid4().hex
    now = clock.now()
    until = now + dt.timedelta(seconds=seconds)
    lease = Lease(name=name, owner=owner, held_until=until, expires_ttl=until + dt.timedelta(hours=1))
    return owner if save_if(lease, Lease.name.does_not_exist() | (Lease.held_until <= now)) else None


def release(name: str, owner: str) -> None:
    delete_if(Lease(name=name), Lease.owner == owner)  # False: it ran out and another runner took it


@contextlib.contextmanager
def held(name: str, seconds: float):
    """`with held("job", 50) as owner:` owner is None when another runner has the lease."""
    owner = acquire(name, seconds)
    try:
        yield owner
    finally:
        if owner:
            release(name, owner)


def single_runner(name: str, seconds: float):
    """Decorator for @schedule handlers: skip this run when another runner holds the lease."""

    def decorator(fn):
        service = metrics.service_of(fn.__module__)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            coldstart.imports_done()
            with held(name, seconds) as owner:
                if owner is None:
                    log.event("job.skipped_lease_held", job=name,
                              metrics=metrics.count(service, "JobsSkipped", job=name))
                    return None
                started = time.perf_counter()
                try:
                    result = fn(*args, **kwargs)
                except Exception as error:
                    log.error_event("job.failed", job=name, error=describe(error),
                                    metrics=metrics.count(service, "JobsFailed", job=name))
                    raise
                # A job that returns how many items it handled (an int) has them counted too.
                values = {"JobRuns": 1, **({"ItemsHandled": result} if type(result) is int else {})}
                log.event("job.done", job=name, ms=round((time.perf_counter() - started) * 1000, 2),
                          metrics=metrics.counts(service, values, job=name))
                return result

        return wrapper

    return decorator
