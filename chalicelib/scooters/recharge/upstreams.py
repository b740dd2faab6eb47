"""Clients of the scooter backend, the cabinets service (scooter-accumulator) and cargo's claims API v2.

Every call goes through core.http: timeouts, bounded retries with backoff (POSTs only with an idempotency
key: a fresh one per call, or, for a booking or a claim re-sent across invocations, the attempt's stored key;
these POSTs are all safe to repeat: tag calls are idempotent by name, bookings by token, claim creation by
request_id). Failures raise UpstreamUnavailable (down, 5xx, 429, timeouts, an
answer that does not parse) or UpstreamRejected (a definite 4xx); callers decide the fallback.

Cargo wants `Authorization: Bearer <OAuth token>`: the token is an SSM Parameter Store SecureString named by
CARGO_TOKEN_PARAMETER (set per deployed stage in .chalice/config.json, e.g. /taxi-delivery/prod/cargo-token),
read through core.secrets (cached per process: a rotation reaches every instance within its cache time). A
stage without CARGO_TOKEN_PARAMETER (local: the simulator needs none) sends no Authorization header. The token
is never logged.
"""
from __future__ import annotations

from typing import TypeVar

from chalicelib.core import http
from chalicelib.core.errors import UpstreamRejected
from chalicelib.core.secrets import SecureParameter

from .schemas import Availability, Booking, CarInfo, CarList, Claim, JournalPage, ListedCar, StoreAvailability

SCOOTER_BACKEND = "scooter_backend"
ACCUMULATOR = "scooter_accumulator"
CARGO = "cargo"
ACC = "/scooter-accumulator/v1/cabinet"
CLAIMS = "/b2b/cargo/integration/v2/claims"
# The doc's filter: battery_low (and battery_low_NN thresholds) but not already taken into a recharge; the
# excluded tags (config: scooter_missing, scooter_destroyed) are appended as further `-tag` terms.
DISCHARGED_FILTER = "battery_low*-recharge_processing"
BATTERY_LOW, RECHARGE_PROCESSING = "battery_low", "recharge_processing"
M = TypeVar("M")


# The name each deployed stage gives CARGO_TOKEN_PARAMETER in .chalice/config.json (scooters/access.py grants it).
CARGO_TOKEN_PARAMETER = "/taxi-delivery/{stage}/cargo-token"
CARGO_TOKEN = SecureParameter("CARGO_TOKEN_PARAMETER", "cargo_token_unavailable")


def _cargo_headers() -> dict:
    if not CARGO_TOKEN.name():
        return {}
    return {"Authorization": f"Bearer {CARGO_TOKEN.read()}"}


def _parse(model: type[M], body, upstream: str) -> M:
    return http.answer_as(upstream, model, body)


def _post(upstream: str, path: str, body=None, *, key: str | None = None, params: dict | None = None):
    """A POST whose retries share one key: `key` for a call re-sent across invocations (stored with the task),
    else a fresh one for this call alone (core/http.py: never a key derived from the car, tag or claim)."""
    headers = _cargo_headers() if upstream == CARGO else None
    return http.call_json(upstream, "POST", path, json=body, params=params, idempotency_key=key or http.fresh_key(),
                          headers=headers)


# --- scooter backend --------------------------------------------------------------------------------------

def discharged_filter(excluded: list[str]) -> str:
    return DISCHARGED_FILTER + "".join(f"-{tag}" for tag in excluded)


def list_discharged(excluded: list[str] = ()) -> list[ListedCar]:
    params = {"tags_filter": discharged_filter(list(excluded))}
    body = http.call_json(SCOOTER_BACKEND, "GET", "/car/list", params=params)
    return _parse(CarList, body, SCOOTER_BACKEND).cars


def car_info(car_id: str) -> CarInfo | None:
    """The car, or None when the backend does not know it (404)."""
    try:
        body = http.call_json(SCOOTER_BACKEND, "GET", "/car/info", params={"car_id": car_id})
    except UpstreamRejected as error:
        if error.upstream_status == 404:
            return None
        raise
    return _parse(CarInfo, body, SCOOTER_BACKEND)


def add_tag(car_id: str, tag: str) -> None:
    _post(SCOOTER_BACKEND, "/tag/add", {"car_id": car_id, "tag": tag})


def remove_tag(car_id: str, tag: str) -> None:
    _post(SCOOTER_BACKEND, "/tag/remove", {"car_id": car_id, "tag": tag})


def set_tag_details(car_id: str, tag_id: str, details: dict) -> None:
    _post(SCOOTER_BACKEND, "/car/details", {"car_id": car_id, "tag_id": tag_id, "details": details})


def servicing_start(car_id: str, tag_id: str, performer: dict) -> None:
    _post(SCOOTER_BACKEND, "/servicing/start", {"car_id": car_id, "tag_id": tag_id, "performer": performer})


def servicing_finish(car_id: str, tag_id: str) -> bool:
    """False when the servicing never started (409 not_started): nothing to finish."""
    try:
        _post(SCOOTER_BACKEND, "/servicing/finish", {"car_id": car_id, "tag_id": tag_id})
    except UpstreamRejected as error:
        if error.upstream_status == 409:
            return False
        raise
    return True


# --- scooter-accumulator ----------------------------------------------------------------------------------

def available_for_booking(store_ids: list[str]) -> list[StoreAvailability]:
    body = _post(ACCUMULATOR, ACC + "/accumulator/available_for_booking", {"store_ids": store_ids})
    return _parse(Availability, body, ACCUMULATOR).stores


def book(cabinet_id: str, token: str) -> Booking | None:
    """One battery booked under `token` (a repeat answers the first booking), or None when none is left (409)."""
    try:
        body = _post(ACCUMULATOR, ACC + "/accumulator/book", {"cabinet_id": cabinet_id, "accumulators_count": 1},
                     key=token)
    except UpstreamRejected as error:
        if error.upstream_status == 409:
            return None
        raise
    return _parse(Booking, body, ACCUMULATOR)


def _on_booking(action: str, book_id: str, extra: dict | None = None) -> bool:
    """False when the cabinets service no longer knows the booking (404): nothing left to change."""
    try:
        _post(ACCUMULATOR, ACC + f"/booking/{action}", {"book_id": book_id, **(extra or {})})
    except UpstreamRejected as error:
        if error.upstream_status == 404:
            return False
        raise
    return True


def unbook(book_id: str) -> bool:
    return _on_booking("unbook", book_id)


def set_contractor(book_id: str, contractor_id: str) -> bool:
    return _on_booking("set_contractor", book_id, {"contractor_id": contractor_id})


def unset_contractor(book_id: str) -> bool:
    return _on_booking("unset_contractor", book_id)


# --- cargo claims v2 -------------------------------------------------------------------------------------

def create_claim(request_id: str, body: dict) -> Claim:
    answer = _post(CARGO, CLAIMS + "/create", body, params={"request_id": request_id}, key=request_id)
    return _parse(Claim, answer, CARGO)


def claim_info(claim_id: str) -> Claim:
    answer = _post(CARGO, CLAIMS + "/info", None, params={"claim_id": claim_id})
    return _parse(Claim, answer, CARGO)


def accept_claim(claim_id: str, version: int) -> None:
    _post(CARGO, CLAIMS + "/accept", {"version": version}, params={"claim_id": claim_id})


def cancel_claim(claim_id: str, version: int) -> None:
    """A free cancel (only before pickup: 409 inappropriate_status after it, UpstreamRejected)."""
    _post(CARGO, CLAIMS + "/cancel", {"version": version, "cancel_state": "free"}, params={"claim_id": claim_id})


def journal(cursor: str | None) -> JournalPage:
    body = {} if cursor is None else {"cursor": cursor}
    answer = _post(CARGO, CLAIMS + "/journal", body)
    return _parse(JournalPage, answer, CARGO)
