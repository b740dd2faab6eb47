"""A function per service: each route runs in its service's own Lambda, with its service's grants only.

Checked on the packaged prod template (deploy/api_functions.py, deploy/package.py) and by starting each API
function the way Lambda does, with the environment the template gives it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app import app
from chalicelib.core import config
from chalicelib.core.storage import Table
from deploy import api_functions, grants
from deploy.roles import functions_of, service_of
from deploy.template import _all_tables, build, stage_lambda_timeout, stage_operations
from tests import iam
from tests.conftest import ROOT
from tests.packaged import PROD_OPERATIONS, resources_of, role_statements, template  # noqa: F401

# The contract: other systems (dashboards, alarms, runbooks, deploy scripts) know the functions by these ids.
API_FUNCTIONS = {"RouteSharingApi": "route_sharing", "PickerOrdersApi": "picker_orders",
                 "CodedispatchApi": "codedispatch", "DeptransApi": "deptrans", "ScootersApi": "scooters",
                 "PlatformApi": "platform"}
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


def _function_of_uri(uri: dict) -> str:
    text = uri["Fn::Sub"]
    assert text.startswith("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${")
    return text.split("${")[-1].removesuffix(".Arn}/invocations")


def test_every_route_runs_in_its_services_own_function(template):
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    routes = {(path, method.lower()): entry for path, methods in app.routes.items()
              for method, entry in methods.items()}
    assert {(path, method) for path, methods in paths.items() for method in methods} == set(routes)
    served: dict[str, set[str]] = {}
    for (path, method), entry in routes.items():
        logical_id = _function_of_uri(paths[path][method]["x-amazon-apigateway-integration"]["uri"])
        assert API_FUNCTIONS[logical_id] == service_of(entry.view_function.__module__), (method, path)
        served.setdefault(logical_id, set()).add(path)
    assert set(served) == set(API_FUNCTIONS)  # each of them serves routes, and no other function does
    assert {"/ping", "/internal/v1/configs/{name}", "/openapi.json"} == served["PlatformApi"]
    assert "/order-route-sharing/v1/sharing_keys" in served["RouteSharingApi"]


def test_chalices_own_api_function_is_not_deployed(template):
    """Every route belongs to a service, so Chalice's APIHandler (the whole app in one function) would serve
    nothing: the packaging drops it, its role and its permission, and nothing in the template names it."""
    text = json.dumps(template)
    assert "APIHandler" not in text and "ApiHandlerRole" not in text
    assert all(f["Properties"]["Handler"] != "app.app" for f in resources_of(template, "AWS::Serverless::Function").values())
    assert set(template["Outputs"]) == {"RestAPIId", "EndpointURL"}


def test_each_api_function_is_deployed_as_chalice_deploys_the_others(template):
    functions = resources_of(template, "AWS::Serverless::Function")
    chalice_made = functions["SaveSharingKeys"]["Properties"]
    permissions = resources_of(template, "AWS::Lambda::Permission")
    alarms = [a["Properties"] for a in resources_of(template, "AWS::CloudWatch::Alarm").values() if "MetricName" in a["Properties"]]
    for logical_id in API_FUNCTIONS:
        properties = functions[logical_id]["Properties"]
        assert properties["Handler"] == api_functions.HANDLER
        for key in ("Runtime", "CodeUri", "Timeout", "MemorySize", "Architectures", "Tags"):
            assert properties[key] == chalice_made[key], (logical_id, key)
        variables = properties["Environment"]["Variables"]
        assert {k: v for k, v in variables.items() if k in chalice_made["Environment"]["Variables"]} == \
            chalice_made["Environment"]["Variables"]  # the stage's environment, plus the build's module lists
        assert properties["ReservedConcurrentExecutions"] == PROD_OPERATIONS["api_reserved_concurrency"][logical_id]
        assert template["Resources"][properties["Role"]["Fn::GetAtt"][0]]["Type"] == "AWS::IAM::Role"
        [permission] = [p["Properties"] for p in permissions.values() if p["Properties"]["FunctionName"] ==
                        {"Ref": logical_id}]
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert permission["SourceArn"]["Fn::Sub"][1] == {"RestAPIId": {"Ref": "RestAPI"}}
        own = {(a["MetricName"], a.get("ExtendedStatistic")) for a in alarms
               if a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": logical_id}}]}
        assert own == {("Errors", None), ("Throttles", None), ("Duration", "p99")}, logical_id


def _owners(template) -> dict[str, set[str]]:
    """Queue or parameter -> the services whose functions' roles name it."""
    functions = {function.logical_id: function for function in functions_of(app)}
    owners: dict[str, set[str]] = {}
    for logical_id, resource in resources_of(template, "AWS::Serverless::Function").items():
        for _, name in iam.allowed(template["Resources"], role_statements(template, resource)):
            if name.startswith(("queue/", "parameter/")):
                owners.setdefault(name, set()).add(functions[logical_id].service)
    return owners


def test_no_api_functions_role_names_another_services_table_queue_or_parameter(template):
    tables = {f"table/{model.Meta.table_name}": service_of(model.__module__) for model in _all_tables()}
    owners = _owners(template)
    for logical_id, service in API_FUNCTIONS.items():
        function = resources_of(template, "AWS::Serverless::Function")[logical_id]
        named = {name for _, name in iam.allowed(template["Resources"], role_statements(template, function))}
        for name in named:
            if name.startswith("table/"):
                table = name.split("/index/")[0]
                assert tables[table] in (service, None), (logical_id, name)  # its own, or core's (configs, leases)
            elif name.startswith(("queue/", "parameter/")):
                assert owners[name] == {service}, (logical_id, name, owners[name])
            else:
                assert name == "*" or name.startswith(f"log-group//aws/lambda/${{AWS::StackName}}-{logical_id}:")
    assert {name for name, services in owners.items() if services == {"codedispatch"}} >= \
        {"queue/codedispatch_order_processing"}


def test_the_krt_credentials_are_readable_by_deptrans_functions_alone(template):
    krt = "parameter/taxi-delivery/prod/krt-credentials"
    functions = {function.logical_id: function for function in functions_of(app)}
    readers = {logical_id for logical_id, resource in resources_of(template, "AWS::Serverless::Function").items()
               if ("ssm:GetParameter", krt) in iam.allowed(template["Resources"], role_statements(template, resource))}
    assert readers and {functions[logical_id].service for logical_id in readers} == {"deptrans"}
    assert "DeptransApi" in readers and "RouteSharingApi" not in readers


# What each API function's process holds once started as Lambda starts it, and what its routes can reach.
STARTED = """
import json, sys
from chalicelib.core import api_function, config, openapi
started = sorted({m.split(".")[1] for m in sys.modules if m.startswith("chalicelib.") and m.count(".") >= 2})
routes = sorted(f"{method} {path}" for path, methods in api_function.app.routes.items() for method in methods)
answer = {"services": started, "routes": routes, "app": "app" in sys.modules}
if sys.argv[1] == "platform":
    answer["configs"] = bool(config.lookup("code_dispatch")) and len(config.REGISTRY)
    answer["documented"] = len(openapi.build_document()["paths"])
print(json.dumps(answer))
"""


@pytest.mark.parametrize("logical_id", sorted(API_FUNCTIONS))
def test_an_api_function_starts_with_its_service_and_core_alone(template, logical_id):
    service = API_FUNCTIONS[logical_id]
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update(template["Resources"][logical_id]["Properties"]["Environment"]["Variables"])
    env["AWS_LAMBDA_FUNCTION_NAME"] = f"taxi-delivery-prod-{logical_id}"
    answer = subprocess.run([sys.executable, "-c", STARTED, service], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr[-2000:]
    started = json.loads(answer.stdout.strip().splitlines()[-1])
    assert set(started["services"]) <= {"core", service} and service in started["services"], started["services"]
    assert not started["app"]
    assert started["routes"] == sorted(f"{method} {path}" for path, methods in app.routes.items()
                                       for method, entry in methods.items()
                                       if service_of(entry.view_function.__module__) == service)
    if service == "platform":
        # The config API knows every service's configs, and the local stage's document every route: both load
        # the other services' definitions on first use (their names come from the build), not at start.
        assert started["configs"] == len(config.REGISTRY)
        assert started["documented"] == len(app.routes)


def test_a_stage_names_the_reserved_concurrency_of_every_api_function_or_of_none():
    for stage in CONFIG["stages"]:
        template = build(stage, stage_lambda_timeout(stage), stage_operations(stage))
        reserved = {logical_id: template["Resources"][logical_id]["Properties"]["ReservedConcurrentExecutions"]
                    for logical_id in API_FUNCTIONS}
        assert reserved == CONFIG["stages"][stage]["operations"]["api_reserved_concurrency"], stage
    api = [function for function in functions_of(app) if function.kind == "api"]
    full = {function.logical_id: 5 for function in api}
    assert api_functions.reserved_concurrency(api, {}) == {}  # a stage without operations settings (tests)
    for bad in ({**full, "RouteSharingApi": 0}, {**full, "Nonexistent": 1},
                {k: v for k, v in full.items() if k != "ScootersApi"}, {**full, "PlatformApi": True}):
        with pytest.raises(ValueError, match="api_reserved_concurrency"):
            api_functions.reserved_concurrency(api, {"api_reserved_concurrency": bad})


def test_every_table_model_belongs_to_a_service_or_to_core():
    """What the role check above relies on: a table's owner is the package that defines its model."""
    for model in _all_tables():
        assert issubclass(model, Table)
        assert model.__module__.startswith("chalicelib.") and \
            (service_of(model.__module__) or model.__module__.startswith("chalicelib.core.")), model
    assert grants.missing_grants(app) == []
    assert all(definition.module.startswith("chalicelib.") for definition in config.REGISTRY.values())
