"""Domain code stays free of the HTTP layer (issue 7, defect 8): only api.py knows Chalice; rules live in
files by topic, each small enough to read."""
from __future__ import annotations

import ast

from tests.conftest import ROOT

PACKAGE = ROOT / "chalicelib" / "codedispatch"
HTTP_LAYER = {"chalice", "chalicelib.core.api"}


def imported_modules(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_routes_module_imports_chalice_or_the_http_layer():
    offenders = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in ("api.py", "access.py"):  # the routes, and the IAM grants on the routes' blueprint
            continue
        layer = {name for name in imported_modules(path) if name.split(".")[0] == "chalice" or name in HTTP_LAYER}
        if layer:
            offenders[path.name] = layer
    assert offenders == {}


def test_the_rules_are_split_by_topic_in_files_under_300_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert {"store.py", "create.py", "assign.py", "processing.py", "lookup.py",
            "wrong_codes.py", "switches.py"} <= set(sizes)
    assert {name: size for name, size in sizes.items() if size > 300} == {}
