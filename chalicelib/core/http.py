"""Upstream HTTP calls: one requests Session per upstream, timeouts always, bounded retries with backoff.

Failures become domain errors: timeouts, refused connections and 5xx that outlast the retries raise
UpstreamUnavailable (the caller decides the fallback); a definite 4xx raises UpstreamRejected.
POST is retried only with an idempotency key, which is sent as `X-Idempotency-Token`.

Idempotency keys: ONE key per logical upstream call, shared by that call's retries only. Most calls take a
fresh one (`idempotency_key=fresh_key()`): its retries are urllib3's, inside this call. A call whose retries
span invocations (a claim created for a planning attempt, re-sent after a crash) keeps a random key stored with
its task. A key is never derived from what the call is about (a driver, a car, a token, a cursor): an upstream
that answers a repeated key with its first answer, as idempotent APIs do, would hand the first answer to a
different request.
"""
from __future__ import annotations

import functools
import sys
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from . import metrics
from .errors import UpstreamRejected, UpstreamUnavailable, validation_details
from .logs import get_logger
from .settings import get_settings

log = get_logger(__name__)
M = TypeVar("M")

RETRY_STATUSES = (429, 500, 502, 503, 504)
SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Retry-After above this is not waited for in-process: the caller reschedules instead.
RETRY_AFTER_CAP_SECONDS = 2


if TYPE_CHECKING:
    import requests


def _retry(retries: int, methods: frozenset[str]):
    from urllib3.util.retry import Retry

    return Retry(
        total=retries, connect=retries, read=retries, status=retries, other=0,
        allowed_methods=methods, status_forcelist=RETRY_STATUSES,
        backoff_factor=0.05, backoff_max=0.5, backoff_jitter=0.05,
        respect_retry_after_header=True, retry_after_max=RETRY_AFTER_CAP_SECONDS,
        raise_on_status=False,
    )


def fresh_key() -> str:
    """A new idempotency key for one logical call (see the module docstring)."""
    return uuid.uuid4().hex


DEFAULT_POOL_SIZE = 10
_pool_sizes: dict[str, int] = {}


def keep_connections(upstream: str, count: int) -> None:
    """Keep up to `count` connections to `upstream` open (DEFAULT_POOL_SIZE otherwise): a caller making more
    calls at once than its pool holds would open, and drop, a new connection (a TLS handshake) per call. Call
    it before the calls start: widening drops the process's sessions once."""
    if count > _pool_sizes.get(upstream, DEFAULT_POOL_SIZE):
        _pool_sizes[upstream] = count
        _session.cache_clear()


@functools.cache
def _session(upstream: str, idempotent_post: bool, retries: int) -> "requests.Session":
    # requests is imported on the first upstream call, not at cold start: most invocations make none.
    import requests
    from requests.adapters import HTTPAdapter

    methods = SAFE_METHODS | ({"POST"} if idempotent_post else set())
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=_retry(retries, methods),
                          pool_maxsize=_pool_sizes.get(upstream, DEFAULT_POOL_SIZE))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _failure(upstream: str) -> dict:
    """EMF count of one upstream failure, under the service whose code made the call (found on the stack:
    only failures pay for the walk)."""
    frame, service = sys._getframe(1), "unknown"
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("chalicelib.") and not module.startswith("chalicelib.core."):
            service = metrics.service_of(module)
            break
        frame = frame.f_back
    return metrics.count(service, "UpstreamFailures", upstream=upstream)


def reset_sessions() -> None:
    _session.cache_clear()
    _pool_sizes.clear()


def base_url(upstream: str) -> str:
    url = get_settings().upstream_urls.get(upstream)
    if not url:
        raise UpstreamUnavailable(f"upstream {upstream} is not configured", code="upstream_not_configured")
    return url


def call(
    upstream: str,
    method: str,
    path: str,
    *,
    params: dict | None = None,
    json: Any = None,
    headers: dict | None = None,
    idempotency_key: str | None = None,
    timeout: tuple[float, float] | None = None,
    retries: int | None = None,
) -> "requests.Response":
    """Call `upstream` and return its 2xx response; raise UpstreamUnavailable / UpstreamRejected otherwise."""
    settings = get_settings()
    method = method.upper()
    headers = dict(headers or {})
    if idempotency_key:
        headers["X-Idempotency-Token"] = idempotency_key
    retries = settings.upstream_retries if retries is None else retries
    session = _session(upstream, bool(idempotency_key), retries)
    from requests import RequestException

    url = base_url(upstream) + path
    try:
        response = session.request(
            method, url, params=params, json=json, headers=headers,
            timeout=timeout or (settings.upstream_connect_timeout, settings.upstream_read_timeout),
        )
    except RequestException as error:
        log.warning_event("upstream.unavailable", upstream=upstream, path=path, error=type(error).__name__,
                          metrics=_failure(upstream))
        raise UpstreamUnavailable(f"upstream {upstream} is unavailable") from error
    if response.status_code >= 500 or response.status_code == 429:
        log.warning_event("upstream.error_status", upstream=upstream, path=path, status=response.status_code,
                          metrics=_failure(upstream))
        raise UpstreamUnavailable(f"upstream {upstream} answered {response.status_code}")
    if response.status_code >= 400:
        log.event("upstream.rejected", upstream=upstream, path=path, status=response.status_code)
        raise UpstreamRejected(
            f"upstream {upstream} answered {response.status_code}", upstream_status=response.status_code
        )
    return response


def call_json(upstream: str, method: str, path: str, **kwargs) -> Any:
    response = call(upstream, method, path, **kwargs)
    try:
        return response.json()
    except (ValueError, RecursionError) as error:
        log.warning_event("upstream.bad_answer", upstream=upstream, path=path, error="not JSON",
                          metrics=_failure(upstream))
        raise UpstreamUnavailable(f"upstream {upstream} answered a body that is not JSON") from error


def answer_as(upstream: str, model: type[M], body: Any) -> M:
    """The upstream's answer as `model`. An answer that does not validate (a field missing, a timestamp outside
    2000-2100, ...) is that upstream failing: UpstreamUnavailable, logged and counted like a 5xx, so the caller's
    usual fallback applies; never an exception from deep inside the caller."""
    from pydantic import ValidationError

    try:
        return model.model_validate(body)
    except ValidationError as error:
        log.warning_event("upstream.bad_answer", upstream=upstream, model=model.__name__,
                          **validation_details(error), metrics=_failure(upstream))
        raise UpstreamUnavailable(f"upstream {upstream} answered an unexpected {model.__name__}") from None


def call_as(upstream: str, method: str, path: str, model: type[M], **kwargs) -> M:
    """call_json, then answer_as: the upstream's 2xx answer as `model`, or UpstreamUnavailable / UpstreamRejected."""
    return answer_as(upstream, model, call_json(upstream, method, path, **kwargs))
