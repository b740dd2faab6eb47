"""Every route, queue, schedule, config and table in the code is named in its service's doc.

The service is the chalicelib package that defines the thing: a route's view, a queue's consumer (or, for a queue
the app only sends to, the package that declares it), a schedule's handler, a config's definition, a table's model.
Each service's doc is docs/services/<package>.md. The platform's (chalicelib/platform and chalicelib/core: ping,
the config API, the OpenAPI document, the configs and leases tables) belong in docs/architecture.md.

How a doc must name each thing (inside backticks, as the docs' tables do):
    route      `GET /path` (optionally followed by ?query in the same backticks)
    queue      `queue_name`
    schedule   `FunctionName` (the Lambda's resource name, as in `make fire FN=...`)
    config     `config_name`
    table      `table_name`
Relative links in the docs must point at files or folders that exist.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from chalice.app import ScheduledEventConfig
from chalice.utils import to_cfn_resource_name

import chalicelib
from app import app
from chalicelib.core.api import ROUTES
from chalicelib.core.config import REGISTRY, ConfigDef
from chalicelib.core.queues import PRODUCED_QUEUES, QUEUES
from chalicelib.core.storage import Table
from tests.conftest import ROOT

DOCS = ROOT / "docs"
SERVICES = DOCS / "services"
ARCHITECTURE = DOCS / "architecture.md"
PLATFORM_PACKAGES = {"platform", "core"}


@dataclasses.dataclass(frozen=True)
class Entry:
    package: str  # the chalicelib package that defines it
    kind: str  # route | queue | schedule | config | table
    name: str  # as the doc must show it (inside backticks)

    @property
    def doc(self) -> Path:
        return ARCHITECTURE if self.package in PLATFORM_PACKAGES else SERVICES / f"{self.package}.md"

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.package})"


def _package(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "chalicelib" and len(parts) > 2, f"{module} is not inside a chalicelib package"
    return parts[1]


def _import_everything() -> list:
    """Every module of chalicelib, so every table, config and declared queue is registered."""
    modules = []
    for info in pkgutil.walk_packages(chalicelib.__path__, prefix="chalicelib."):
        modules.append(importlib.import_module(info.name))
    return modules


MODULES = _import_everything()


def _packages_holding(predicate) -> set[str]:
    """The service packages one of whose modules holds a global for which `predicate` is true."""
    return {_package(module.__name__) for module in MODULES if module.__name__.count(".") >= 2
            and any(predicate(value) for value in vars(module).values())}


def _declaring_package(queue: str) -> str:
    """A produced queue's package: the one whose source names it as a string literal."""
    literal = re.compile(rf"""["']{re.escape(queue)}["']""")
    found = {_package(module.__name__) for module in MODULES if module.__name__.count(".") >= 2
             and module.__file__ and literal.search(Path(module.__file__).read_text(encoding="utf-8"))}
    assert len(found) == 1, f"queue {queue} is named in {sorted(found) or 'no package'}: cannot tell its service"
    return found.pop()


def _all_tables() -> list[type[Table]]:
    found, pending = [], list(Table.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if getattr(model.Meta, "table_name", None):
            found.append(model)
    return found


def code_entries() -> list[Entry]:
    entries = []
    for spec in ROUTES:
        view = app.routes[spec.path][spec.method].view_function
        entries.append(Entry(_package(view.__module__), "route", f"{spec.method} {spec.path}"))
    for queue, consumer in QUEUES.items():
        entries.append(Entry(_package(consumer["module"]), "queue", queue))
    for queue in PRODUCED_QUEUES:
        entries.append(Entry(_declaring_package(queue), "queue", queue))
    for source in app.event_sources:
        if isinstance(source, ScheduledEventConfig):
            module = source.handler_string.rsplit(".", 1)[0]
            entries.append(Entry(_package(module), "schedule", to_cfn_resource_name(source.name)))
    for name, definition in REGISTRY.items():
        holders = _packages_holding(lambda value, d=definition: value is d) - {"core"} or {"core"}
        assert len(holders) == 1, f"config {name} is held by {sorted(holders)}: cannot tell its service"
        entries.append(Entry(holders.pop(), "config", name))
    for model in _all_tables():
        entries.append(Entry(_package(model.__module__), "table", model.Meta.table_name))
    return sorted(set(entries), key=lambda entry: (entry.package, entry.kind, entry.name))


def is_named(entry: Entry, text: str) -> bool:
    if entry.kind == "route":
        return re.search(rf"`{re.escape(entry.name)}(\?[^`\s]*)?`", text) is not None
    return f"`{entry.name}`" in text


def undocumented(entries: list[Entry], read=lambda path: path.read_text(encoding="utf-8")) -> list[Entry]:
    """The entries their doc does not name (a missing doc misses everything it should hold)."""
    texts: dict[Path, str] = {}
    missing = []
    for entry in entries:
        if entry.doc not in texts:
            texts[entry.doc] = read(entry.doc) if entry.doc.exists() else ""
        if not is_named(entry, texts[entry.doc]):
            missing.append(entry)
    return missing


ENTRIES = code_entries()
SERVICE_ENTRIES = [entry for entry in ENTRIES if entry.package not in PLATFORM_PACKAGES]
PLATFORM_ENTRIES = [entry for entry in ENTRIES if entry.package in PLATFORM_PACKAGES]


def test_the_code_has_something_to_document():
    """Guards the collectors: an empty list would make every other test pass."""
    kinds = {(entry.package, entry.kind) for entry in ENTRIES}
    for package in ("route_sharing", "picker_orders", "codedispatch", "deptrans", "scooters"):
        assert (package, "route") in kinds and (package, "config") in kinds and (package, "table") in kinds
    assert {entry.kind for entry in ENTRIES} == {"route", "queue", "schedule", "config", "table"}
    assert len([e for e in ENTRIES if e.kind == "route"]) == len(ROUTES)


@pytest.mark.parametrize("package", sorted({entry.package for entry in SERVICE_ENTRIES}))
def test_every_route_queue_schedule_config_and_table_is_in_its_services_doc(package):
    entries = [entry for entry in SERVICE_ENTRIES if entry.package == package]
    assert (SERVICES / f"{package}.md").exists(), f"docs/services/{package}.md is missing"
    missing = undocumented(entries)
    assert not missing, f"docs/services/{package}.md does not name: " + ", ".join(map(str, missing))


def test_platform_entries_are_documented():
    assert ARCHITECTURE.exists(), "docs/architecture.md is missing"
    assert PLATFORM_ENTRIES, "no platform entry found: the collector is broken"
    missing = undocumented(PLATFORM_ENTRIES)
    assert not missing, "docs/architecture.md does not name: " + ", ".join(map(str, missing))


def test_a_route_added_without_documentation_is_caught():
    """The check can fail: a route of the code that its doc no longer names is reported (and only that one)."""
    entries = [entry for entry in SERVICE_ENTRIES if entry.package == "codedispatch" and not undocumented([entry])]
    route = Entry("codedispatch", "route", "POST /codedispatch/order/create")
    assert route in entries
    doc = SERVICES / "codedispatch.md"
    without = doc.read_text(encoding="utf-8").replace(f"`{route.name}`", "`POST /codedispatch/order/elsewhere`")
    assert undocumented(entries, read=lambda path: without if path == doc else path.read_text("utf-8")) == [route]
    new = Entry("codedispatch", "route", "GET /codedispatch/not/documented")
    assert undocumented(entries + [new]) == [new]


def test_routes_are_matched_whole():
    """`GET /a/b` does not count as naming `GET /a`, nor a method for another."""
    text = "| `GET /codedispatch/assignment/status?order_id=` | `POST /x/y` |"
    assert is_named(Entry("x", "route", "GET /codedispatch/assignment/status"), text)
    assert not is_named(Entry("x", "route", "GET /codedispatch/assignment"), text)
    assert not is_named(Entry("x", "route", "GET /x/y"), text)


_LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


@pytest.mark.parametrize("doc", [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))], ids=lambda path: path.name)
def test_relative_links_point_at_files_that_exist(doc):
    for target, _ in _LINK.findall(doc.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        assert (doc.parent / target).resolve().exists(), f"{doc.name} links to {target}, which does not exist"


def test_docs_name_no_design_document():
    """The design documents are not in the repository: the docs link to code, never to them."""
    for doc in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        assert not re.search(r"\b00\d_[0-9a-f]{16}\b|design-docs", text), f"{doc.name} names a design document"
