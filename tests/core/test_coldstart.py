"""Once its imports are done, a Lambda process freezes them out of the garbage collector's way, once."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from chalicelib.core.settings import ROUTE_MODULES_VARIABLE
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


# A service's API function as Lambda starts it: its handler module, with the route modules the build names.
API_FUNCTION = """
import gc, json, sys
from chalicelib.core import api_function, aws
assert gc.isenabled(), "the collector is back on once the imports are done"
assert gc.get_freeze_count() > 10_000
assert "app" not in sys.modules, "the whole app is no function's handler"
queue_modules = sorted(m for m in sys.modules if m.rsplit(".", 1)[-1] in ("tasks", "jobs"))
assert not queue_modules, queue_modules
others = sorted({m.split(".")[1] for m in sys.modules if m.startswith("chalicelib.")} - {"core", "route_sharing"})
assert not others, f"another service's code in the route sharing function: {others}"
routes = sorted(api_function.app.routes)
assert "/order-route-sharing/v1/sharing_keys" in routes and "/ping" not in routes, routes
assert aws.shared_clients() == ["dynamodb"], aws.shared_clients()  # made in the init phase
from pydantic import BaseModel
def every_model(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from every_model(sub)
built = {m.__qualname__ for m in every_model(BaseModel)
         if m.__module__.startswith("chalicelib.") and m.__pydantic_complete__}
# Its own routes' request and response models are built in the init phase (not inside its first request); no
# other model is, for a function that has no use for it.
from chalicelib.core.api import ROUTES
own = {model.__qualname__ for spec in ROUTES if spec.module == "chalicelib.route_sharing.api"
       for model in (spec.query, spec.headers, spec.body, spec.response) if model is not None}
assert own and own <= built, own - built
assert not built - own - {"CorpInfo"}, built - own  # CorpInfo: a field of its routes' answers
print("ok")
"""


def test_an_api_function_loads_its_own_routes_only_and_makes_its_dynamodb_client_while_it_starts():
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update({"AWS_LAMBDA_FUNCTION_NAME": "taxi-delivery-test-RouteSharingApi",
                ROUTE_MODULES_VARIABLE: "chalicelib.route_sharing.api"})
    answer = subprocess.run([sys.executable, "-c", API_FUNCTION], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert answer.returncode == 0 and answer.stdout.strip().splitlines()[-1] == "ok", answer.stderr[-2000:]


INIT_CALLS = ("import sys, botocore.client\n"
              "calls = []\n"
              "original = botocore.client.BaseClient._make_api_call\n"
              "botocore.client.BaseClient._make_api_call = lambda c, o, p: calls.append(o) or original(c, o, p)\n"
              "from chalicelib.core import api_function\n"
              "print(','.join(calls))")


def _init_calls(route_module: str, endpoint: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update({"AWS_LAMBDA_FUNCTION_NAME": "taxi-delivery-test-Api", ROUTE_MODULES_VARIABLE: route_module,
                "AWS_ENDPOINT_URL": endpoint})
    answer = subprocess.run([sys.executable, "-c", INIT_CALLS], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert answer.returncode == 0, answer.stderr[-2000:]
    return answer.stdout.strip().splitlines()[-1].split(",")


def test_the_api_functions_init_rehearses_its_dynamodb_reads_without_sending_anything():
    """The init phase runs a GetItem and a Query through the client against a canned answer (so the first
    request does not pay botocore's first-call work): nothing reaches DynamoDB. (The platform's function: it
    defines no config, so nothing else is read while it starts.)"""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    try:
        calls = _init_calls("chalicelib.platform.api", "http://127.0.0.1:%d" % listener.getsockname()[1])
        with pytest.raises(socket.timeout):
            listener.accept()  # no connection was ever opened
    finally:
        listener.close()
    assert calls == ["GetItem", "Query"]


def test_the_api_functions_init_reads_its_configs_in_one_batch_and_gives_up_when_it_fails():
    """Then it reads the configs its routes declare (its role may read `configs`) in one BatchGetItem, so its first
    request finds them cached. Best effort: DynamoDB out of reach (a port nobody listens on) never fails the init,
    and the one failed read ends the warm-up: no config pays its timeouts inside the init phase."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    assert _init_calls("chalicelib.route_sharing.api", f"http://127.0.0.1:{port}") == ["GetItem", "Query", "BatchGetItem"]


def test_packaging_and_tests_see_every_handler():
    from app import app

    assert {"save_sharing_keys", "picker_order_events", "scooters_follow_claims"} <= set(app.handler_map)
