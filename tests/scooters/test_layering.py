"""The scooters package's rooms: the recharge side never imports the courier side (the courier side reads the
recharge side's task and lifecycle), and neither imports Chalice (only the thin handlers do)."""
from __future__ import annotations

import pathlib

import pytest

from tests.layering import imports_of as _imports

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "chalicelib" / "scooters"


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
