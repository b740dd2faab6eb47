"""Once its imports are done, a Lambda process freezes them out of the garbage collector's way, once."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# A queue function's process: its handler module WITHOUT app.py, then two batches.
CODE = """
import gc
from chalicelib.route_sharing import tasks
assert gc.get_freeze_count() == 0, "nothing frozen by the imports alone"
tasks.finish_shared_order({"Records": []}, None)
first = gc.get_freeze_count()
assert first > 10_000, first  # every module, class and schema imported so far
garbage = [[i] for i in range(50_000)]
tasks.finish_shared_order({"Records": []}, None)
assert gc.get_freeze_count() == first, "a later invocation must not freeze its own objects"
print("ok")
"""


def test_the_first_batch_freezes_the_imports_and_only_the_first():
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    answer = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert answer.returncode == 0 and answer.stdout.strip() == "ok", answer.stderr[-2000:]


def test_the_api_function_freezes_at_the_end_of_app_py():
    code = "import gc, app; assert gc.get_freeze_count() > 10_000; print('ok')"
    answer = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert answer.stdout.strip() == "ok", answer.stderr[-2000:]


# The API function as Lambda starts it: the runtime names the function; app.py is its handler module.
API_FUNCTION = """
import gc, json, sys, app
from chalicelib.core import aws
assert gc.isenabled(), "the collector is back on once the imports are done"
assert gc.get_freeze_count() > 10_000
queue_modules = sorted(m for m in sys.modules if m.rsplit(".", 1)[-1] in ("tasks", "jobs"))
assert not queue_modules, queue_modules
assert not app.app.handler_map.get("save_sharing_keys"), "queue handlers run in their own functions"
routes = {path for path in app.app.routes}
assert "/order-route-sharing/v1/sharing_keys" in routes and len(routes) > 20, len(routes)
assert aws.shared_clients() == ["dynamodb"], aws.shared_clients()  # made in the init phase
from pydantic import BaseModel
def every_model(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from every_model(sub)
built = sorted({m.__qualname__ for m in every_model(BaseModel)
                if m.__module__.startswith("chalicelib.") and m.__pydantic_complete__})
assert not built, f"payload models built while the API function starts (each on first use instead): {built}"
from chalicelib.core import config
print(json.dumps(sorted(config.REGISTRY)))
"""


def test_the_api_function_loads_routes_only_and_makes_its_dynamodb_client_while_it_starts():
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env["AWS_LAMBDA_FUNCTION_NAME"] = "taxi-delivery-test-APIHandler"
    answer = subprocess.run([sys.executable, "-c", API_FUNCTION], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr[-2000:]
    # The config API still knows every config and experiment (this process imported every handler module).
    from chalicelib.core import config

    assert json.loads(answer.stdout.strip().splitlines()[-1]) == sorted(config.REGISTRY)


def test_packaging_and_tests_see_every_handler():
    from app import app

    assert {"save_sharing_keys", "picker_order_events", "scooters_follow_claims"} <= set(app.handler_map)
