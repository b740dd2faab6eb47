"""Every config value is checked at PUT as the code will use it: a value that cannot serve is a 400 in the error
shape, and the value stored before stays (served, read back, unchanged)."""
from __future__ import annotations

import json

import pytest

JSON = {"Content-Type": "application/json"}

# (config, a good value, values the code could not use and why)
CASES = [
    ("deptrans_id_pattern", "^[0-9A-Z]{6,32}$", {
        "does not compile": "^[0-9A-Z{6,32}$",
        "unbalanced group": "(AB",
    }),
    ("deptrans_regions", [{"name": "moscow", "polygon": [[[37.3, 55.5], [37.9, 55.5], [37.9, 55.9], [37.3, 55.9]]]}], {
        "a ring of two points": [{"name": "moscow", "polygon": [[[37.3, 55.5], [37.9, 55.5]]]}],
        "points on one line": [{"name": "moscow", "polygon": [[[37.3, 55.5], [37.6, 55.7], [37.9, 55.9]]]}],
        "latitude out of range": [{"name": "moscow", "polygon": [[[37.3, 95.5], [37.9, 55.5], [37.9, 55.9]]]}],
        "one name twice": [{"name": "m", "polygon": [[[0, 0], [1, 0], [1, 1]]]},
                           {"name": "m", "polygon": [[[2, 2], [3, 2], [3, 3]]]}],
    }),
    ("eats_orders_tracking_picker_statuses_timeout", [{"status": "picking", "timeout": 60}], {
        "one status twice": [{"status": "picking", "timeout": 60}, {"status": "picking", "timeout": 5}],
        "timeout not positive": [{"status": "picking", "timeout": 0}],
    }),
    ("scooters_depots", [{"store_id": "grocery:1", "position": [37.6, 55.7]}], {
        "one store twice": [{"store_id": "grocery:1", "position": [37.6, 55.7]},
                            {"store_id": "grocery:1", "position": [30.3, 59.9]}],
        "latitude out of range": [{"store_id": "grocery:1", "position": [55.7, 137.6]}],
        "id without its kind": [{"store_id": "1", "position": [37.6, 55.7]}],
    }),
    ("scooters_recharge_algorithm", {"method": "nearest_with_available_acc", "params": {"max_distance_km": 5}}, {
        "a param it does not know": {"method": "nearest_with_available_acc", "params": {"max_walk_mins": 5}},
        "a param out of range": {"method": "nearest_with_available_acc", "params": {"max_distance_km": -1}},
        "in a clause": {"clauses": [{"predicate": {"true": {}}, "value": {
            "method": "nearest_with_available_acc", "params": {"walk_speed_kmh": "fast"}}}],
            "default": {"method": "nearest_with_available_acc"}},
    }),
]


def _put(client, name: str, value):
    return client.http.put(f"/internal/v1/configs/{name}", headers=JSON, body=json.dumps({"value": value}))


@pytest.mark.parametrize("name,good,bad", CASES, ids=[case[0] for case in CASES])
def test_a_value_the_code_cannot_use_is_refused_and_the_old_one_stays(client, name, good, bad):
    stored = _put(client, name, good)
    assert stored.status_code == 200, stored.body
    before = client.http.get(f"/internal/v1/configs/{name}").json_body["value"]
    for why, value in bad.items():
        answer = _put(client, name, value)
        assert answer.status_code == 400, (why, answer.body)
        assert answer.json_body["code"] == "invalid_config_value", (why, answer.body)
        assert client.http.get(f"/internal/v1/configs/{name}").json_body["value"] == before, why


def test_an_unknown_recharge_method_is_still_accepted(client):
    """A newer build may know more methods (schemas.RechargeAlgorithm): only a known method's params are checked."""
    answer = _put(client, "scooters_recharge_algorithm", {"method": "cheapest", "params": {"anything": 1}})
    assert answer.status_code == 200, answer.body
