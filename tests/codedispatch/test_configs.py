"""Configs: safe defaults, validated values, the local demo file, the tracker simulator's absent driver."""
from __future__ import annotations

import json
import pathlib

import pytest

from chalicelib.codedispatch.schemas import EXPERIMENT, GENERATOR_SETTINGS, PROCESSING_ENABLED, ZONES_SETTINGS
from chalicelib.core import config
from local.simulator.upstreams import tracker

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_defaults_keep_the_feature_off():
    assert EXPERIMENT.default.enabled is False
    assert PROCESSING_ENABLED.default is False
    assert ZONES_SETTINGS.default == {}
    assert (GENERATOR_SETTINGS.default.length, GENERATOR_SETTINGS.default.alphabet) == (6, "0123456789")


GENERATOR = {"length": 6, "alphabet": "0123456789"}
ZONE = {"enabled": True, "order_expire_seconds": 1800, "driver_due_offset_seconds": 300}


@pytest.mark.parametrize("name, value", [
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {"length": 6, "alphabet": "0012"}),  # a character twice
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {"length": 1, "alphabet": "01"}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {"length": 17, "alphabet": "01"}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {"length": 6, "alphabet": "01 "}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {"length": 6, "alphabet": "0"}),  # too few characters
    # The code space is too small for what one driver may guess a day (100 x 2 x 10 = 2,000 needed):
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {"length": 3, "alphabet": "0123456789"}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "max_wrong_codes": 1000, "lockout_after_limits": 24}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "max_wrong_codes": 0}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "lockout_after_limits": 0}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "max_attempts": 0}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "wrong_codes_window_seconds": 5}),
    # Two windows of 13 hours do not fit in the day: the daily lockout could never be reached by the limit.
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "wrong_codes_window_seconds": 13 * 3600}),
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "unknown": 1}),
    ("CODE_DISPATCH_ZONES_SETTINGS", {"zenit": {"enabled": True, "order_expire_seconds": 5}}),
    ("CODE_DISPATCH_ZONES_SETTINGS", {"zenit": {"enabled": True, "queue_zones": []}}),
    ("CODE_DISPATCH_ZONES_SETTINGS", {"zenit": {**ZONE, "code_length": 1}}),
    ("CODE_DISPATCH_ZONES_SETTINGS", {"zenit": {**ZONE, "code_length": 17}}),
    # Due after the code expired: the driver could never type it.
    ("CODE_DISPATCH_ZONES_SETTINGS", {"zenit": {**ZONE, "driver_due_offset_seconds": 1800}}),
    ("CODE_DISPATCH_ZONES_SETTINGS", {"zen it": ZONE}),
    ("CODE_DISPATCH_PROCESSING_ENABLED", "maybe"),
    ("code_dispatch", {"enabled": True, "extra": 1}),
    ("code_dispatch", {"clauses": [{"predicate": {"in": {"area_id": "zenit"}}, "value": {"enabled": True}}],
                       "default": {"enabled": False}}),
    ("code_dispatch", {"clauses": [{"predicate": {"eq": {"city": "spb"}}, "value": {"enabled": True}}],
                       "default": {"enabled": False}}),
    ("code_dispatch", {"clauses": [{"predicate": {"true": {}}, "value": {"enabled": "maybe"}}],
                       "default": {"enabled": False}}),
    ("code_dispatch", {"clauses": []}),
])
def test_invalid_values_are_refused_by_the_config_route(client, name, value):
    answer = client.http.put(f"/internal/v1/configs/{name}", headers={"Content-Type": "application/json"},
                             body=json.dumps({"value": value}))
    assert answer.status_code == 400
    assert answer.json_body["code"] == "invalid_config_value"


@pytest.mark.parametrize("name, value", [
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {"length": 4, "alphabet": "0123456789"}),  # 10,000 >= 2,000
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {"length": 2, "alphabet": "0123456789", "max_wrong_codes": 1,
                                          "lockout_after_limits": 1}),  # the smallest area: 100 codes
    ("CODE_DISPATCH_GENERATOR_SETTINGS", {**GENERATOR, "wrong_codes_window_seconds": 12 * 3600}),
    ("CODE_DISPATCH_ZONES_SETTINGS", {"zenit": {**ZONE, "code_length": 16}, "luzhniki": ZONE}),
])
def test_sane_values_are_accepted(client, name, value):
    answer = client.http.put(f"/internal/v1/configs/{name}", headers={"Content-Type": "application/json"},
                             body=json.dumps({"value": value}))
    assert answer.status_code == 200, answer.json_body


def test_a_refused_value_leaves_the_old_one_in_force(client):
    def put(value):
        return client.http.put("/internal/v1/configs/CODE_DISPATCH_GENERATOR_SETTINGS",
                               headers={"Content-Type": "application/json"}, body=json.dumps({"value": value}))

    assert put({**GENERATOR, "length": 8}).status_code == 200
    assert put({**GENERATOR, "length": 3}).status_code == 400
    stored = client.http.get("/internal/v1/configs/CODE_DISPATCH_GENERATOR_SETTINGS").json_body
    assert stored["value"]["length"] == 8 and stored["is_default"] is False
    assert GENERATOR_SETTINGS.get().length == 8


def test_local_demo_configs_are_valid_and_switch_zenit_on():
    values = json.loads((ROOT / "local/demo_configs/codedispatch.json").read_text())
    parsed = {name: config.lookup(name).validate(value) for name, value in values.items()}
    assert config.lookup("code_dispatch").kind == "experiment"
    demo = EXPERIMENT.compile(parsed["code_dispatch"])
    for kwargs in ({}, {"area_id": "zenit"}, {"area_id": "x", "park_id": "p", "driver_profile_id": "d"}):
        assert demo.match(kwargs).enabled, kwargs  # the demo matches everybody
    assert parsed["CODE_DISPATCH_PROCESSING_ENABLED"]
    assert parsed["CODE_DISPATCH_ZONES_SETTINGS"]["zenit"].enabled
    assert (parsed["CODE_DISPATCH_GENERATOR_SETTINGS"].length,
            parsed["CODE_DISPATCH_GENERATOR_SETTINGS"].alphabet) == (6, "0123456789")


class _Request:
    def __init__(self, body):
        self.body = body


def test_tracker_simulator_knows_every_driver_unless_marked_absent():
    tracker.reset()
    driver = {"order_id": "o1", "park_db_id": "p", "driver_profile_id": "d"}
    status, body = tracker._acquire(_Request(driver))
    assert status == 200 and body["driver"]["driver_profile_id"] == "d" and len(body["driver"]["position"]) == 2
    assert tracker.CONTROLS["driver"]({"park_db_id": "p", "driver_profile_id": "d", "absent": True})[0] == 200
    assert tracker._acquire(_Request(driver))[0] == 404
    tracker.CONTROLS["driver"]({"park_db_id": "p", "driver_profile_id": "d", "absent": False})
    assert tracker._acquire(_Request(driver))[0] == 200
    assert tracker._acquire(_Request({"order_id": "o1"}))[0] == 400
    tracker.reset()
