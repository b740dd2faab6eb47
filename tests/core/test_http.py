"""core.http against the upstream simulator: retries, timeouts, 4xx, idempotent POSTs, missing configuration.

Tests run with UPSTREAM_RETRIES=2, UPSTREAM_CONNECT_TIMEOUT=0.2, UPSTREAM_READ_TIMEOUT=0.5 (tests/conftest.py).
"""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.core import http
from chalicelib.core.errors import UpstreamRejected, UpstreamUnavailable
from chalicelib.core.settings import reload_settings
from local.simulator.server import Fault
from local.simulator.upstreams import protocol

KEY = "key-http-0001"
ATTEMPTS = 1 + 2  # the first call and UPSTREAM_RETRIES


def calls_to(sim, path: str) -> list[dict]:
    return [call for call in sim.calls["protocol"] if call["path"] == path]


def test_a_passing_5xx_is_retried_and_the_caller_never_sees_it(upstream):
    upstream.faults["protocol"] = Fault(mode="error", status=503, count=1)
    body = http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY})
    assert body["status"] == "driving"
    assert len(calls_to(upstream, "/sharedroute")) == 2


def test_a_5xx_lasting_all_but_the_last_attempt_still_succeeds(upstream):
    upstream.faults["protocol"] = Fault(mode="error", status=500, count=ATTEMPTS - 1)
    response = http.call("protocol", "GET", "/sharedroute", params={"key": KEY})
    assert response.status_code == 200
    assert len(calls_to(upstream, "/sharedroute")) == ATTEMPTS


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_persistent_error_status_is_unavailable_after_exactly_the_configured_attempts(upstream, status):
    upstream.faults["protocol"] = Fault(mode="error", status=status)
    with pytest.raises(UpstreamUnavailable) as raised:
        http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY})
    assert raised.value.status == 503 and raised.value.code == "upstream_unavailable"
    assert len(calls_to(upstream, "/sharedroute")) == ATTEMPTS


def test_a_hanging_upstream_is_unavailable_within_a_bounded_time(upstream):
    upstream.faults["protocol"] = Fault(mode="timeout", status=200, delay=1.5)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as raised:
        http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY})
    elapsed = time.monotonic() - started
    assert raised.value.code == "upstream_unavailable"
    # 3 attempts x 0.5 s read timeout plus a little backoff; never the upstream's own 1.5 s per call.
    assert 1.0 < elapsed < 3.0
    assert len(calls_to(upstream, "/sharedroute")) == ATTEMPTS


def test_a_slow_but_answering_upstream_within_the_read_timeout_is_fine(upstream):
    upstream.faults["protocol"] = Fault(mode="slow", delay=0.2)
    assert http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY})["status"] == "driving"
    assert len(calls_to(upstream, "/sharedroute")) == 1


def test_a_call_can_ask_for_no_retries(upstream):
    upstream.faults["protocol"] = Fault(mode="error", status=503)
    with pytest.raises(UpstreamUnavailable):
        http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY}, retries=0)
    assert len(calls_to(upstream, "/sharedroute")) == 1
    # ... without changing the retries of the other calls to the same upstream.
    with pytest.raises(UpstreamUnavailable):
        http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY})
    assert len(calls_to(upstream, "/sharedroute")) == 1 + ATTEMPTS


def test_a_call_can_ask_for_a_shorter_timeout(upstream):
    upstream.faults["protocol"] = Fault(mode="slow", delay=0.4)
    assert http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY})["status"] == "driving"
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable):
        http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY}, timeout=(0.2, 0.2), retries=0)
    assert time.monotonic() - started < 0.4
    assert len(calls_to(upstream, "/sharedroute")) == 2


def test_a_404_is_rejected_at_once_with_its_status(upstream):
    protocol.CONTROLS["order"]({"key": KEY, "gone": True})
    with pytest.raises(UpstreamRejected) as raised:
        http.call_json("protocol", "GET", "/sharedroute", params={"key": KEY})
    assert raised.value.upstream_status == 404
    assert len(calls_to(upstream, "/sharedroute")) == 1


def test_a_400_is_rejected_at_once(upstream):
    upstream.faults["protocol"] = Fault(mode="error", status=400)
    with pytest.raises(UpstreamRejected) as raised:
        http.call("protocol", "GET", "/sharedroute", params={"key": KEY})
    assert raised.value.upstream_status == 400
    assert len(calls_to(upstream, "/sharedroute")) == 1


def test_a_post_without_idempotency_key_is_not_retried(upstream):
    upstream.faults["protocol"] = Fault(mode="error", status=500)
    with pytest.raises(UpstreamUnavailable):
        http.call_json("protocol", "POST", "/ordercontactobtain", json={"order_id": "o1"})
    posts = calls_to(upstream, "/ordercontactobtain")
    assert len(posts) == 1
    assert posts[0]["idempotency_token"] is None


def test_a_post_without_idempotency_key_is_not_resent_after_a_read_timeout(upstream):
    # The upstream may have acted on it: sending it again could do the thing twice.
    upstream.faults["protocol"] = Fault(mode="timeout", status=200, delay=0.8)
    with pytest.raises(UpstreamUnavailable):
        http.call_json("protocol", "POST", "/ordercontactobtain", json={"order_id": "o1"})
    assert len(calls_to(upstream, "/ordercontactobtain")) == 1


def test_a_post_with_idempotency_key_is_retried_with_the_same_token(upstream):
    upstream.faults["protocol"] = Fault(mode="error", status=500, count=ATTEMPTS - 1)
    body = http.call_json("protocol", "POST", "/ordercontactobtain", json={"order_id": "o1"},
                          idempotency_key="contact:o1")
    assert body["phone"].startswith("+7555")
    posts = calls_to(upstream, "/ordercontactobtain")
    assert [post["idempotency_token"] for post in posts] == ["contact:o1"] * ATTEMPTS
    assert all(post["body"] == {"order_id": "o1"} for post in posts)


def test_a_post_with_idempotency_key_gives_up_after_the_configured_attempts(upstream):
    upstream.faults["protocol"] = Fault(mode="error", status=502)
    with pytest.raises(UpstreamUnavailable):
        http.call_json("protocol", "POST", "/ordercontactobtain", json={"order_id": "o1"}, idempotency_key="k")
    assert len(calls_to(upstream, "/ordercontactobtain")) == ATTEMPTS


def test_the_same_upstream_serves_both_kinds_of_post(upstream):
    # One session per (upstream, idempotent POST): a keyed call must not make unkeyed POSTs retried.
    http.call_json("protocol", "POST", "/ordercontactobtain", json={"order_id": "o1"}, idempotency_key="k")
    upstream.faults["protocol"] = Fault(mode="error", status=500)
    with pytest.raises(UpstreamUnavailable):
        http.call_json("protocol", "POST", "/ordercontactobtain", json={"order_id": "o2"})
    assert [post["body"]["order_id"] for post in calls_to(upstream, "/ordercontactobtain")] == ["o1", "o2"]


def test_an_unconfigured_upstream_is_unavailable_without_a_call(upstream):
    with pytest.raises(UpstreamUnavailable) as raised:
        http.call_json("nowhere", "GET", "/anything")
    assert raised.value.code == "upstream_not_configured"
    assert all(not calls for calls in upstream.calls.values())


def test_a_refused_connection_is_unavailable_quickly(upstream):
    with socket.socket() as probe:  # a loopback port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UPSTREAM_PROTOCOL_URL", f"http://127.0.0.1:{port}/protocol")
        reload_settings()
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as raised:
            http.call("protocol", "GET", "/sharedroute", params={"key": KEY})
        elapsed = time.monotonic() - started
    reload_settings()
    assert raised.value.code == "upstream_unavailable"
    assert elapsed < 2.0
    assert upstream.calls["protocol"] == []


@pytest.fixture
def throttling_upstream(upstream):
    """An upstream that always answers 503 with `Retry-After: 5` (the simulator sets no headers)."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            hits.append(time.monotonic())
            payload = b'{"code": "throttled"}'
            self.send_response(503)
            self.send_header("Retry-After", "5")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UPSTREAM_THROTTLED_URL", f"http://127.0.0.1:{server.server_port}")
        reload_settings()
        yield patch, hits
    reload_settings()
    server.shutdown()
    server.server_close()


def test_retry_after_is_honoured_only_up_to_the_cap(throttling_upstream):
    patch, hits = throttling_upstream
    # The real cap (2 s) would make this test slow; the mechanism is the same with a smaller one.
    patch.setattr(http, "RETRY_AFTER_CAP_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable):
        http.call("throttled", "GET", "/anything")
    elapsed = time.monotonic() - started
    assert len(hits) == ATTEMPTS
    gaps = [later - earlier for earlier, later in zip(hits, hits[1:])]
    assert all(0.25 <= gap < 1.0 for gap in gaps), gaps  # waited, but the cap, not the upstream's 5 s
    assert elapsed < 2.0


def test_keep_connections_widens_one_upstreams_pool_and_never_narrows_it(upstream):
    def pool_size(name: str) -> int:
        session = http._session(name, True, 2)
        return session.get_adapter(http.base_url(name))._pool_maxsize

    assert pool_size("krt") == pool_size("protocol") == http.DEFAULT_POOL_SIZE
    http.keep_connections("krt", 32)
    assert (pool_size("krt"), pool_size("protocol")) == (32, http.DEFAULT_POOL_SIZE)
    http.keep_connections("krt", 8)
    assert pool_size("krt") == 32
