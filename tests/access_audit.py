"""IAM in process: every AWS call a Lambda handler makes in a test is checked against that function's policy.

A pytest plugin (`pytest -p tests.access_audit`; `make test` and `make unit` load it). While a test runs, each
botocore call (boto3 and PynamoDB alike) made inside a handler is attributed to the Lambda function that
handler belongs to: a route -> its service's API function (and its own blueprint's route grant), a queue or
schedule handler -> its own function, an authorizer -> its own. The call's (action, resource) pairs are checked against the
generated policy of that function (deploy/template.py, from the grants in chalicelib/<service>/access.py).
A call the policy does not allow fails as IAM would (AccessDeniedException) AND fails the test, naming the
function and the table or queue: code that starts using a table it did not declare cannot pass `make test`.
Calls made outside handlers (test set-up, assertions) are not attributed.

Configs too: a route that reads a config or experiment its `route(..., configs=...)` does not name fails the test
(its API function reads the named ones while it starts, core/api_function.py: an unnamed one would cost its first
request a DynamoDB read).
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import json
import os
import pathlib
import sys

import botocore.client
import pytest
from botocore.exceptions import ClientError

from tests import iam

_current: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar("lambda_function",
                                                                                        default=None)
# The route running now ("GET /path"): its declared configs are in Audit.route_configs.
_route: contextvars.ContextVar[str | None] = contextvars.ContextVar("route", default=None)


class Audit:
    def __init__(self, app, stage: str | None = None):
        from chalicelib.core import access
        from deploy.roles import Function, functions_of, policy_statements
        from deploy.template import build, stage_lambda_timeout, stage_operations

        self.app = app
        # Built for the stage the tests run as, so "{stage}" in a parameter name is the one the code reads.
        stage = stage or os.environ.get("APP_STAGE", "test")
        template = build(stage, stage_lambda_timeout(stage), stage_operations(stage))
        resources = template["Resources"]
        self.functions = {f.name: f for f in functions_of(app)}
        self.allowed: dict[str, set] = {
            name: iam.allowed(resources, iam.statements_of(resources[f.role_id]))
            for name, f in self.functions.items() if f.role_id in resources}
        # A blueprint's routes: only what that blueprint's route grant says (stricter than its service's function,
        # the union of the service's route blueprints).
        self.route_allowed: dict[str, set] = {}
        for module, grant in access.ROUTE_GRANTS.items():
            pseudo = Function(module, "RouteGrant", "RouteGrantRole", "api")
            statements = [s for s in policy_statements(pseudo, grant, resources, stage=stage)
                          if s["Sid"] != "OwnLogGroup"]
            self.route_allowed[module] = iam.allowed(resources, statements)
        from chalicelib.core.api import ROUTES

        self.route_configs: dict[str, frozenset[str]] = {f"{spec.method} {spec.path}": frozenset(spec.configs)
                                                         for spec in ROUTES}
        self.violations: list[str] = []
        self.seen: dict[str, set] = collections.defaultdict(set)

    def check(self, service: str, operation: str, params: dict) -> None:
        who = _current.get()
        if who is None or not _called_by_app_code():
            return
        function, route_module = who
        needs = iam.needed(service, operation, params)
        self.seen[function] |= needs
        refused = iam.denied(self.allowed.get(function, set()), needs)
        where = function
        if not refused and route_module is not None:
            refused = iam.denied(self.route_allowed.get(route_module, set()), needs)
            where = f"routes of {route_module}"
        if refused:
            message = (f"{where} is not granted {sorted(refused)} (declare it in chalicelib/<service>/access.py)")
            self.violations.append(message)
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, operation)


_audit: Audit | None = None
_ROOT = pathlib.Path(__file__).resolve().parents[1]
_APP_CODE = (str(_ROOT / "chalicelib") + os.sep, str(_ROOT / "app.py"))
_TEST_CODE = str(_ROOT / "tests") + os.sep


def _called_by_app_code() -> bool:
    """True when the nearest of our own frames making this call is the app's (not a test's stand-in or
    assertion running inside a handler, e.g. a monkeypatched service function)."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_APP_CODE):
            return True
        if filename.startswith(_TEST_CODE) and not filename.endswith(("access_audit.py", "iam.py")):
            return False
        frame = frame.f_back
    return False


@contextlib.contextmanager
def acting_as(function: str, route_module: str | None = None):
    token = _current.set((function, route_module))
    try:
        yield
    finally:
        _current.reset(token)


def _attributed(fn, function: str, route_module: str | None = None, route: str | None = None):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        token = _route.set(route)
        try:
            with acting_as(function, route_module):
                return fn(*args, **kwargs)
        finally:
            _route.reset(token)

    wrapper.__audited__ = True
    return wrapper


def install(app) -> Audit:
    """Attribute the app's handlers to their Lambda functions and check every botocore call (idempotent)."""
    global _audit
    if _audit is not None and _audit.app is app:
        return _audit
    from chalice.app import ChaliceAuthorizer
    from deploy.grants import route_module_of
    from deploy.roles import api_functions_of

    _audit = Audit(app)
    function_of_module = {module: function.name for function in api_functions_of(app)
                          for module in function.route_modules}
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if not getattr(entry.view_function, "__audited__", False):
                module = route_module_of(entry.view_function)
                entry.view_function = _attributed(entry.view_function, function_of_module[module], module,
                                                  f"{method} {path}")
    _audit_config_reads()
    for source in app.event_sources:
        handler = app.handler_map.get(source.name)
        if handler is not None and not getattr(handler, "__audited__", False):
            app.handler_map[source.name] = _attributed(handler, source.name)
    if not getattr(ChaliceAuthorizer.__call__, "__audited__", False):
        original_call = ChaliceAuthorizer.__call__

        def authorizer_call(self, *args, **kwargs):
            with acting_as(self.name):
                return original_call(self, *args, **kwargs)

        authorizer_call.__audited__ = True
        ChaliceAuthorizer.__call__ = authorizer_call
    if not getattr(botocore.client.BaseClient._make_api_call, "__audited__", False):
        original = botocore.client.BaseClient._make_api_call

        def make_api_call(client, operation_name, api_params):
            if _audit is not None:
                _audit.check(client.meta.service_model.service_name, operation_name, api_params)
            return original(client, operation_name, api_params)

        make_api_call.__audited__ = True
        botocore.client.BaseClient._make_api_call = make_api_call
    return _audit


def _audit_config_reads() -> None:
    """Every config read made by a route's code is one its route declares."""
    from chalicelib.core import config

    def checked(read):
        @functools.wraps(read)
        def wrapper(definition, *args, **kwargs):
            route = _route.get()
            if _audit is not None and route is not None and _called_by_app_code() \
                    and definition.name not in _audit.route_configs.get(route, ()):
                _audit.violations.append(f"{route} reads config {definition.name} without declaring it "
                                         "(route(..., configs=...))")
            return read(definition, *args, **kwargs)

        wrapper.__audited__ = True
        return wrapper

    for cls, name in ((config.ConfigDef, "get"), (config.ExperimentDef, "get"), (config.ExperimentDef, "snapshot")):
        if not getattr(cls.__dict__[name], "__audited__", False):
            setattr(cls, name, checked(cls.__dict__[name]))


@pytest.fixture(autouse=True)
def _access_audit(request):
    if "e2e" in request.keywords:
        yield
        return
    from app import app

    audit = install(app)
    before = len(audit.violations)
    yield
    found = audit.violations[before:]
    if found:
        pytest.fail("calls outside the function's grant:\n  " + "\n  ".join(sorted(set(found))), pytrace=False)


def unused(audit: Audit) -> dict[str, list]:
    """Per exercised function: tables (and indexes) its policy grants that no test call touched (a candidate
    for a tighter grant, or a path no test takes). Queues are left out: Lambda itself polls the consumed one."""
    report = {}
    for function, needs in audit.seen.items():
        used = {resource for _, resource in needs}
        report[function] = sorted({resource for _, resource in audit.allowed.get(function, set())
                                   if resource.startswith("table/") and resource not in used})
    return report


def pytest_terminal_summary(terminalreporter):
    if _audit is None:
        return
    exercised = sorted(_audit.seen)
    never = sorted(set(_audit.functions) - set(exercised))
    terminalreporter.write_line(f"access audit: AWS calls checked against the grants of: {', '.join(exercised)}"
                                + (f"; no AWS call seen from: {', '.join(never)}" if never else ""))
    if terminalreporter.config.getoption("verbose") > 0:
        terminalreporter.write_line("access audit, granted tables no test call touched: "
                                    + json.dumps({k: v for k, v in unused(_audit).items() if v}, indent=1))
        terminalreporter.write_line("access audit, calls seen: "
                                    + json.dumps({k: sorted(map(list, v)) for k, v in _audit.seen.items()}, indent=1))
