"""Codedispatch tables (design doc 004, item 1: code_dispatch_codes and code_dispatch_assignments merged).

- assignments: one item per order (the doc's code_dispatch.assignments), keyed by order_id.
- codes: the uniqueness guard of (area_id, code). Written in the SAME transaction as its assignment, so the
  assignment stays the one record of the order while a code can never be live twice in an area; it is also
  the index a typed code is looked up by. Both start with the same `expires_at` (TTL): the code's expiry.
  A move to processing extends both (the guard first), so the code cannot go to another order while its
  order is processing; later moves extend the assignment only (its change log). DynamoDB deletes late, so
  reads filter `expires_at > now` and writes accept an expired item as free.
- wrong_codes: per driver (park and profile, apart), per area: how many codes the driver typed that lead to
  no order, one counter per fixed window and one per UTC day (the brute-force guard and its lockout).
  Each expires through TTL at its window's or day's end.
"""
from __future__ import annotations

import json

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute

from chalicelib.core.storage import EpochSeconds, Table, TableMeta


class Change(MapAttribute):
    """One entry of an assignment's log: who moved it, when, from -> to."""

    at = EpochSeconds()
    who = UnicodeAttribute()
    from_status = UnicodeAttribute(null=True)
    to_status = UnicodeAttribute()
    error_code = UnicodeAttribute(null=True)
    attempt = NumberAttribute(null=True)  # the assignment attempt this move belongs to (absent: 1)


class Assignment(Table):
    class Meta(TableMeta):
        table_name = "codedispatch_assignments"

    order_id = UnicodeAttribute(hash_key=True)
    area_id = UnicodeAttribute()
    code = UnicodeAttribute()
    driver_id = UnicodeAttribute(null=True)
    park_db_id = UnicodeAttribute(null=True)
    driver_profile_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    error_code = UnicodeAttribute(null=True)
    # 1 for the first driver's attempt; an attempt that ended in error is never reused: the next driver to
    # type the code opens attempt + 1 on this item (service docstring). Absent in items written before: 1.
    attempt = NumberAttribute(null=True)
    # When the current attempt's processing message was last sent successfully (absent: not yet).
    processing_sent_at = EpochSeconds(null=True)
    # When a call took the current attempt's processing push (processing.py: one push per attempt).
    processing_claimed_at = EpochSeconds(null=True)
    # The idempotency token of the current attempt's tracker acquire: a fresh uuid4 when the attempt starts
    # (create, restart), sent by every drivers-lookup of that attempt (retries of one logical call).
    acquire_token = UnicodeAttribute(null=True)
    # Until when the code can be typed (creation + the area's order_expire_seconds); never moves. `expires_at`
    # is the record's life, which status moves extend. Absent in items written before: `expires_at` is it.
    code_expires_at = EpochSeconds(null=True)
    created_at = EpochSeconds()
    updated_at = EpochSeconds()
    changes = ListAttribute(of=Change, default=list)
    expires_at = TTLAttribute()


class AreaCode(Table):
    class Meta(TableMeta):
        table_name = "codedispatch_codes"

    # "<area_id>#<code>": spreads an area's codes over partitions (one area would be one hot key otherwise).
    area_code = UnicodeAttribute(hash_key=True)
    area_id = UnicodeAttribute()
    code = UnicodeAttribute()
    order_id = UnicodeAttribute()
    expires_at = TTLAttribute()


def area_code_key(area_id: str, code: str) -> str:
    return f"{area_id}#{code}"


class WrongCodes(Table):
    class Meta(TableMeta):
        table_name = "codedispatch_wrong_codes"

    # wrong_codes_key(...): area, park, profile, period ("window" | "day") and its index, JSON-encoded so no
    # two tuples share a key.
    counter_key = UnicodeAttribute(hash_key=True)
    count = NumberAttribute(default=0)
    expires_at = TTLAttribute()


def wrong_codes_key(area_id: str, park_id: str, driver_profile_id: str, period: str, index: int) -> str:
    return json.dumps([area_id, park_id, driver_profile_id, period, index], separators=(",", ":"),
                      ensure_ascii=False)
