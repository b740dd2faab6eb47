"""A small threaded HTTP server that plays every upstream, each under its own prefix: /<upstream>/...

Each module in `upstreams/` declares NAME, ROUTES [(method, path regex, handler)] and reset(); it is
mounted at /<NAME>. A handler gets the request and returns (status, body) or (status, body, headers), or
(status, body, headers, delay): the answer is sent `delay` seconds late (the state change is already made; the
simulator's lock is not held meanwhile), e.g. an answer lost to the caller's timeout. Control endpoints:

    POST /_control/faults  {"upstream": "protocol", "mode": "error"|"timeout"|"slow"|"ok",
                            "status": 500, "delay": 3.0, "count": null}   # count: how many calls, null = until reset
    GET  /_control/calls?upstream=protocol                                  # what the upstream was asked
    POST /_control/reset                                                    # state, faults and calls
    POST /_control/<upstream>/<action> {...}                                # an upstream's own state setters
    <METHOD> /_control/<path>                                               # a module's CONTROL_ROUTES

A module may declare CONTROLS {action: fn(body) -> (status, body)} (POST /_control/<NAME>/<action>) and/or
CONTROL_ROUTES [(method, path regex, fn(request) -> (status, body))], matched against the path after
/_control/ (e.g. r"drivers" or r"scooter_backend/cars/(?P<car_id>[^/]+)"): controls that span upstreams
(sessions, drivers) or take a path parameter.

Listens on 127.0.0.1 only.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from . import upstreams as upstreams_package


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    match: re.Match | None = None


@dataclasses.dataclass
class Fault:
    mode: str = "ok"
    status: int = 500
    delay: float = 3.0
    count: int | None = None


class Simulator:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.upstreams = {}
        for info in pkgutil.iter_modules(upstreams_package.__path__):
            module = importlib.import_module(f"{upstreams_package.__name__}.{info.name}")
            self.upstreams[module.NAME] = module
        self.faults: dict[str, Fault] = {}
        self.calls: dict[str, list[dict]] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.calls = {name: [] for name in self.upstreams}
            for module in self.upstreams.values():
                module.reset()

    def take_fault(self, upstream: str) -> Fault | None:
        with self.lock:
            fault = self.faults.get(upstream)
            if fault is None or fault.mode == "ok":
                return None
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    del self.faults[upstream]
            return fault

    def dispatch(self, request: Request) -> tuple[int, Any]:
        parts = request.path.strip("/").split("/", 1)
        if parts[0] == "_control":
            return self.control(parts[1] if len(parts) > 1 else "", request)
        module = self.upstreams.get(parts[0])
        if module is None:
            return 404, {"code": "unknown_upstream", "message": parts[0]}
        sub_path = "/" + (parts[1] if len(parts) > 1 else "")
        with self.lock:
            self.calls[module.NAME].append(
                {"method": request.method, "path": sub_path, "query": request.query, "body": request.body,
                 "idempotency_token": request.headers.get("x-idempotency-token")})
        fault = self.take_fault(module.NAME)
        if fault is not None:
            if fault.mode in ("timeout", "slow"):
                time.sleep(fault.delay)
            if fault.mode in ("error", "timeout"):
                return fault.status, {"code": "simulated_fault", "message": fault.mode}
        for method, pattern, handler in module.ROUTES:
            match = re.fullmatch(pattern, sub_path)
            if match and method == request.method:
                request.path, request.match = sub_path, match
                with self.lock:
                    result = handler(request)
                if len(result) > 3:  # answered late, outside the lock
                    time.sleep(result[3])
                    return result[:3]
                return result
        return 404, {"code": "not_found", "message": f"{module.NAME} has no {request.method} {sub_path}"}

    def control(self, action: str, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        if action == "reset" and request.method == "POST":
            self.reset()
            return 200, {"status": "reset"}
        if action == "faults" and request.method == "POST":
            upstream = body.get("upstream")
            if upstream not in self.upstreams:
                return 400, {"code": "unknown_upstream", "message": str(upstream)}
            fault = Fault(mode=body.get("mode", "error"), status=int(body.get("status", 500)),
                          delay=float(body.get("delay", 3.0)), count=body.get("count"))
            with self.lock:
                self.faults[upstream] = fault
            return 200, dataclasses.asdict(fault)
        if action == "calls" and request.method == "GET":
            with self.lock:
                return 200, {"calls": list(self.calls.get(request.query.get("upstream", ""), []))}
        for module in self.upstreams.values():
            for method, pattern, handler in getattr(module, "CONTROL_ROUTES", ()):
                match = re.fullmatch(pattern, action)
                if match and method == request.method:
                    request.match = match
                    with self.lock:
                        return handler(request)
        name, _, sub_action = action.partition("/")
        module = self.upstreams.get(name)
        setter: Callable | None = getattr(module, "CONTROLS", {}).get(sub_action) if module else None
        if setter is None:
            return 404, {"code": "unknown_control", "message": action}
        with self.lock:
            return setter(body)


def make_handler(simulator: Simulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            request = Request(
                method=self.command, path=url.path,
                query=dict(urllib.parse.parse_qsl(url.query)),
                headers={k.lower(): v for k, v in self.headers.items()}, body=body,
            )
            extra_headers: dict[str, str] = {}
            try:
                result = simulator.dispatch(request)
                # A handler answers (status, body) or (status, body, headers), e.g. a 429 with Retry-After.
                status, answer = result[0], result[1]
                if len(result) > 2:
                    extra_headers = result[2]
            except Exception as error:  # the simulator must never die on a bad call
                status, answer = 500, {"code": "simulator_error", "message": repr(error)}
            payload = json.dumps(answer, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller timed out and left

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format, *args):  # noqa: A002 - quiet by default
            pass

    return Handler


def serve(port: int = 8100) -> tuple[ThreadingHTTPServer, Simulator]:
    """Start on 127.0.0.1:port (0 = any free port) in a daemon thread."""
    simulator = Simulator()
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(simulator))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="upstream-simulator", daemon=True).start()
    return server, simulator


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Upstream simulator")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    http_server, _ = serve(args.port)
    print(json.dumps({"event": "simulator.started", "url": f"http://127.0.0.1:{http_server.server_port}",
                      "upstreams": sorted(_.upstreams)}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        http_server.shutdown()
