from __future__ import annotations

import logging

import pytest
import requests

from chalicelib.core import clock
from tests.picker_orders.helpers import Records

UPSTREAM = "eats_picker_orders"


@pytest.fixture
def app_logs():
    handler = Records()
    root = logging.getLogger("chalicelib")
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def sim(simulator, client):
    """eats-picker-orders in the simulator: its orders, its faults, what it was asked."""
    base, _ = simulator

    class Sim:
        def order(self, eats_id: str, **fields) -> None:
            # The simulator stamps a status change with the wall clock; these tests run on the frozen one.
            fields.setdefault("status_updated_at", clock.now().isoformat())
            answer = requests.post(f"{base}/_control/{UPSTREAM}/order", json={"eats_id": eats_id, **fields}, timeout=5)
            assert answer.status_code == 200, answer.text

        def fault(self, **fields) -> None:
            answer = requests.post(f"{base}/_control/faults", json={"upstream": UPSTREAM, **fields}, timeout=5)
            assert answer.status_code == 200, answer.text

        def asked(self) -> list[str]:
            calls = requests.get(f"{base}/_control/calls", params={"upstream": UPSTREAM}, timeout=5).json()["calls"]
            return [call["query"].get("eats_id") for call in calls]

    return Sim()
