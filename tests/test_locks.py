"""The hashed locks: what each .in file asks for, every package pinned with its hashes, the venvs and the Lambda
zip running exactly that, and `make audit` / the installs wired to them (README, "Dependencies")."""
from __future__ import annotations

import email.parser
import importlib.metadata
import json
import re
import subprocess
import sys
import zipfile

import pytest
from chalice.deploy.packager import DependencyBuilder
from chalice.utils import OSUtils
from packaging.utils import canonicalize_name

from tests import locks
from tests.conftest import ROOT
from tests.packaged import package_prod  # one package per test run, shared with the template tests
from tools.bytecode import runtime_version

EMULATOR_VENV = ROOT / ".venv-emulator"
AS_BUILT = ("-o", f"{sys.prefix}/.installed")  # this venv is not reinstalled from a test


def _make(*arguments: str) -> subprocess.CompletedProcess:
    """A Makefile target with this venv as $(VENV)."""
    return subprocess.run(["make", "--no-print-directory", f"VENV={sys.prefix}", *arguments], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)


@pytest.mark.parametrize("lock", sorted(locks.LOCKS.values()), ids=lambda p: p.name)
def test_every_package_of_a_lock_is_pinned_with_its_hashes(lock):
    pins = locks.read(lock)
    assert pins
    for pin in pins.values():
        assert pin.version, (lock.name, pin)
        assert pin.hashes, (lock.name, pin.name)


def test_the_transitive_packages_are_locked_not_left_to_the_day_of_the_install():
    runtime = locks.read(locks.RUNTIME_LOCK)
    assert {"botocore", "pydantic-core", "certifi", "s3transfer", "typing-extensions"} <= set(runtime)
    # chalice depends on pip, setuptools and wheel: chalice's hash-checked download needs them locked too
    assert {"pip", "setuptools", "wheel"} <= set(runtime)
    assert {"botocore", "pydantic-core", "certifi"} <= set(locks.read(locks.EMULATOR_LOCK))


@pytest.mark.parametrize("source", sorted(locks.LOCKS), ids=lambda p: p.name)
def test_each_pin_chosen_in_an_in_file_is_what_its_lock_pins(source):
    """An .in edited without `make lock` fails here."""
    chosen = locks.read(source)
    locked = locks.read(locks.LOCKS[source])
    assert chosen
    for name, pin in chosen.items():
        assert pin.version, f"{source.name}: pin {name} with == (the lock keeps the transitive ones)"
        assert locked[name].version == pin.version, (source.name, name)


def test_the_dev_lock_holds_the_runtime_lock_as_is():
    """The dev venv (tests, chalice package) runs the very releases and files the zip ships."""
    dev = locks.read(locks.DEV_LOCK)
    for name, pin in locks.read(locks.RUNTIME_LOCK).items():
        assert dev[name] == pin, name
    assert "-r requirements.in" in (ROOT / "requirements-dev.in").read_text()


def test_the_dev_venv_runs_exactly_the_dev_lock():
    for pin in locks.read(locks.DEV_LOCK).values():
        if pin.applies():
            assert importlib.metadata.version(pin.name) == pin.version, pin.name


def test_the_emulator_venv_runs_exactly_its_lock_on_the_apps_python():
    if not (EMULATOR_VENV / ".installed").exists():
        pytest.skip("no emulator venv (make unit does not need one)")
    config = (EMULATOR_VENV / "pyvenv.cfg").read_text()
    version = re.search(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", config, re.M)
    assert (int(version[1]), int(version[2])) == sys.version_info[:2]
    [site_packages] = EMULATOR_VENV.glob("lib/python*/site-packages")
    installed = {canonicalize_name(d.metadata["Name"]): d.version
                 for d in importlib.metadata.distributions(path=[str(site_packages)])}
    for pin in locks.read(locks.EMULATOR_LOCK).values():
        if pin.applies():
            assert installed.get(pin.name) == pin.version, pin.name


def test_the_lambda_zip_ships_exactly_the_runtime_lock():
    """`chalice package` downloads what requirements.txt (the runtime lock) pins, hash-checked: the zip's
    distributions are the lock's, at its versions, and nothing of the dev tools."""
    package = package_prod()
    python = runtime_version(json.loads((package / "sam.json").read_text()))
    environment = locks.lambda_environment(python)
    expected = {pin.name: pin.version for pin in locks.read(locks.RUNTIME_LOCK).values() if pin.applies(environment)}
    shipped = {}
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        for name in archive.namelist():
            folder, _, file = name.partition("/")
            if folder.endswith(".dist-info") and file == "METADATA":  # top level: vendored copies inside are not
                metadata = email.parser.BytesParser().parsebytes(archive.read(name), headersonly=True)
                shipped[canonicalize_name(metadata["Name"])] = metadata["Version"]
    assert shipped == expected
    assert not {"pytest", "moto", "pip-audit", "uv"} & set(shipped)


def test_chalices_hash_checked_download_alone_fills_the_zip(tmp_path):
    """chalice package runs `pip download -r requirements.txt` (hash-checked: the lock has hashes), then, for
    each wheel Lambda cannot load, `pip download name==version --platform manylinux...` with no hash. Every
    file of that first pass being one Lambda loads means the second, unchecked pass downloads nothing."""
    answer = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                             "-r", str(locks.RUNTIME_LOCK), "--dest", str(tmp_path)], capture_output=True, text=True,
                            timeout=600)
    assert answer.returncode == 0, answer.stderr[-2000:]
    abi = "cp%d%d" % runtime_version(json.loads((package_prod() / "sam.json").read_text()))
    builder = DependencyBuilder(OSUtils())
    files = sorted(path.name for path in tmp_path.iterdir())
    assert len(files) == sum(pin.applies() for pin in locks.read(locks.RUNTIME_LOCK).values())
    assert [name for name in files if not builder._is_compatible_wheel_filename(abi, name)] == []


def test_both_commands_install_the_locks_in_hash_checking_mode():
    plan = _make("-n", "-B", f"{sys.prefix}/.installed", ".venv-emulator/.installed")
    assert plan.returncode == 0, plan.stdout
    installs = [line for line in plan.stdout.splitlines() if " -m pip install " in line]
    assert {re.search(r" -r (\S+)", line)[1] for line in installs} == \
        {"requirements-dev.txt", "local/requirements-emulator.txt"}
    assert all("--require-hashes" in line.split() for line in installs), installs
    makefile = (ROOT / "Makefile").read_text()
    for command in ("run", "test"):
        prerequisites = re.search(rf"^{command}:(.*)$", makefile, re.M)[1].split()
        assert prerequisites == ["$(VENV)/.installed", "$(EMU_VENV)/.installed"], command


def test_make_audit_runs_pip_audit_over_every_lock_as_pinned():
    """Its verdict needs the vulnerability service; --dry-run shows what it would audit: every lock, as
    written (--disable-pip), each package the lock pins for this platform."""
    answer = _make(*AS_BUILT, "audit", "AUDIT_ARGS=--dry-run")
    assert answer.returncode == 0, answer.stdout
    audited = dict(re.findall(r"^== (\S+)\n(?:.*\n)*?.*would have audited (\d+) packages", answer.stdout, re.M))
    expected = {str(lock.relative_to(ROOT)): str(sum(pin.applies() for pin in locks.read(lock).values()))
                for lock in locks.LOCKS.values()}
    assert audited == expected


def test_make_audit_refuses_a_lock_without_hashes(tmp_path):
    unhashed = tmp_path / "requirements.txt"
    unhashed.write_text("six==1.17.0\n")
    answer = _make(*AS_BUILT, "audit", f"AUDIT_LOCKS={unhashed}", "AUDIT_ARGS=--dry-run")
    assert answer.returncode != 0
    assert "hash" in answer.stdout.lower(), answer.stdout
