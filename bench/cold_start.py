"""Cold start of each API function, measured the way Lambda starts it: from the unpacked prod zip, bytecode writing
off, the function's own environment (from sam.json) and AWS_LAMBDA_FUNCTION_NAME set.

    .venv/bin/python bench/cold_start.py [--package build/prod/package] [--runs 15]

Without --package it packages the app first (deploy/package.py, as `make package STAGE=prod` does). The zip is
unpacked twice: as shipped (with its .pyc) and stripped of every __pycache__. Each sample is a fresh interpreter
(`python -S`, so only the zip and the standard library are importable, as /var/task on Lambda) with
PYTHONDONTWRITEBYTECODE=1 (the code directory is read-only there). Subjects are interleaved, N runs each, medians
compared side by side, and each run's import over that run's floor ("paired": the median of those ratios). Import
times are the child's own CPU time around the import (the machine is shared: CPU
time is what an import costs once the page cache is warm, whatever else runs), so neither the interpreter's own
start (equal for every subject) nor another process's load dilutes the ratios; requests are wall time, moto's
answers included, as a caller waits them.

  floor      `import chalice, boto3, pydantic, pynamodb.models` and one DynamoDB client: no line of ours (and, for
             scale, the same without boto3: the app uses botocore alone)
  <Function> its handler module imported (chalicelib.core.api_function: its service's routes, its DynamoDB client
             made in the init phase), then its route called twice as Lambda calls it (API Gateway's proxy event;
             moto's server on 127.0.0.1 with seeded tables)
             targets: RouteSharingApi <= 1.15x the floor, every API function <= 1.3x; first request <= 2x the second;
             what each request spent in AWS calls (and how many) and in building pydantic validators, so a first
             request over 2x the second says why
  no bytecode  the same import from the zip without its .pyc              target: shipped <= 0.5x of this
  its libraries  exactly the library modules the function's import loads (in its order, GC off as the function
             has it) and its DynamoDB client: the floor for that function's code, so import - this = our own code
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile

from _env import create_tables, prepare

import logging  # noqa: E402
import warnings  # noqa: E402

from moto.server import ThreadedMotoServer  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")

SERVER = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
SERVER.start()
ENDPOINT = f"http://127.0.0.1:{SERVER._server.server_port}"
ROOT = prepare(endpoint_url=ENDPOINT)  # before the app: PynamoDB reads it at import

from deploy.package import package  # noqa: E402

PHONE = "phone-cold-start"
CUSTOMER = "customer-cold-start"
PICKER_ORDER = "cold-start-order"
HANDLER_MODULE = "chalicelib.core.api_function"
TARGETS = {"RouteSharingApi": 1.15}
EVERY_FUNCTION_TARGET = 1.3

FLOOR = """
import time
started = time.process_time()
import chalice, boto3, pydantic, pynamodb.models
import botocore.session
botocore.session.get_session().create_client("dynamodb", "us-east-1")
print((time.process_time() - started) * 1000)
"""
FLOOR_WITHOUT_BOTO3 = FLOOR.replace("import chalice, boto3,", "import chalice, botocore,")
IMPORT = """
import time
started = time.process_time()
import chalicelib.core.api_function
print((time.process_time() - started) * 1000)
"""
# Every module of a third-party package (one shipped in the zip) the function's import loads, in its order.
USED_LIBRARIES = """
import json, os, sys
import chalicelib.core.api_function
shipped = {name.split(".")[0] for name in os.listdir(".")} - {"app", "chalicelib"}
print(json.dumps([name for name in sys.modules if name.split(".")[0] in shipped]))
"""
IMPORT_USED = """
import gc, importlib, time
started = time.process_time()
gc.disable()
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ImportError:  # a name a package puts in sys.modules itself, loaded with it
        pass
import botocore.session
botocore.session.get_session().create_client("dynamodb", "us-east-1")
gc.enable()
print((time.process_time() - started) * 1000)
"""
# The function as Lambda runs it: its handler imported, then called with API Gateway's proxy event, twice. What
# each request spends in AWS calls and in building pydantic validators is recorded too (wrapped after the import).
REQUEST = """
import json, sys, time
started = time.process_time()
from chalicelib.core import api_function
imported = time.process_time()

import botocore.client
import pydantic.type_adapter
from pydantic._internal import _model_construction

spent = {"aws": 0.0, "calls": 0, "pydantic": 0.0}
building = [0]


def timed(function, key, outermost=False):
    def wrapper(*args, **kwargs):
        begin = time.perf_counter()
        building[0] += outermost
        try:
            return function(*args, **kwargs)
        finally:
            building[0] -= outermost
            if not outermost or not building[0]:
                spent[key] += (time.perf_counter() - begin) * 1000
            spent["calls"] += key == "aws"
    return wrapper


botocore.client.BaseClient._make_api_call = timed(botocore.client.BaseClient._make_api_call, "aws")
_model_construction.complete_model_class = timed(_model_construction.complete_model_class, "pydantic", True)
pydantic.type_adapter.TypeAdapter._init_core_attrs = timed(pydantic.type_adapter.TypeAdapter._init_core_attrs,
                                                           "pydantic", True)


class Context:
    function_name = "cold-start-bench"
    aws_request_id = "bench"
    memory_limit_in_mb = 1024

    def get_remaining_time_in_millis(self):
        return 10_000


event, expected = json.loads(sys.argv[1]), int(sys.argv[2])
found = {"import": (imported - started) * 1000}
for request in ("first", "second"):
    spent.update(aws=0.0, calls=0, pydantic=0.0)
    begin = time.perf_counter()
    answer = api_function.app(event, Context())
    found[request] = (time.perf_counter() - begin) * 1000
    assert answer["statusCode"] == expected, answer
    found.update({f"{request} {key}": value for key, value in spent.items()})
print(json.dumps(found))
"""


def api_event(method: str, resource: str, *, path: str | None = None, query: dict | None = None,
              headers: dict | None = None, identity: dict | None = None, path_parameters: dict | None = None) -> dict:
    path = path or resource
    headers = headers or {}
    context = {"resourcePath": resource, "httpMethod": method, "path": "/api" + path, "stage": "api",
               "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}}
    if identity is not None:
        context["authorizer"] = {"principalId": "bench", **identity}
    return {
        "resource": resource, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query, "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()}
        or None, "pathParameters": path_parameters, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": context,
    }


DRIVER = {"park_id": "park-cold", "driver_profile_id": "driver-cold"}
CONFIG = "order_route_sharing_keep_after_finish_hours"
# One route per function (two for the platform's: its liveness and its config API), each answering as expected.
CASES = [
    ("RouteSharingApi", "GET sharing_keys", 200,
     api_event("GET", "/order-route-sharing/v1/sharing_keys", headers={"x-yataxi-phoneid": PHONE})),
    ("PickerOrdersApi", "GET tracking", 200,
     api_event("GET", "/eats/v1/eats-orders-tracking/v1/tracking", query={"order_nr": PICKER_ORDER},
               identity={"user_id": CUSTOMER})),
    ("CodedispatchApi", "GET assignment/status (none)", 404,
     api_event("GET", "/codedispatch/assignment/status", query={"order_id": "none"}, identity=DRIVER)),
    ("DeptransApi", "GET id/updates", 200,
     api_event("GET", "/deptrans-driver-status-integration/internal/v1/id/updates", query={"limit": "100"})),
    ("ScootersApi", "GET state-actions (no claim)", 404,
     api_event("GET", "/scooters-misc/v1/cargo/state-actions", query={"cargo_ref_id": "none", "point_id": "1"})),
    ("PlatformApi", "GET /ping", 200, api_event("GET", "/ping")),
    ("PlatformApi", "GET config (loads every config)", 200,
     api_event("GET", "/internal/v1/configs/{name}", path=f"/internal/v1/configs/{CONFIG}",
               path_parameters={"name": CONFIG})),
]


def seed() -> None:
    """Tables from the code (as the template builds them); the local stage's demo configs (local/demo_configs:
    every service's switches on); a phone with 3 live keys and 2 expired ones; a picker order being picked."""
    import app  # noqa: F401 - every config defined
    from chalicelib.core import config
    from chalicelib.picker_orders import events
    from chalicelib.picker_orders.schemas import PickerOrderMessage
    from chalicelib.route_sharing import keys as service
    from chalicelib.route_sharing.schemas import FinishOrderMessage, SaveKeyMessage

    create_tables()
    for path in sorted((ROOT / "local" / "demo_configs").glob("*.json")):
        for name, value in json.loads(path.read_text()).items():
            config.write(name, value)
    now = dt.datetime.now(dt.timezone.utc)
    messages = [SaveKeyMessage(order_id=f"cold-{i}", tariff_class="express", phone_ids=[PHONE],
                               created_at=now - dt.timedelta(minutes=i)) for i in range(5)]
    assert all(outcome is not service.SaveOutcome.FAILED for outcome in service.save_keys(messages))
    for i in range(2):
        service.finish_order(FinishOrderMessage(order_id=f"cold-{i}", finished_at=now - dt.timedelta(days=3)))
    events.apply_event(PickerOrderMessage.model_validate({
        "event_type": "STATUS_CHANGE", "order_nr": PICKER_ORDER, "order_status": "picking", "place_id": "place-1",
        "customer_id": CUSTOMER, "picker_id": "picker-1", "created_at": now.isoformat()}))


def unpack(zip_path: pathlib.Path, into: pathlib.Path, with_bytecode: bool) -> pathlib.Path:
    with zipfile.ZipFile(zip_path) as archive:
        members = [m for m in archive.namelist() if with_bytecode or "__pycache__/" not in m]
        archive.extractall(into, members)
    if with_bytecode and not any(into.glob("chalicelib/core/__pycache__/*.pyc")):
        raise SystemExit(f"{zip_path} ships no bytecode: package it with tools/bytecode.py")
    return into


def environments(template: dict) -> dict[str, dict[str, str]]:
    """Each API function's environment as Lambda gives it: its variables from the template, its name, and
    (standing in for the Lambda runtime's) credentials and region, with DynamoDB at moto's server."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "AWS_", "UPSTREAM_"))}
    base.update({"PYTHONDONTWRITEBYTECODE": "1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": ENDPOINT})
    found = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and properties.get("Handler", "").startswith(
                HANDLER_MODULE + "."):
            found[logical_id] = {**base, **properties["Environment"]["Variables"],
                                 "AWS_LAMBDA_FUNCTION_NAME": f"taxi-delivery-prod-{logical_id}"}
    return found


def child(directory: pathlib.Path, env: dict[str, str], code: str, *args: str) -> str:
    answer = subprocess.run([sys.executable, "-S", "-c", code, *args], cwd=directory,
                            env={**env, "PYTHONPATH": str(directory)}, capture_output=True, text=True)
    if answer.returncode:
        raise SystemExit(f"a child failed:\n{answer.stderr[-3000:]}")
    return answer.stdout.strip().splitlines()[-1]


def measure(package_dir: pathlib.Path, work: pathlib.Path, runs: int) -> dict[tuple, list[float]]:
    template = json.loads((package_dir / "sam.json").read_text())
    shipped = unpack(package_dir / "deployment.zip", work / "shipped", with_bytecode=True)
    bare = unpack(package_dir / "deployment.zip", work / "no-bytecode", with_bytecode=False)
    envs = environments(template)
    assert set(envs) == {case[0] for case in CASES}, sorted(envs)
    plain = next(iter(envs.values()))
    libraries = {name: IMPORT_USED.format(modules=json.loads(child(shipped, env, USED_LIBRARIES)))
                 for name, env in envs.items()}
    samples: dict[tuple, list[float]] = {}
    for run in range(runs + 1):  # run 0 warms the page cache for every subject alike
        values = {("floor",): float(child(shipped, plain, FLOOR)),
                  ("floor without boto3",): float(child(shipped, plain, FLOOR_WITHOUT_BOTO3))}
        for name, env in envs.items():
            values[(name, "no bytecode")] = float(child(bare, env, IMPORT))
            values[(name, "libraries")] = float(child(shipped, env, libraries[name]))
        for name, title, status, event in CASES:
            timings = json.loads(child(shipped, envs[name], REQUEST, json.dumps(event), str(status)))
            values.update({(name, title, key): value for key, value in timings.items()})
        for key, value in values.items():
            if run:
                samples.setdefault(key, []).append(value)
    return samples


def report(samples: dict[tuple, list[float]], zip_mb: float) -> None:
    """Best of the runs (the least disturbed sample: noise on a shared machine only adds) and, after it, the
    median; ratios of bests and of medians."""
    best = {key: min(values) for key, values in samples.items()}
    median = {key: statistics.median(values) for key, values in samples.items()}
    runs = len(samples[("floor",)])
    print(f"cold start per API function: the unpacked prod zip, its own environment, AWS_LAMBDA_FUNCTION_NAME set, "
          f"bytecode writing off, fresh interpreters, {runs} interleaved runs; best / median, ms (imports: CPU "
          "time; requests: wall time)")
    floor, floor_median = best[("floor",)], median[("floor",)]
    print(f"  floor: chalice, boto3, pydantic, pynamodb.models + one DynamoDB client    {floor:6.1f} / {floor_median:6.1f}")
    print(f"  the same without boto3 (the app uses botocore alone)                    "
          f"{best[('floor without boto3',)]:6.1f} / {median[('floor without boto3',)]:6.1f}")
    first_case: dict[str, str] = {}
    for name, title, _, _ in CASES:
        first_case.setdefault(name, title)
    print(f"  {'function':16s} {'import':>15s} {'/floor':>13s} {'paired':>6s} {'target':>6s} {'no .pyc':>7s} "
          f"{'.pyc/no':>7s} {'its libs':>8s} {'ours':>5s}")
    for name, title in first_case.items():
        imported, imported_median = best[(name, title, "import")], median[(name, title, "import")]
        bare = best[(name, "no bytecode")]
        # Each run's import over the same run's floor (measured moments apart), then the median of those ratios:
        # the load of the moment weighs on both sides of each ratio, so this one drifts least with the machine.
        paired = statistics.median(i / f for i, f in zip(samples[(name, title, "import")], samples[("floor",)]))
        print(f"  {name:16s} {imported:6.1f} / {imported_median:6.1f} {imported / floor:5.2f}x / "
              f"{imported_median / floor_median:4.2f}x {paired:5.2f}x {TARGETS.get(name, EVERY_FUNCTION_TARGET):5.2f}x "
              f"{bare:7.1f} {imported / bare:6.2f}x {best[(name, 'libraries')]:8.1f} "
              f"{imported - best[(name, 'libraries')]:5.1f}")
    print(f"  {'function':16s} {'route':32s} {'1st request':>15s} {'2nd request':>13s} {'1st/2nd':>13s}  (<= 2x)   "
          "median 1st: AWS calls (ms), pydantic builds (ms); 2nd: AWS calls (ms)")
    for name, title, _, _ in CASES:
        keys = [(name, title, "first"), (name, title, "second")]
        (first, second), (first_median, second_median) = [best[k] for k in keys], [median[k] for k in keys]
        parts = {part: median[(name, title, part)] for part in ("first calls", "first aws", "first pydantic",
                                                                "second calls", "second aws")}
        print(f"  {name:16s} {title:32s} {first:6.1f} / {first_median:6.1f} {second:5.1f} / {second_median:5.1f} "
              f"{first / second:5.2f}x / {first_median / second_median:4.2f}x   "
              f"{parts['first calls']:.0f} ({parts['first aws']:.1f}), {parts['first pydantic']:.1f}; "
              f"{parts['second calls']:.0f} ({parts['second aws']:.1f})")
    hot = first_case["RouteSharingApi"]
    waited = median[("RouteSharingApi", hot, "import")] + median[("RouteSharingApi", hot, "first")]
    print(f"  RouteSharingApi: import + first request {waited:.1f} ms, median (what a cold caller of the hot route "
          "waits, plus the runtime's own start)")
    print(f"  zip {zip_mb:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", type=pathlib.Path,
                        help="a packaged prod directory with sam.json and deployment.zip (default: package now)")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    seed()
    work = pathlib.Path(tempfile.mkdtemp(prefix="cold-start-"))
    try:
        package_dir = args.package or package("prod", work)[1].parent
        samples = measure(package_dir, work, args.runs)
        zip_mb = (package_dir / "deployment.zip").stat().st_size / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
        SERVER.stop()
    report(samples, zip_mb)


if __name__ == "__main__":
    main()
