"""The upstreams the deptrans sender calls, faked for bench/deptrans.py: KRT answering after a set latency, and
driver-profiles, categories and trackstory answering at once (every driver bound, in econom, in Moscow). They
run in a process of their own, on 127.0.0.1, with keep-alive, as real upstreams would not share the sender's GIL.
"""
from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeUpstreams(BaseHTTPRequestHandler):
    """KRT (with a latency) and the driver upstreams, on 127.0.0.1, keep-alive."""

    protocol_version = "HTTP/1.1"
    latency = 0.05
    # Headers and body go out as two writes: with Nagle on, the body waits for the client's delayed ACK
    # (~40 ms on Linux), which would add to every call's latency and make the latencies measured not the ones set.
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        path = self.path
        if path.endswith("/oauth/token"):
            answer = {"access_token": "bench-token", "token_type": "Bearer", "expires_in": 3600}
        elif path.endswith("/api/v1/line-states"):
            time.sleep(self.latency)
            answer = {"shift": {"status": "active", "ends_at": "2026-11-23T22:00:00Z"}}
        elif path.endswith("/v1/driver/profiles/retrieve"):
            answer = {"profiles": [{**d, "driver_license_pd_id": f"pd-{d['driver_profile_id']}"}
                                   for d in body["drivers"]]}
        elif path.endswith("/v2/aggregation/categories"):
            answer = {"drivers": [{**d, "categories": ["econom"]} for d in body["drivers"]]}
        elif path.endswith("/v2/positions"):
            answer = {"results": [{**d, "position": [37.6, 55.75]} for d in body["drivers"]]}
        else:
            answer = {}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002
        pass


def _serve_fake_upstreams(latency: float, ports) -> None:
    FakeUpstreams.latency = latency
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeUpstreams)
    server.daemon_threads = True
    ports.put(server.server_port)
    server.serve_forever()


def start_fake_upstreams(latency: float):
    """The fake upstreams in a process of their own (as KRT is): they must not share the sender's GIL."""
    import multiprocessing

    ports = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve_fake_upstreams, args=(latency, ports), daemon=True)
    process.start()
    base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    for name in ("krt", "driver_profiles", "personal", "driver_trackstory", "driver_categories_api"):
        os.environ[f"UPSTREAM_{name.upper()}_URL"] = f"{base}/{name}"
    os.environ["UPSTREAM_READ_TIMEOUT"] = "2.0"
    return process
