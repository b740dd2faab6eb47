"""Client of KRT (the city's registry, upstream `krt`): credentials, the shared access token, the two calls.

Protocol (played by local/simulator/upstreams/krt.py, which documents it in full):
    POST /oauth/token              {"grant_type": "client_credentials", "client_id", "client_secret"}
                                   -> {"access_token", "token_type": "Bearer", "expires_in"}
    POST /api/v1/drivers/verify    {"id", "licence_number"}  -> {"valid": bool}
    POST /api/v1/line-states       {"event_id", "id", "state": "on_line"|"off_line", "changed_at"}
                                   -> {"shift": {"status", "ends_at"}}   (a repeated event_id changes nothing)
    Every /api call wants `Authorization: Bearer <token>`: 401 when it is unknown or expired; 429 + Retry-After.

Credentials: SSM Parameter Store SecureString named by KRT_CREDENTIALS_PARAMETER (default
`/taxi-delivery/<stage>/krt-credentials`), JSON {"client_id", "client_secret"}; read once per process and
kept CREDENTIALS_CACHE_SECONDS (a rotation reaches every instance within that time). Never in config.json.

Token: kept in deptrans_krt_token, shared by every instance, until TOKEN_MARGIN_SECONDS before it expires.
Refreshing takes a lease on that item (conditional update), so one instance asks KRT for a token at a time;
the others keep using the old token while it is still valid, or wait a moment for the new one. The token sits
in DynamoDB in plain text: the table is readable only by this service's functions (deptrans/access.py). On a
401 the client refreshes once (only if nobody did already) and retries; a second 401 is "unavailable".

429 and 5xx: core.http retries with backoff and waits Retry-After up to its in-process cap; a longer wait
surfaces as UpstreamUnavailable, and the sender leaves the entry queued for a later run.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock, http
from chalicelib.core.dynamo import save_if, update_if
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable
from chalicelib.core.logs import get_logger
from chalicelib.core.secrets import SecureParameter
from chalicelib.core.settings import get_settings
from chalicelib.core.storage import get_live

from .models import KrtTokenItem
from .schemas import KrtCredentials, KrtLineStateAnswer, KrtShift, KrtToken, KrtVerifyAnswer, LineState

log = get_logger(__name__)

KRT = "krt"
TOKEN_ITEM = "krt"
TOKEN_MARGIN_SECONDS = 60  # a token this close to its expiry is replaced, never sent
REFRESH_LEASE_SECONDS = 10
WAIT_FOR_REFRESH_SECONDS = 3.0
CREDENTIALS_CACHE_SECONDS = 300

_lock = threading.Lock()
_memory: tuple[str, float] | None = None  # (token, expires at epoch): saves a DynamoDB read per call


# The credentials' SecureString when KRT_CREDENTIALS_PARAMETER does not name another (deptrans/access.py grants it).
CREDENTIALS_PARAMETER = "/taxi-delivery/{stage}/krt-credentials"
CREDENTIALS = SecureParameter(
    "KRT_CREDENTIALS_PARAMETER", "krt_credentials_unavailable",
    default_name=lambda: CREDENTIALS_PARAMETER.format(stage=get_settings().stage),
    parse=KrtCredentials.model_validate_json, cache_seconds=CREDENTIALS_CACHE_SECONDS)


def credentials_parameter() -> str:
    """The parameter's name (a setting of the stage)."""
    return CREDENTIALS.name()


def forget() -> None:
    """Drop the process's cached credentials and token (tests, rotation)."""
    global _memory
    CREDENTIALS.forget()
    _memory = None


def _fetch_token() -> KrtToken:
    creds = CREDENTIALS.read()
    # Asking twice is harmless: a fresh key lets core.http retry the POST.
    return http.call_as(KRT, "POST", "/oauth/token", KrtToken, idempotency_key=http.fresh_key(), json={
        "grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret})


def _usable(token: str | None, expires_at: float | None, stale: str | None, margin: float) -> bool:
    return bool(token) and token != stale and expires_at is not None and expires_at - margin > time.time()


def _take_refresh_lease(owner: str) -> bool:
    now = time.time()
    return update_if(KrtTokenItem(name=TOKEN_ITEM),
                     [KrtTokenItem.refresh_owner.set(owner), KrtTokenItem.refresh_until.set(now + REFRESH_LEASE_SECONDS)],
                     KrtTokenItem.refresh_owner.does_not_exist() | (KrtTokenItem.refresh_until < now))


def _refresh(owner: str) -> tuple[str, float]:
    try:
        token = _fetch_token()
    except Exception:
        _release_lease(owner)
        raise
    expires_at = time.time() + token.expires_in
    item = KrtTokenItem(name=TOKEN_ITEM, access_token=token.access_token, token_expires_at=expires_at,
                        expires_ttl=dt.datetime.fromtimestamp(expires_at + 3600, dt.timezone.utc))
    # Replacing the item drops refresh_owner: the lease ends with the write. Not saved: our lease ran out and
    # someone else refreshes; our token is still good for us.
    save_if(item, KrtTokenItem.refresh_owner == owner)
    log.event("krt.token_refreshed", expires_in=token.expires_in)
    return token.access_token, expires_at


def _release_lease(owner: str) -> None:
    try:  # not released: it runs out by itself
        update_if(KrtTokenItem(name=TOKEN_ITEM),
                  [KrtTokenItem.refresh_owner.remove(), KrtTokenItem.refresh_until.remove()],
                  KrtTokenItem.refresh_owner == owner)
    except UpdateError:
        log.warning_event("krt.lease_release_failed")


def access_token(stale: str | None = None) -> str:
    """A token to send: the process's, the shared one, or a fresh one. `stale` is a token KRT just refused."""
    global _memory
    with _lock:  # threads of one sender share one refresh
        if _memory and _usable(_memory[0], _memory[1], stale, TOKEN_MARGIN_SECONDS):
            return _memory[0]
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + WAIT_FOR_REFRESH_SECONDS
        while True:
            # The token's own expiry is checked by _usable (its TTL attribute is only DynamoDB's sweep).
            item = get_live(KrtTokenItem, TOKEN_ITEM, consistent_read=True)
            token, expires_at = (item.access_token, item.token_expires_at) if item else (None, None)
            if _usable(token, expires_at, stale, TOKEN_MARGIN_SECONDS):
                _memory = (token, expires_at)
                return token
            if _take_refresh_lease(owner):
                _memory = _refresh(owner)
                return _memory[0]
            # Someone else is refreshing: the old token serves until it really expires.
            if _usable(token, expires_at, stale, 1):
                return token
            if time.monotonic() > deadline:
                raise UpstreamUnavailable("no KRT token: another instance is refreshing it", code="krt_token_wait")
            time.sleep(0.1)


def _call(path: str, body: dict, idempotency_key: str) -> dict:
    token = access_token()
    for attempt in (1, 2):
        try:
            return http.call_json(KRT, "POST", path, json=body, headers={"Authorization": f"Bearer {token}"},
                                  idempotency_key=idempotency_key)
        except UpstreamRejected as error:
            if error.upstream_status != 401:
                raise
            if attempt == 2:
                raise UpstreamUnavailable("KRT refused a fresh token", code="krt_unauthorized") from None
            log.event("krt.token_rejected")
            token = access_token(stale=token)
    raise AssertionError("unreachable")


def verify_id(deptrans_id: str, licence_number: str) -> bool:
    """Does the registry ID belong to this driver licence? Neither value is logged."""
    body = _call("/api/v1/drivers/verify", {"id": deptrans_id, "licence_number": licence_number}, http.fresh_key())
    return http.answer_as(KRT, KrtVerifyAnswer, body).valid


def report_line_state(deptrans_id: str, state: LineState, changed_at: dt.datetime, event_id: str) -> KrtShift:
    """Tell KRT a driver came on line / went off line; KRT answers with the shift's state and end.
    `event_id` is stable per change: a re-send after a crash is recognised by KRT and changes nothing."""
    body = {"event_id": event_id, "id": deptrans_id, "state": state.value,
            "changed_at": clock.to_utc(changed_at).isoformat().replace("+00:00", "Z")}
    return http.answer_as(KRT, KrtLineStateAnswer, _call("/api/v1/line-states", body, event_id)).shift


def dumps_credentials(client_id: str, client_secret: str) -> str:
    """The parameter's value, as operators store it (tests and the local stack seed it this way)."""
    return json.dumps({"client_id": client_id, "client_secret": client_secret})
