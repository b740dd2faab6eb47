"""The scooters package's rooms: the recharge side never imports the courier side (the courier side reads the
recharge side's task and lifecycle), and neither imports Chalice (only the thin handlers do)."""
from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "chalicelib" / "scooters"


def _imports(path: pathlib.Path) -> set[str]:
    """Every module a file imports, absolute (relative imports resolved against its package)."""
    package = ["chalicelib", "scooters", path.parent.name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("room", ["recharge", "courier"])
def test_domain_rooms_never_import_chalice(room):
    for path in sorted((PACKAGE / room).glob("*.py")):
        assert not {m for m in _imports(path) if m == "chalice" or m.startswith("chalice.")}, path.name


def test_the_recharge_side_never_imports_the_courier_side():
    for path in sorted((PACKAGE / "recharge").glob("*.py")):
        courier = {m for m in _imports(path) if m.startswith("chalicelib.scooters.courier")}
        assert not courier, (path.name, courier)


def test_the_courier_side_reads_the_lifecycle():
    imported = set().union(*(_imports(p) for p in (PACKAGE / "courier").glob("*.py")))
    assert "chalicelib.scooters.recharge.lifecycle" in imported


def test_every_module_is_small():
    for path in sorted(PACKAGE.rglob("*.py")):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 400, path
