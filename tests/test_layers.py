"""The import rules of docs/architecture.md, held to the code: arrows point down only.

core imports no service; a service imports core and itself, never another service; nothing shipped imports the
whole app, the build, the local stack or the tests; only the handler rooms (api.py, tasks.py, jobs.py) and core's
HTTP, queue and authorizer layers import Chalice; and no file of the repository reaches 400 lines.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.layering import imports_of

SHIPPED = ROOT / "chalicelib"
SERVICES = ("route_sharing", "picker_orders", "codedispatch", "deptrans", "scooters", "platform")
HOME = ("app", "deploy", "local", "tests", "tools", "bench")
HANDLER_ROOMS = {"api.py", "tasks.py", "jobs.py"}
# core's own Chalice layer: the route decorator, the queue consumers, the authorizers, the API functions' app.
CORE_CHALICE = {"api.py", "queues.py", "authorizers.py", "api_function.py"}


def room_of(path: Path) -> str:
    """`core`, a service's name, or `chalicelib` for the package's own __init__."""
    parts = path.relative_to(SHIPPED).parts
    return parts[0] if len(parts) > 1 else "chalicelib"


def chalicelib_rooms(imported: set[str]) -> set[str]:
    return {module.split(".")[1] for module in imported if module.startswith("chalicelib.")}


SHIPPED_FILES = sorted(SHIPPED.rglob("*.py"))


def test_the_rules_see_every_room():
    """Guards the collectors: an empty walk would let every rule pass."""
    rooms = {room_of(path) for path in SHIPPED_FILES}
    assert {"core", *SERVICES} <= rooms
    assert chalicelib_rooms(imports_of(SHIPPED / "scooters" / "recharge" / "lifecycle.py")) >= {"core"}


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: str(path.relative_to(SHIPPED)))
def test_shipped_code_imports_down_only(path):
    imported = imports_of(path)
    room = room_of(path)
    others = chalicelib_rooms(imported) - {room, "core"}
    if room == "core":
        assert chalicelib_rooms(imported) <= {"core"}, f"core imports a service: {sorted(others)}"
    else:
        assert not others, f"{room} imports another service: {sorted(others)}"
    home = {module for module in imported if module.split(".")[0] in HOME}
    assert not home, f"shipped code imports what is never shipped: {sorted(home)}"


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: str(path.relative_to(SHIPPED)))
def test_only_handlers_import_chalice(path):
    allowed = CORE_CHALICE if room_of(path) == "core" else HANDLER_ROOMS
    chalice = {module for module in imports_of(path) if module == "chalice" or module.startswith("chalice.")}
    if path.name not in allowed or path.parent.parent != SHIPPED:
        assert not chalice, f"domain code imports Chalice: {sorted(chalice)}"


def test_a_service_importing_another_is_caught(tmp_path, monkeypatch):
    """The rule can fail: a topic module that reaches into another service is reported."""
    fake = SHIPPED / "route_sharing" / "keys.py"
    text = fake.read_text(encoding="utf-8") + "\nfrom chalicelib.deptrans import krt\n"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: text if self == fake
                        else Path.read_bytes(self).decode(encoding or "utf-8"))
    with pytest.raises(AssertionError, match="imports another service"):
        test_shipped_code_imports_down_only(fake)


def _repository_files() -> list[Path]:
    """Our Python sources: not what runs leave beside them (local/.state holds the emulator's unpacked Lambda
    code while a stack runs, e.g. during the e2e tests of the same session)."""
    found = {ROOT / "app.py"}
    for name in ("chalicelib", "deploy", "local", "tools", "tests", "bench"):
        for folder, subfolders, files in os.walk(ROOT / name):
            # Pruned, not filtered: a running emulator deletes its folders under local/.state while we walk.
            subfolders[:] = [sub for sub in subfolders if not sub.startswith(".") and sub != "__pycache__"]
            found.update(Path(folder) / file for file in files if file.endswith(".py"))
    return sorted(found)


def test_the_length_rule_reads_our_sources_only():
    files = _repository_files()
    assert ROOT / "local" / "stack.py" in files and ROOT / "chalicelib" / "core" / "api.py" in files
    assert not [path for path in files if ".state" in path.parts or ".venv" in path.parts]


def test_every_file_is_under_400_lines():
    long = {str(path.relative_to(ROOT)): count for path in _repository_files()
            if (count := len(path.read_text(encoding="utf-8").splitlines())) >= 400}
    assert not long, f"split these by topic: {long}"
