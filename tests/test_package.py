"""What ships: the prod deployment zip holds the app's runtime code and its libraries, nothing that builds the
template (deploy/, tools/, the test and local-stack code stay home)."""
from __future__ import annotations

import ast
import zipfile

import pytest

from deploy.package import without_chalice_api_function
from tests.packaged import package_prod

BUILD_TIME = ("deploy", "tools", "local", "tests", "bench")


@pytest.fixture(scope="module")
def shipped() -> dict[str, str]:
    """Every Python source of the prod zip that is ours (app.py and chalicelib/), by path."""
    with zipfile.ZipFile(package_prod() / "deployment.zip") as archive:
        names = archive.namelist()
        assert not [name for name in names if name.split("/")[0] in BUILD_TIME], "build-time code in the zip"
        return {name: archive.read(name).decode() for name in names
                if name.endswith(".py") and (name == "app.py" or name.startswith("chalicelib/"))}


def test_the_zip_holds_no_template_generation_module(shipped):
    assert "app.py" in shipped and "chalicelib/core/api_function.py" in shipped
    assert not [name for name in shipped if name.startswith("chalicelib/infra")]
    for name, source in shipped.items():
        imported = set()
        for node in ast.walk(ast.parse(source, name)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & set(BUILD_TIME), (name, imported & set(BUILD_TIME))
        # CloudFormation's vocabulary: resource types and intrinsic functions are written by deploy/ only.
        assert "AWS::" not in source and "Fn::" not in source, name


def test_packaging_refuses_a_template_that_still_routes_to_chalices_api_function():
    uri = {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                      "${APIHandler.Arn}/invocations"}
    template = {"Resources": {
        "APIHandler": {"Type": "AWS::Serverless::Function"}, "ApiHandlerRole": {"Type": "AWS::IAM::Role"},
        "RestAPI": {"Type": "AWS::Serverless::Api", "Properties": {"DefinitionBody": {"paths": {"/x": {"get": {
            "x-amazon-apigateway-integration": {"uri": uri}}}}}}}},
        "Outputs": {"APIHandlerArn": {"Value": {"Fn::GetAtt": ["APIHandler", "Arn"]}}}}
    with pytest.raises(ValueError, match="APIHandler"):
        without_chalice_api_function(template)
    template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]["/x"]["get"][
        "x-amazon-apigateway-integration"]["uri"] = {"Fn::Sub": uri["Fn::Sub"].replace("APIHandler", "XApi")}
    assert set(without_chalice_api_function(template)["Resources"]) == {"RestAPI"}
