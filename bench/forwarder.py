"""Benchmark of the local stack's :8000 forwarder (run from the repo root, with the stack up):

    make run                                   # in another terminal; or let the bench start one: --start
    .venv/bin/python bench/forwarder.py [--requests 300] [--clients 1] [--start]

What a user of the local stack pays for the stable address. Side by side, interleaved (A B, then B A), in one
run, loopback only, bounded count:
  via :8000   http://127.0.0.1:8000/<path>: the forwarder finds the API, signs, forwards on a kept connection
  direct      http://127.0.0.1:4566/_aws/execute-api/<id>/api/<path>: the emulator's API itself; an internal
              route is signed by the caller here, as an internal client would
for two routes: GET /ping (public) and GET /order-route-sharing/v1/sharing_keys (internal, IAM-signed).
Each client keeps one connection per side (requests.Session-like). Prints p50/p99 of each and the p50
difference and ratio (target: the forwarder adds <= 5 ms p50). Absolute figures are the emulator's (~10-60 ms a
request, one Lambda hop): only the difference means something.
Without a running stack it prints SKIP and exits 0 (`make bench` runs every bench).
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import statistics
import sys
import threading
import time
import urllib.parse

from _env import ROOT  # noqa: E402  (not prepare(): it drops AWS_ENDPOINT_URL, which may name the running emulator)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from local import deployment, emulator, forwarder, stack as local_stack  # noqa: E402

ROUTES = {
    "ping": ("/ping", {}, False),
    "sharing_keys": ("/order-route-sharing/v1/sharing_keys", {"X-YaTaxi-PhoneId": "bench-forwarder-phone"}, True),
}
MAX_REQUESTS = 2000
VIA = f"via :{forwarder.API_PORT}"  # LOCAL_API_PORT moves the forwarder (e.g. to compare another build of it)
MAX_CLIENTS = 8


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Side:
    """One way to reach the API, over one kept connection."""

    def __init__(self, base: str, sign: bool):
        self.base = urllib.parse.urlsplit(base)
        self.sign = sign
        self.connection = http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=30)

    def get(self, path: str, headers: dict, internal: bool) -> float:
        full = self.base.path + path
        started = time.perf_counter()
        if self.sign and internal:
            headers = emulator.signed_headers("GET", f"{self.base.scheme}://{self.base.netloc}{full}", None,
                                                 dict(headers))
        self.connection.request("GET", full, headers=headers)
        response = self.connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {full} answered {response.status}")
        return elapsed


def run_client(api: str, direct: str, requests: int, out: dict, errors: list) -> None:
    sides = {VIA: Side(api, sign=False), "direct": Side(direct, sign=True)}
    try:
        for name, (path, headers, internal) in ROUTES.items():
            for side in sides.values():  # warm: Lambda workers, kept connections, the forwarder's target cache
                for _ in range(5):
                    side.get(path, headers, internal)
        for index in range(requests):
            order = list(sides.items()) if index % 2 == 0 else list(reversed(sides.items()))
            for route, (path, headers, internal) in ROUTES.items():
                for side_name, side in order:
                    out.setdefault((route, side_name), []).append(side.get(path, headers, internal))
    except Exception as error:  # reported by the main thread
        errors.append(error)


def stack_up() -> str | None:
    """The reason the stack cannot be benchmarked, or None when it is up."""
    if not emulator.emulator_healthy():
        return f"no emulator answers at {emulator.emulator_url()}"
    try:
        deployment.read_state()
    except Exception:
        return "no deployed stack in the emulator"
    if not emulator.http_ok(f"http://{emulator.HOST}:{forwarder.API_PORT}/ping", timeout=15):
        return f"nothing answers /ping on :{forwarder.API_PORT}"
    return None


def measure(requests: int, clients: int) -> None:
    api = f"http://{emulator.HOST}:{forwarder.API_PORT}"
    direct = deployment.api_base()
    per_client = max(1, requests // clients)
    results: list[dict] = [{} for _ in range(clients)]
    errors: list[Exception] = []
    threads = [threading.Thread(target=run_client, args=(api, direct, per_client, results[i], errors))
               for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"bench failed: {errors[0]!r}")
    merged: dict = {}
    for result in results:
        for key, samples in result.items():
            merged.setdefault(key, []).extend(samples)
    print(f"local forwarder, {per_client * clients} requests per route and side, {clients} client(s), interleaved, "
          f"loopback ({time.monotonic() - started:.1f} s)")
    for route in ROUTES:
        via, straight = merged[(route, VIA)], merged[(route, "direct")]
        for name, samples in ((VIA, via), ("direct", straight)):
            print(f"  {route:13s} {name:10s} p50 {statistics.median(samples):7.2f} ms   "
                  f"p99 {percentile(samples, 0.99):7.2f} ms")
        added = statistics.median(via) - statistics.median(straight)
        print(f"  {route:13s} forwarder adds p50 {added:+.2f} ms (target <= 5), ratio p50 "
              f"{statistics.median(via) / statistics.median(straight):.3f}, p99 "
              f"{percentile(via, 0.99) / percentile(straight, 0.99):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help=f"per route and side (at most {MAX_REQUESTS})")
    parser.add_argument("--clients", type=int, default=1, help=f"concurrent clients (at most {MAX_CLIENTS})")
    parser.add_argument("--start", action="store_true",
                        help="start the local stack for the run if none is up (emulator, deploy: minutes)")
    args = parser.parse_args()
    requests = max(1, min(args.requests, MAX_REQUESTS))
    clients = max(1, min(args.clients, MAX_CLIENTS))
    reason = stack_up()
    if reason is None:
        measure(requests, clients)
    elif args.start:
        with local_stack.running(redeploy=False):
            measure(requests, clients)
    else:
        print(f"SKIP bench/forwarder.py: {reason}; start the stack with `make run` (or pass --start)")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
