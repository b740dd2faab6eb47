"""Picker order tables (the doc's picker_orders and picker_phones), both cleaned by DynamoDB TTL.

- picker_orders: one item per order: status, picker, place, customer, status history (flat attributes:
  a SET on a nested path fails while the map is missing), `last_event` (the version of the newest event
  applied, compared in every write's condition) and `updated_at` (when this service last wrote it; a failed
  refresh sets it to that run's staleness cutoff, so the order stays stale but queues behind the others).
  The `status_updated_at` index (status -> updated_at) lets the fallback job query only stale orders of a
  listed status instead of scanning the table. `customer_id` is the first one any event (of any age), or the
  upstream, named; it never changes. A phone event naming a customer before any status event leaves a stub
  item (customer and TTL only, no status: not in the index, unknown to the tracking route).
- picker_phones: the forwarded phone of a picker FOR AN ORDER, keyed by (order_nr, picker_id). The doc keys
  it by picker_id alone, but a forwarding connects one customer with the picker: a picker collecting two
  orders would otherwise show one customer the other's forwarding. A replaced picker has no item here.
"""
from __future__ import annotations

import datetime as dt

from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.core.clock import utc_text
from chalicelib.core.storage import Table, TableMeta

from .schemas import STATUS_RANK, OrderState


class StatusUpdatedIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "status_updated_at"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    updated_at = UTCDateTimeAttribute(range_key=True)


class PickerOrder(Table):
    class Meta(TableMeta):
        table_name = "picker_orders"

    order_nr = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()
    picker_id = UnicodeAttribute(null=True)
    place_id = UnicodeAttribute(null=True)
    customer_id = UnicodeAttribute(null=True)
    # status_history
    new_at = UTCDateTimeAttribute(null=True)
    assigned_at = UTCDateTimeAttribute(null=True)
    picking_at = UTCDateTimeAttribute(null=True)
    picked_up_at = UTCDateTimeAttribute(null=True)
    paid_at = UTCDateTimeAttribute(null=True)
    # "<created_at, fixed-width UTC>#<status rank>": string order == event order.
    last_event = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    # When the fallback refresh last failed to fetch the order; removed by a successful refresh.
    refresh_failed_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    by_status_updated = StatusUpdatedIndex()


class PickerPhone(Table):
    class Meta(TableMeta):
        table_name = "picker_phones"

    order_nr = UnicodeAttribute(hash_key=True)
    picker_id = UnicodeAttribute(range_key=True)
    phone = UnicodeAttribute()
    phone_expires_at = UTCDateTimeAttribute()
    last_event = UnicodeAttribute()  # created_at of the newest event applied, fixed-width UTC
    updated_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)


HISTORY_FIELDS = {
    OrderState.new: PickerOrder.new_at,
    OrderState.assigned: PickerOrder.assigned_at,
    OrderState.picking: PickerOrder.picking_at,
    OrderState.picked_up: PickerOrder.picked_up_at,
    OrderState.paid: PickerOrder.paid_at,
}


def event_version(created_at: dt.datetime, status: OrderState) -> str:
    return f"{utc_text(created_at)}#{STATUS_RANK[status]:02d}"
