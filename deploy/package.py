"""Packaging: what `make package`, the local stack, the template tests and the cold-start bench all run.

    python -m deploy.package --stage prod build/prod
        -> build/prod/resources.json (the merge template) and build/prod/package/{sam.json,deployment.zip}

1. the resources generated from the code (deploy/template.py), in a fresh interpreter;
2. `chalice package --stage <stage> --merge-template resources.json`: Chalice builds the template and the zip
   (app.py and chalicelib/ only: nothing of deploy/ or tools/ ships);
3. Chalice's own API function taken out of the template (below);
4. the zip's botocore data trimmed and its bytecode compiled (tools/bytecode.py).

Why APIHandler goes. Chalice makes one function for every route while the app has routes, and a merge template
can add or replace keys, never remove them. The merge points every route at its service's function
(deploy/api_functions.py), so APIHandler would serve nothing and still be deployed: the whole app in one function,
a role, a log group, alarms, a permission for the API to invoke it. Kept "for what no service claims", it would
only ever run a route the generator failed to assign: that must stop the build, not find a function that answers.
So this step drops APIHandler, its role, its permission and its outputs, and fails if anything in the template
still names it.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_REGION = "us-east-1"
CHALICE_API_FUNCTION = "APIHandler"
CHALICE_API_RESOURCES = (CHALICE_API_FUNCTION, "ApiHandlerRole", "APIHandlerInvokePermission")
CHALICE_API_OUTPUTS = ("APIHandlerName", "APIHandlerArn")
_NAMES_IT = re.compile(r"\b(APIHandler|ApiHandlerRole)\b")


def without_chalice_api_function(template: dict) -> dict:
    """The template without APIHandler and what only it uses; raises if anything else still names it."""
    for logical_id in CHALICE_API_RESOURCES:
        template["Resources"].pop(logical_id, None)
    for output in CHALICE_API_OUTPUTS:
        template.get("Outputs", {}).pop(output, None)
    left = sorted(set(_NAMES_IT.findall(json.dumps(template))))
    if left:
        raise ValueError(f"the template still names Chalice's API function ({', '.join(left)}): a route whose "
                         "integration no service function took over (deploy/api_functions.py)?")
    return template


def package(stage: str, build_dir: pathlib.Path, bytecode: bool = True) -> tuple[dict, pathlib.Path]:
    """Package the app for `stage` into build_dir; returns the SAM template and the zip's path."""
    build_dir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION}
    env.pop("AWS_ENDPOINT_URL", None)  # PynamoDB reads it at import: the build is for AWS, whatever the shell says
    resources = subprocess.run([python, "-m", "deploy.template", "--stage", stage], cwd=ROOT, env=env,
                               check=True, capture_output=True, text=True).stdout
    (build_dir / "resources.json").write_text(resources)
    out = build_dir / "package"
    shutil.rmtree(out, ignore_errors=True)
    chalice = pathlib.Path(python).parent / "chalice"
    subprocess.run([str(chalice), "package", "--stage", stage, "--merge-template",
                    str(build_dir / "resources.json"), str(out)], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    template_path = out / "sam.json"
    template = without_chalice_api_function(json.loads(template_path.read_text()))
    template_path.write_text(json.dumps(template, indent=2, separators=(",", ": ")) + "\n")
    if bytecode:  # the functions (and the emulator's) run the same Python minor: tools/bytecode.py checks it
        subprocess.run([python, "-m", "tools.bytecode", str(out)], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    return template, out / "deployment.zip"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.package", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("build_dir", type=pathlib.Path, help="e.g. build/prod")
    args = parser.parse_args(argv)
    _, zip_path = package(args.stage, args.build_dir.resolve())
    print(f"{zip_path.parent / 'sam.json'}\n{zip_path}")


if __name__ == "__main__":
    main()
