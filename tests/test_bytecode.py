"""The deployment zip ships bytecode the Lambda's Python loads as is (tools/bytecode.py after `chalice package`)."""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT
from tests.packaged import package_prod  # one package per test run, shared with the template tests
from chalicelib.core import aws
from chalicelib.core.aws import SERVICES
from tools.bytecode import _pyc_name, runtime_version


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> pathlib.Path:
    """What `make package` builds: the prod package the template tests build (once per run), then the
    bytecode step, on a copy (the step rewrites the zip in place)."""
    out = tmp_path_factory.mktemp("bytecode") / "pkg"
    shutil.copytree(package_prod(), out)
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    subprocess.run([sys.executable, "-m", "tools.bytecode", str(out)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    return out


def test_every_module_of_the_zip_has_its_unchecked_hash_pyc_for_the_runtime(package):
    template = json.loads((package / "sam.json").read_text())
    # The bytecode is for the interpreter the functions run on (its cache tag and magic number).
    assert runtime_version(template) == sys.version_info[:2]
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        names = set(archive.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert "app.py" in sources and "chalicelib/core/api.py" in sources
        missing = [s for s in sources if _pyc_name(s) not in names]
        assert missing == []
        for source in sources:
            pyc = archive.read(_pyc_name(source))
            assert pyc[:4] == importlib.util.MAGIC_NUMBER, source
            # PEP 552 flags: hash-based (bit 0) and NOT checked against the source (bit 1); never a pyc of the
            # working tree that chalice may have copied (timestamp-based: recompiled at every cold start).
            assert int.from_bytes(pyc[4:8], "little") == 0b01, source
        assert sorted(n for n in names if n.endswith(".pyc")) == sorted(map(_pyc_name, sources))  # no orphan


def test_the_import_system_loads_the_shipped_bytecode_without_looking_at_the_source(package, tmp_path):
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        archive.extractall(tmp_path)
    # A source changed after packaging: an unchecked .pyc is still what runs (so zip timestamps cannot matter).
    clock = tmp_path / "chalicelib" / "core" / "clock.py"
    clock.write_text(clock.read_text() + "\nraise SystemExit('the source was compiled, not the shipped .pyc')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "AWS_ENDPOINT_URL"}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1"})
    # Every declared AWS service gets a client from the zip's slimmed botocore data.
    code = ("import app, chalicelib.core.clock as c\n"
            "from chalicelib.core import aws\n"
            "[aws.client(s) for s in sorted(aws.SERVICES)]\n"
            "print(c.__cached__)")
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    answer = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert answer.stdout.strip().endswith(_pyc_name("chalicelib/core/clock.py"))
    assert not list(tmp_path.glob("chalicelib/core/__pycache__/clock.*.pyc.*"))  # nothing was written


def test_the_zip_ships_botocore_data_only_for_the_declared_services(package):
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        services = {name.split("/")[2] for name in archive.namelist()
                    if name.startswith("botocore/data/") and name.count("/") > 2}
    assert services == set(SERVICES) | {"sts"}


def test_a_client_of_an_undeclared_service_is_refused_before_it_reaches_lambda():
    with pytest.raises(ValueError, match="SERVICES"):
        aws.client("ec2")
