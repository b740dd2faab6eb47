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
import os
import threading
import time
import uuid

from pydantic import ValidationError
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.core import aws, clock, http
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable
from chalicelib.core.logs import get_logger
from chalicelib.core.settings import get_settings

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
_credentials: tuple[float, KrtCredentials] | None = None
_memory: tuple[str, float] | None = None  # (token, expires at epoch): saves a DynamoDB read per call
_parameter: str | None = None


# The credentials' SecureString when KRT_CREDENTIALS_PARAMETER does not name another (deptrans/access.py grants it).
CREDENTIALS_PARAMETER = "/taxi-delivery/{stage}/krt-credentials"


def credentials_parameter() -> str:
    """The parameter's name, read once per process (a setting of the stage, like core.settings)."""
    global _parameter
    if _parameter is None:
        _parameter = (os.environ.get("KRT_CREDENTIALS_PARAMETER")
                      or CREDENTIALS_PARAMETER.format(stage=get_settings().stage))
    return _parameter


def forget() -> None:
    """Drop the process's cached parameter name, credentials and token (tests, rotation)."""
    global _credentials, _memory, _parameter
    _credentials = _memory = _parameter = None


def _read_credentials() -> KrtCredentials:
    global _credentials
    if _credentials and time.monotonic() - _credentials[0] < CREDENTIALS_CACHE_SECONDS:
        return _credentials[1]
    try:
        raw = aws.client("ssm").get_parameter(Name=credentials_parameter(), WithDecryption=True)
        value = KrtCredentials.model_validate_json(raw["Parameter"]["Value"])
    except ValidationError:
        log.error_event("krt.credentials_invalid")
        raise UpstreamUnavailable("KRT credentials are malformed", code="krt_credentials_unavailable") from None
    except Exception as error:  # botocore: missing parameter, no access, SSM down
        log.error_event("krt.credentials_unavailable", error=type(error).__name__)
        raise UpstreamUnavailable("KRT credentials are unavailable", code="krt_credentials_unavailable") from None
    _credentials = (time.monotonic(), value)
    return value


def _fetch_token() -> KrtToken:
    creds = _read_credentials()
    body = http.call_json(KRT, "POST", "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret,
    }, idempotency_key=uuid.uuid4().hex)  # asking twice is harmless: lets core.http retry the POST
    try:
        return KrtToken.model_validate(body)
    except ValidationError:
        raise UpstreamUnavailable("KRT answered an unexpected token body") from None


def _usable(token: str | None, expires_at: float | None, stale: str | None, margin: float) -> bool:
    return bool(token) and token != stale and expires_at is not None and expires_at - margin > time.time()


def _take_refresh_lease(owner: str) -> bool:
    now = time.time()
    try:
        KrtTokenItem(name=TOKEN_ITEM).update(
            actions=[KrtTokenItem.refresh_owner.set(owner), KrtTokenItem.refresh_until.set(now + REFRESH_LEASE_SECONDS)],
            condition=KrtTokenItem.refresh_owner.does_not_exist() | (KrtTokenItem.refresh_until < now),
        )
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
    return True


def _refresh(owner: str) -> tuple[str, float]:
    try:
        token = _fetch_token()
    except Exception:
        _release_lease(owner)
        raise
    expires_at = time.time() + token.expires_in
    item = KrtTokenItem(name=TOKEN_ITEM, access_token=token.access_token, token_expires_at=expires_at,
                        expires_ttl=dt.datetime.fromtimestamp(expires_at + 3600, dt.timezone.utc))
    try:
        # Replacing the item drops refresh_owner: the lease ends with the write.
        item.save(condition=KrtTokenItem.refresh_owner == owner)
    except PutError as error:
        if not condition_failed(error):
            raise
        # Our lease ran out and someone else refreshes: our token is still good for us.
    log.event("krt.token_refreshed", expires_in=token.expires_in)
    return token.access_token, expires_at


def _release_lease(owner: str) -> None:
    try:
        KrtTokenItem(name=TOKEN_ITEM).update(
            actions=[KrtTokenItem.refresh_owner.remove(), KrtTokenItem.refresh_until.remove()],
            condition=KrtTokenItem.refresh_owner == owner,
        )
    except UpdateError as error:
        if not condition_failed(error):
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
            try:
                item = KrtTokenItem.get(TOKEN_ITEM, consistent_read=True)
            except DoesNotExist:
                item = None
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
    body = _call("/api/v1/drivers/verify", {"id": deptrans_id, "licence_number": licence_number}, uuid.uuid4().hex)
    try:
        return KrtVerifyAnswer.model_validate(body).valid
    except ValidationError:
        raise UpstreamUnavailable("KRT answered an unexpected verify body") from None


def report_line_state(deptrans_id: str, state: LineState, changed_at: dt.datetime, event_id: str) -> KrtShift:
    """Tell KRT a driver came on line / went off line; KRT answers with the shift's state and end.
    `event_id` is stable per change: a re-send after a crash is recognised by KRT and changes nothing."""
    body = {"event_id": event_id, "id": deptrans_id, "state": state.value,
            "changed_at": clock.to_utc(changed_at).isoformat().replace("+00:00", "Z")}
    answer = _call("/api/v1/line-states", body, event_id)
    try:
        return KrtLineStateAnswer.model_validate(answer).shift
    except ValidationError:
        raise UpstreamUnavailable("KRT answered an unexpected line-state body") from None


def dumps_credentials(client_id: str, client_secret: str) -> str:
    """The parameter's value, as operators store it (tests and the local stack seed it this way)."""
    return json.dumps({"client_id": client_id, "client_secret": client_secret})
