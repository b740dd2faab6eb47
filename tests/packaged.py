"""The prod package the template tests share: built once per test run (`make package STAGE=prod`)."""
from __future__ import annotations

import atexit
import functools
import json
import pathlib
import shutil
import tempfile

import pytest

from app import app
from deploy.package import package
from deploy.roles import Function, functions_of
from tests import iam
from tests.conftest import ROOT


@functools.cache
def package_prod() -> pathlib.Path:
    """`make package STAGE=prod`, the way the Makefile does it (once per test run, shared by the modules that
    need it): the directory with sam.json and the zip."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="taxi-package-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    # Without the bytecode step: tests/test_bytecode.py runs it on a copy, the step under test.
    _, zip_path = package("prod", out, bytecode=False)
    return zip_path.parent


@pytest.fixture(scope="session")
def template():
    return json.loads((package_prod() / "sam.json").read_text())


def resources_of(template, kind):
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


PROD_OPERATIONS = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]["operations"]


def role_statements(template, function: dict) -> list[dict]:
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return iam.statements_of(template["Resources"][role_id])


def alarms_of(template) -> list[dict]:
    return [a["Properties"] for a in resources_of(template, "AWS::CloudWatch::Alarm").values()]


def dimension_of(alarm: dict, name: str):
    return next((d["Value"] for d in alarm["Dimensions"] if d["Name"] == name), None)


def function_names(template) -> dict[str, Function]:
    """Template logical id -> the app's function (each event handler and authorizer by its handler string, each
    API function by the route modules its environment names): every function of the template is one of the app's."""
    by_handler = {source.handler_string: source.name for source in app.event_sources}
    by_handler.update({auth.handler_string: auth.name for auth in app.builtin_auth_handlers})
    functions = {function.logical_id: function for function in functions_of(app)}
    found = {}
    for logical_id, resource in resources_of(template, "AWS::Serverless::Function").items():
        function = functions[logical_id]
        if function.kind == "api":
            variables = resource["Properties"]["Environment"]["Variables"]
            assert tuple(variables["API_ROUTE_MODULES"].split(",")) == function.route_modules, logical_id
        else:
            assert by_handler[resource["Properties"]["Handler"]] == function.name, logical_id
        found[logical_id] = function
    assert set(found) == set(functions)
    return found
