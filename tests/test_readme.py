"""The README's tables of routes, queues and tables stay true to the code."""
from __future__ import annotations

from app import app
from chalicelib.core.queues import PRODUCED_QUEUES
from deploy.template import _all_tables
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_route_is_documented():
    for path in app.routes:
        assert f"{path}`" in README or f"{path}?" in README, f"README does not mention route {path}"


def test_every_queue_and_table_is_documented():
    queues = {s.queue for s in app.event_sources if getattr(s, "queue", None)} | PRODUCED_QUEUES
    for name in sorted(queues) + [model.Meta.table_name for model in _all_tables()]:
        assert f"`{name}`" in README, f"README does not mention {name}"


def test_the_two_commands_are_shown():
    assert "make run" in README and "make test" in README


def test_the_tables_ttl_column_names_each_models_ttl_attribute():
    from chalicelib.core.storage import ttl_attribute_name

    rows = {line.split("|")[1].strip(): line.split("|")[3].strip()
            for line in README.splitlines() if line.startswith("| `") and line.count("|") >= 5}
    for model in _all_tables():
        ttl = ttl_attribute_name(model)
        assert rows.get(f"`{model.Meta.table_name}`") == (f"`{ttl}`" if ttl else "—"), model.Meta.table_name
