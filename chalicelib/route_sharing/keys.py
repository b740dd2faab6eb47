"""Sharing keys: saving an order's key for its phones, finishing it, reading a phone's keys.

Saving: an order of a shared tariff gets one sharing key, visible to each of its phones. A batch of saves
is written in ONE DynamoDB transaction; every item is conditional (attribute_not_exists), so a redelivered
save changes nothing. When that transaction is refused (a redelivery, or a finish that came first) each
save is retried alone and sorted out by reading its order.

Expiry: every item of an order carries `expires_at`. At save it is a safety net (created + max lifetime),
so a key whose finish never arrives still disappears; the finish sets it to finished_at + keep hours.
Reads filter `expires_at > now` themselves: DynamoDB's TTL deletes late. The keyed routes are in shared_route.py.

A finish may arrive before its save (SQS does not keep order): it leaves a finished order stub, and the
save that follows writes its keys with the stub's expiry. Processing sends finishes for EVERY order: a finish
naming an unshared tariff leaves no stub, and a stub lives only as long as a late save could show the order.
A finish that comes after the order's keys expired (and may have been TTL-deleted) changes nothing.

The order item and its key item are kept TOMBSTONE_DAYS past the keys' expiry, longer than any message can
live in a queue or its DLQ (14 days): a redriven save finds its order and changes nothing, and an expired key
stays 404 on the keyed routes (a key unknown here is the protocol's to answer).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import itertools
import uuid
from collections.abc import Sequence

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError

from chalicelib.core import clock, metrics
from chalicelib.core.dynamo import save_if, transact_if, transaction
from chalicelib.core.errors import AppError, Conflict, describe
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import is_live

from .models import PhoneKey, SharedOrder, SharingKeyItem, created_order_key
from .schemas import (
    CARGO_CLAIM_PREFIX, KEEP_AFTER_FINISH_HOURS, MAX_ORDER_DAYS, TARIFF_CLASSES, CargoClaimIn, FinishOrderMessage,
    SaveKeyMessage,
)

log = get_logger(__name__)

CARGO_CLAIM_TARIFF = "cargo"
# Longer than the DLQ's retention (deploy/template.py: 14 days), so no message outlives its order's anchor.
TOMBSTONE_DAYS = 15
# A phone sees at most this many live keys (newest first): bounds the hot path for e.g. a shop's own phone.
MAX_KEYS_PER_PHONE = 50
# DynamoDB takes at most 100 items in one transaction.
TRANSACTION_ITEMS = 100


class SaveOutcome(str, enum.Enum):
    SAVED = "saved"
    ALREADY_SAVED = "already_saved"
    DROPPED = "dropped"  # tariff class not shared
    FAILED = "failed"


def new_sharing_key() -> str:
    """Unguessable: the keyed routes need no auth, so the key is the only secret."""
    return uuid.uuid4().hex


# --- saving -----------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Save:
    message: SaveKeyMessage
    sharing_key: str
    expires_at: dt.datetime
    finished_at: dt.datetime | None = None

    @property
    def item_count(self) -> int:
        return 2 + len(self.message.phone_ids)  # an order without phones still gets its order and key items


def _plan(message: SaveKeyMessage) -> _Save:
    safety_expiry = message.created_at + dt.timedelta(days=MAX_ORDER_DAYS.get())
    return _Save(message=message, sharing_key=message.sharing_key or new_sharing_key(), expires_at=safety_expiry)


def _add_to(tx, save: _Save, *, after_finish: bool = False) -> None:
    m = save.message
    order = SharedOrder(
        order_id=m.order_id, sharing_key=save.sharing_key, phone_ids=m.phone_ids or None, tariff_class=m.tariff_class,
        corp_client_id=m.corp_client_id, created_at=m.created_at, finished_at=save.finished_at,
        expires_at=save.expires_at, purge_at=_purge_at(save.expires_at),
    )
    # After a finish stub the order item exists, but without a key; otherwise it must not exist at all.
    order_condition = SharedOrder.sharing_key.does_not_exist() if after_finish else SharedOrder.order_id.does_not_exist()
    tx.save(order, condition=order_condition)
    tx.save(
        SharingKeyItem(sharing_key=save.sharing_key, order_id=m.order_id, tariff_class=m.tariff_class,
                       corp_client_id=m.corp_client_id, created_at=m.created_at, expires_at=save.expires_at,
                       purge_at=_purge_at(save.expires_at)),
        condition=SharingKeyItem.sharing_key.does_not_exist(),
    )
    for phone_id in m.phone_ids:
        tx.save(
            PhoneKey(phone_id=phone_id, created_order=created_order_key(m.created_at, m.order_id),
                     sharing_key=save.sharing_key, expires_at=save.expires_at),
            condition=PhoneKey.phone_id.does_not_exist(),
        )


def _chunks(saves: list[_Save]) -> list[list[_Save]]:
    chunks: list[list[_Save]] = [[]]
    size = 0
    for save in saves:
        if size + save.item_count > TRANSACTION_ITEMS:
            chunks.append([])
            size = 0
        chunks[-1].append(save)
        size += save.item_count
    return [chunk for chunk in chunks if chunk]


def _save_alone(save: _Save) -> tuple[SaveOutcome, str]:
    """Write one save; sort out a refusal by reading its order. Returns the outcome and the order's key."""
    if transact_if(lambda tx: _add_to(tx, save)):
        return SaveOutcome.SAVED, save.sharing_key
    existing = _get_order(save.message.order_id)
    if existing is None:
        # The order is not there, so another item clashed: a given sharing_key used by another order.
        raise Conflict("sharing key or phone entry already belongs to another order", code="sharing_key_taken")
    if existing.sharing_key:
        return SaveOutcome.ALREADY_SAVED, existing.sharing_key
    # A finish came first: save with its expiry, so the key lives exactly as long as a finished order's.
    save.finished_at, save.expires_at = existing.finished_at, existing.expires_at
    if not transact_if(lambda tx: _add_to(tx, save, after_finish=True)):
        again = _get_order(save.message.order_id)
        if again is not None and again.sharing_key:
            return SaveOutcome.ALREADY_SAVED, again.sharing_key
        raise Conflict("sharing key or phone entry already belongs to another order", code="sharing_key_taken")
    return SaveOutcome.SAVED, save.sharing_key


def save_keys(messages: Sequence[SaveKeyMessage]) -> list[SaveOutcome]:
    """Save a batch of orders' keys; one outcome per message, in order."""
    outcomes: list[SaveOutcome | None] = [None] * len(messages)
    shared_tariffs = set(TARIFF_CLASSES.get())
    first_of_order: dict[str, int] = {}
    planned: dict[int, _Save] = {}
    for index, message in enumerate(messages):
        if message.tariff_class not in shared_tariffs:
            outcomes[index] = SaveOutcome.DROPPED
            log.event("route_sharing.save_dropped", order_id=message.order_id, tariff_class=message.tariff_class,
                      metrics=metrics.count("route_sharing", "KeysDropped"))
        elif message.order_id in first_of_order:
            continue  # a duplicate within the batch shares its first copy's outcome
        else:
            first_of_order[message.order_id] = index
            planned[index] = _plan(message)

    by_save = {id(save): index for index, save in planned.items()}
    for chunk in _chunks(list(planned.values())):
        try:
            with transaction() as tx:
                for save in chunk:
                    _add_to(tx, save)
            for save in chunk:
                outcomes[by_save[id(save)]] = SaveOutcome.SAVED
            continue
        except TransactWriteError as error:
            log.event("route_sharing.batch_refused", size=len(chunk), reason=error.cause_response_code)
        for save in chunk:
            index = by_save[id(save)]
            try:
                outcomes[index] = _save_alone(save)[0]
            except (AppError, TransactWriteError, PutError) as error:
                outcomes[index] = SaveOutcome.FAILED
                log.error_event("route_sharing.save_failed", order_id=save.message.order_id, error=describe(error))

    for index, message in enumerate(messages):
        if outcomes[index] is None:
            first = outcomes[first_of_order[message.order_id]]
            outcomes[index] = SaveOutcome.FAILED if first is SaveOutcome.FAILED else SaveOutcome.ALREADY_SAVED
        if outcomes[index] is SaveOutcome.SAVED:
            log.event("route_sharing.key_saved", order_id=message.order_id, recipients=len(message.phone_ids),
                      metrics=metrics.count("route_sharing", "KeysSaved"))
    return outcomes  # type: ignore[return-value]


def register_cargo_claim(claim: CargoClaimIn) -> str:
    """Stage 2: a cargo claim with a consignment note, shown to its recipients. Idempotent per claim_id."""
    message = SaveKeyMessage(
        order_id=cargo_claim_order_id(claim.claim_id), tariff_class=CARGO_CLAIM_TARIFF,
        phone_ids=claim.phone_ids, corp_client_id=claim.corp_client_id, created_at=clock.now(),
    )
    outcome, sharing_key = _save_alone(_plan(message))
    if outcome is SaveOutcome.ALREADY_SAVED:
        order = _get_order(message.order_id)
        if order is not None and order.expires_at is not None and order.expires_at <= clock.now():
            # Its recipients no longer see it; handing back the dead key would look like success.
            raise Conflict("the claim was shared before and its sharing has ended", code="cargo_claim_expired")
    log.event("route_sharing.cargo_claim_registered", claim_id=claim.claim_id, outcome=outcome.value)
    return sharing_key


def cargo_claim_order_id(claim_id: str) -> str:
    """Claims share the orders table; the prefix keeps their ids apart from taxi order ids."""
    return f"{CARGO_CLAIM_PREFIX}{claim_id}"


# --- finishing --------------------------------------------------------------------------------------

def _purge_at(expires_at: dt.datetime) -> dt.datetime:
    return max(expires_at, clock.now()) + dt.timedelta(days=TOMBSTONE_DAYS)


def _get_order(order_id: str) -> SharedOrder | None:
    try:
        return SharedOrder.get(order_id, consistent_read=True)
    except DoesNotExist:
        return None


def _record_finish_before_save(message: FinishOrderMessage, expires_at: dt.datetime) -> str | None:
    """A finish with no order yet: keep a stub for a save still to come, when one could matter.
    Returns the outcome, or None when the order's save landed meanwhile."""
    if message.tariff_class is not None and message.tariff_class not in TARIFF_CLASSES.get():
        # No save of this order will ever be kept: nothing to remember (most finishes, ~100/s, end here).
        return "not_shared"
    # The stub exists for ONE race: the save arriving after the finish (two queues, no order between them;
    # retries and DLQ redrives make the save late by seconds to days). A save writes its keys with
    # expires_at = created_at + MAX_ORDER_DAYS (the safety net); created_at <= finished_at, so a save that lands
    # after finished_at + MAX_ORDER_DAYS writes keys already expired, shown to no one, stub or not. The stub is
    # useless after that, and this is the tightest bound that needs no knowledge of the order: 7 days by default,
    # instead of keys' expiry + TOMBSTONE_DAYS (16 days) for each of the ~100 finishes a second.
    # (MAX_ORDER_DAYS is read now; raising it later lengthens only the stubs written after.)
    purge_at = message.finished_at + dt.timedelta(days=MAX_ORDER_DAYS.get())
    if purge_at <= clock.now():
        return "finished_long_ago"
    stub = SharedOrder(order_id=message.order_id, tariff_class=message.tariff_class,
                       finished_at=message.finished_at, expires_at=expires_at, purge_at=purge_at)
    if not save_if(stub, SharedOrder.order_id.does_not_exist()):
        return None
    log.event("route_sharing.finished_before_save", order_id=message.order_id)
    return "finished_before_save"


def finish_order(message: FinishOrderMessage) -> str:
    """Mark the order finished; its keys stay visible for the configured hours. Idempotent.

    Looked up whatever its tariff_class says: an order shared when it was saved is finished even if the
    tariff classes config has changed since."""
    expires_at = message.finished_at + dt.timedelta(hours=KEEP_AFTER_FINISH_HOURS.get())
    order = _get_order(message.order_id)
    if order is None:
        outcome = _record_finish_before_save(message, expires_at)
        if outcome is not None:
            return outcome
        order = _get_order(message.order_id)  # its save landed meanwhile
    if order is None or order.finished_at is not None:
        return "already_finished"
    if not is_live(order.expires_at):
        return _finished_after_expiry(order)
    def finish(tx) -> None:
        tx.update(order, actions=[SharedOrder.finished_at.set(message.finished_at),
                                  SharedOrder.expires_at.set(expires_at),
                                  SharedOrder.purge_at.set(_purge_at(expires_at))],
                  condition=SharedOrder.finished_at.does_not_exist())
        tx.update(SharingKeyItem(sharing_key=order.sharing_key),
                  actions=[SharingKeyItem.expires_at.set(expires_at),
                           SharingKeyItem.purge_at.set(_purge_at(expires_at))],
                  condition=SharingKeyItem.sharing_key.exists())
        for phone_id in order.phone_ids or []:
            tx.update(PhoneKey(phone_id=phone_id, created_order=created_order_key(order.created_at, order.order_id)),
                      actions=[PhoneKey.expires_at.set(expires_at)], condition=PhoneKey.phone_id.exists())

    if not transact_if(finish):
        again = _get_order(message.order_id)
        if again is not None and again.finished_at is not None:
            return "already_finished"
        if again is not None and not is_live(again.expires_at):
            return _finished_after_expiry(again)  # its keys' TTL ran out between the read and the write
        # A key or phone item of the order is gone while the order is live: retried (SQS), then the DLQ.
        raise Conflict("the order's items changed while it was being finished", code="order_items_changed")
    log.event("route_sharing.order_finished", order_id=message.order_id, keep_hours=KEEP_AFTER_FINISH_HOURS.get())
    return "finished"


def _finished_after_expiry(order: SharedOrder) -> str:
    """The keys' safety expiry passed before the finish came: DynamoDB's TTL may have deleted them already,
    and nobody sees them. Finishing now could only bring a dead key back to life: change nothing."""
    log.event("route_sharing.finished_after_expiry", order_id=order.order_id)
    return "expired"


# --- reading ----------------------------------------------------------------------------------------

def sharing_keys(phone_id: str) -> list[str]:
    """Live keys of a phone's orders, newest first, at most MAX_KEYS_PER_PHONE. The hot path: one Query
    (a second page is read only past 1 MB of a phone's rows, and iteration stops at the cap)."""
    rows = PhoneKey.query(
        phone_id,
        filter_condition=PhoneKey.expires_at > clock.now(),
        scan_index_forward=False,
        attributes_to_get=["sharing_key"],
    )
    return [row.sharing_key for row in itertools.islice(rows, MAX_KEYS_PER_PHONE)]
