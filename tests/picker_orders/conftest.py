from __future__ import annotations

import logging

import pytest

from tests.picker_orders.helpers import Records


@pytest.fixture
def app_logs():
    handler = Records()
    root = logging.getLogger("chalicelib")
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
