"""cfn-lint with the serverless rules (cfn-lint-serverless) passes the packaged prod template: no error, no warning.

A rule that does not apply to one resource is silenced in that resource's metadata, with the reason
(deploy/ops.py: lint_ignore), never here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.packaged import package_prod  # one package per test run, shared with the template tests

CFN_LINT = os.path.join(os.path.dirname(sys.executable), "cfn-lint")


def lint(path) -> list[dict]:
    answer = subprocess.run([CFN_LINT, "--append-rules", "cfn_lint_serverless.rules", "--format", "json", "--",
                             str(path)], capture_output=True, text=True)
    assert answer.returncode in (0, 2, 4, 6, 8, 10, 12, 14), answer.stderr  # bit flags: errors/warnings/infos
    return json.loads(answer.stdout or "[]")


def test_the_prod_template_passes_cfn_lint_with_the_serverless_rules():
    findings = lint(package_prod() / "sam.json")
    assert findings == [], "\n".join(f"{f['Rule']['Id']} {f['Message']}" for f in findings)


def test_the_serverless_rules_are_active(tmp_path):
    """The same run on a bare function reports the serverless rules' findings: the check above can fail."""
    bare = {"AWSTemplateFormatVersion": "2010-09-09", "Transform": "AWS::Serverless-2016-10-31", "Resources": {
        "Fn": {"Type": "AWS::Serverless::Function", "Properties": {
            "Runtime": "python3.11", "Handler": "app.handler", "CodeUri": "s3://bucket/key.zip",
            "Events": {"Tick": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}}}},
        "Dlq": {"Type": "AWS::SQS::Queue"},
    }}
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(bare))
    rules = {finding["Rule"]["Id"] for finding in lint(path)}
    assert {"WS1000", "WS1004", "ES1007", "ES4000", "ES6000"} <= rules, rules
