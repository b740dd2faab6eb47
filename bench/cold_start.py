"""Cold start, measured the way Lambda starts: from the unpacked deployment zip, bytecode writing off.

    .venv/bin/python bench/cold_start.py [--zip build/prod/package/deployment.zip] [--runs 15]

Without --zip it packages the app first (`chalice package` + tools/bytecode.py, as `make package` does). The
zip is unpacked twice: as shipped (with its .pyc) and stripped of every __pycache__. Each sample is a fresh
interpreter (`python -S`, so only the zip and the standard library are importable, as /var/task on Lambda)
with PYTHONDONTWRITEBYTECODE=1 (the code directory is read-only there). Subjects are interleaved, N runs each,
medians compared side by side:

  (a) `import app` with the shipped bytecode vs the same zip without it          target <= 0.5x
  (b) `import app` vs `import chalice, boto3, pydantic, pynamodb.models`         target <= 1.15x
  (c) first request vs second, in the same fresh process (GET sharing_keys, the hot route, against moto's
      server on 127.0.0.1 with a seeded table; the handler called as Lambda calls it)  target <= 2x

Every child runs as the API function does inside Lambda (AWS_LAMBDA_FUNCTION_NAME set: app.py loads routes only
and makes its DynamoDB client while importing). "floor of (b)" imports the very library modules `import app`
loads, then makes that client: what (b) would be if our own code cost nothing.

Import times are taken inside the child (perf_counter around the import), so the interpreter's own start,
equal for every subject, does not dilute the ratios.
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

from local import stack as local_stack  # noqa: E402

PHONE = "phone-cold-start"
LIBRARIES = "import chalice, boto3, pydantic, pynamodb.models"

IMPORT = """
import time
started = time.perf_counter()
{code}
print((time.perf_counter() - started) * 1000)
"""

# Every module of a third-party package (one shipped in the zip) that `import app` loads, in its order. The
# standard library modules come with them; the few our code alone imports are counted as ours.
USED_LIBRARIES = """
import json, os, sys
import app
shipped = {name.split(".")[0] for name in os.listdir(".")} - {"app", "chalicelib"}
print(json.dumps([name for name in sys.modules if name.split(".")[0] in shipped]))
"""
IMPORT_USED = """
import gc, importlib
gc.disable()
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ImportError:  # a name a package puts in sys.modules itself, loaded with it
        pass
import botocore.session
botocore.session.get_session().create_client("dynamodb", "us-east-1")
gc.enable()
"""

# The hot route through the Lambda entry point: API Gateway's proxy event, the handler called as Lambda does.
REQUEST = """
import json, sys, time
started = time.perf_counter()
import app
imported = time.perf_counter()


class Context:
    function_name = "cold-start-bench"
    aws_request_id = "bench"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self):
        return 10_000


event = json.loads(sys.argv[1])
times = []
for _ in range(2):
    begin = time.perf_counter()
    answer = app.app(event, Context())
    times.append((time.perf_counter() - begin) * 1000)
    assert answer["statusCode"] == 200, answer
    assert len(json.loads(answer["body"])["sharing_keys"]) == 3, answer["body"]
print(json.dumps({"import": (imported - started) * 1000, "first": times[0], "second": times[1]}))
"""


def api_event(path: str, headers: dict[str, str]) -> dict:
    return {
        "resource": path, "path": path, "httpMethod": "GET", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": "/api" + path, "stage": "api",
                           "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}},
    }


def unpack(zip_path: pathlib.Path, into: pathlib.Path, with_bytecode: bool) -> pathlib.Path:
    with zipfile.ZipFile(zip_path) as archive:
        members = [m for m in archive.namelist() if with_bytecode or "__pycache__/" not in m]
        archive.extractall(into, members)
    if with_bytecode and not any(into.glob("chalicelib/core/__pycache__/*.pyc")):
        raise SystemExit(f"{zip_path} ships no bytecode: package it with tools/bytecode.py")
    return into


def child(directory: pathlib.Path, code: str, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    # As the API function: the runtime names the function (app.py then loads and warms what routes need).
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(directory),
                "AWS_LAMBDA_FUNCTION_NAME": "taxi-delivery-prod-APIHandler"})
    answer = subprocess.run([sys.executable, "-S", "-c", code, *args], cwd=directory, env=env, check=True,
                            capture_output=True, text=True)
    return answer.stdout.strip().splitlines()[-1]


def seed() -> None:
    """Tables from the code (as the template builds them); a phone with 3 live keys and 2 expired ones."""
    from chalicelib.route_sharing import service
    from chalicelib.route_sharing.schemas import FinishOrderMessage, SaveKeyMessage

    create_tables()
    now = dt.datetime.now(dt.timezone.utc)
    messages = [SaveKeyMessage(order_id=f"cold-{i}", tariff_class="express", phone_ids=[PHONE],
                               created_at=now - dt.timedelta(minutes=i)) for i in range(5)]
    assert all(outcome is not service.SaveOutcome.FAILED for outcome in service.save_keys(messages))
    for i in range(2):
        service.finish_order(FinishOrderMessage(order_id=f"cold-{i}", finished_at=now - dt.timedelta(days=3)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zip", type=pathlib.Path, help="a packaged deployment.zip (default: package now)")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    seed()
    work = pathlib.Path(tempfile.mkdtemp(prefix="cold-start-"))
    try:
        zip_path = args.zip or local_stack.package("prod", work)[1]
        zip_mb = zip_path.stat().st_size / 2**20
        shipped = unpack(zip_path, work / "shipped", with_bytecode=True)
        bare = unpack(zip_path, work / "no-bytecode", with_bytecode=False)
        used = json.loads(child(shipped, USED_LIBRARIES))
        subjects = {
            "import app, shipped bytecode": (shipped, IMPORT.format(code="import app")),
            "import app, no bytecode": (bare, IMPORT.format(code="import app")),
            "import libraries": (shipped, IMPORT.format(code=LIBRARIES)),
            # `import pydantic` alone is lazy: any typed payload also loads BaseModel's machinery.
            "libraries + pydantic.BaseModel": (shipped,
                                               IMPORT.format(code=LIBRARIES + "; from pydantic import BaseModel")),
            "queue handler module alone": (shipped, IMPORT.format(code="import chalicelib.route_sharing.tasks")),
            # The floor under (b): exactly the library modules app.py ends up loading (chalice, botocore,
            # PynamoDB, pydantic with the parts typed payloads use...), in its order, GC off as app.py has it,
            # plus the DynamoDB client its init makes. No line of our code runs.
            "libraries app loads + its client": (shipped, IMPORT.format(code=IMPORT_USED.format(modules=used))),
        }
        event = json.dumps(api_event("/order-route-sharing/v1/sharing_keys", {"x-yataxi-phoneid": PHONE}))
        for directory, code in subjects.values():  # page cache warm for every subject alike
            child(directory, code)
        child(shipped, REQUEST, event)
        samples: dict[str, list[float]] = {name: [] for name in subjects}
        requests: dict[str, list[float]] = {"import": [], "first": [], "second": []}
        for _ in range(args.runs):
            for name, (directory, code) in subjects.items():
                samples[name].append(float(child(directory, code)))
            for key, value in json.loads(child(shipped, REQUEST, event)).items():
                requests[key].append(value)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        SERVER.stop()

    median = {name: statistics.median(values) for name, values in {**samples, **requests}.items()}
    print(f"cold start from the unpacked zip, bytecode writing off, fresh interpreters, median of {args.runs} "
          "interleaved runs (ms)")
    for name in samples:
        print(f"  {name:34s} {median[name]:7.1f}")
    print(f"  {'first request (GET sharing_keys)':34s} {median['first']:7.1f}")
    print(f"  {'second request':34s} {median['second']:7.1f}")
    a = median["import app, shipped bytecode"] / median["import app, no bytecode"]
    b = median["import app, shipped bytecode"] / median["import libraries"]
    c = median["first"] / median["second"]
    print(f"  (a) app with bytecode / without    {a:.2f}x (target <= 0.5)")
    print(f"  (b) app / libraries                {b:.2f}x (target <= 1.15)")
    print(f"  (c) first request / second         {c:.2f}x (target <= 2)")
    print(f"  app / (libraries + BaseModel)      "
          f"{median['import app, shipped bytecode'] / median['libraries + pydantic.BaseModel']:.2f}x (for scale)")
    floor = median["libraries app loads + its client"]
    print(f"  floor of (b): app's libraries + client / libraries   {floor / median['import libraries']:.2f}x; "
          f"our own code: {median['import app, shipped bytecode'] - floor:.1f} ms")
    print(f"  import + first request             {median['import'] + median['first']:7.1f} ms "
          "(what a cold caller waits, plus the runtime's own start)")
    print(f"  zip                                {zip_mb:7.1f} MB")


if __name__ == "__main__":
    main()
