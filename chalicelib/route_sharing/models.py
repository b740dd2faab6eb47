"""Route sharing tables. Every item of an order gets the same `expires_at` when the order finishes.

- orders: the order's anchor (one sharing key per order, its phones, its seller); also the record of a
  finish that arrived before the save.
- keys: sharing key -> order, for the keyed routes (corp_info, sharedroute info/track).
- phone_keys: phone -> its orders' keys, newest first (range key starts with created_at): the hot path.
"""
from __future__ import annotations

import datetime as dt

from pynamodb.attributes import ListAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute

from chalicelib.core.clock import utc_text
from chalicelib.core.storage import EpochSeconds, Table, TableMeta


class SharedOrder(Table):
    """The order's anchor. It outlives its keys (`purge_at` > `expires_at`) so that a save redriven from the
    DLQ days later still finds the order and changes nothing, instead of sharing a finished order again."""

    class Meta(TableMeta):
        table_name = "route_sharing_orders"

    order_id = UnicodeAttribute(hash_key=True)
    sharing_key = UnicodeAttribute(null=True)  # None while only a finish is known
    phone_ids = ListAttribute(of=UnicodeAttribute, null=True)
    tariff_class = UnicodeAttribute(null=True)
    corp_client_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)  # when the order's keys stop being visible
    purge_at = TTLAttribute(null=True)  # when DynamoDB may delete the anchor itself


class SharingKeyItem(Table):
    """A key outlives its visibility (`purge_at` = its order anchor's): an expired key saved here stays 404
    instead of becoming "unknown here" and being passed through to the protocol, which serves any key."""

    class Meta(TableMeta):
        table_name = "route_sharing_keys"

    sharing_key = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    tariff_class = UnicodeAttribute()
    corp_client_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    # Epoch seconds, as the TTL attribute it used to be: items written before the change still read.
    expires_at = EpochSeconds(null=True)
    purge_at = TTLAttribute(null=True)


class PhoneKey(Table):
    class Meta(TableMeta):
        table_name = "route_sharing_phone_keys"

    phone_id = UnicodeAttribute(hash_key=True)
    # "<created_at, fixed-width UTC>#<order_id>": sorts newest last, unique per order.
    created_order = UnicodeAttribute(range_key=True)
    sharing_key = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)


def created_order_key(created_at: dt.datetime, order_id: str) -> str:
    return f"{utc_text(created_at)}#{order_id}"
