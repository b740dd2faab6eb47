"""Regions (config deptrans_regions): named polygons checked at PUT, and our own point-in-polygon test."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from chalicelib.deptrans.regions import DEFAULT_REGIONS, Region, in_any
from chalicelib.deptrans.schemas import REGIONS

SQUARE = [[0, 0], [10, 0], [10, 10], [0, 10]]
HOLE = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]


def regions(value) -> list[Region]:
    return REGIONS.adapter.validate_python(value)


def test_a_point_is_inside_the_outer_ring_and_outside_its_holes():
    donut = regions([{"name": "donut", "polygon": [SQUARE, HOLE]}])
    assert in_any(donut, (1, 1)) and in_any(donut, (9.99, 5))
    assert not in_any(donut, (5, 5))  # in the hole
    assert not in_any(donut, (11, 5)) and not in_any(donut, (5, -0.01))


def test_a_concave_polygon_is_not_its_bounding_box():
    notch = regions([{"name": "u", "polygon": [[[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]]]}])
    assert in_any(notch, (0.5, 2.5)) and in_any(notch, (2.5, 2.5)) and in_any(notch, (1.5, 0.5))
    assert not in_any(notch, (1.5, 2))  # inside the box, in the notch


@pytest.mark.parametrize("name, point, inside", [
    ("Red Square", (37.6208, 55.7539), True), ("Troitsk, New Moscow", (37.30, 55.48), True),
    ("Zelenograd", (37.19, 55.99), True), ("Kosino", (37.90, 55.71), True), ("Butovo", (37.55, 55.55), True),
    ("Balashikha", (37.96, 55.80), False), ("Khimki", (37.44, 55.89), False), ("Krasnogorsk", (37.33, 55.82), False),
    ("Mytishchi", (37.73, 55.91), False), ("Podolsk", (37.54, 55.43), False), ("Saint Petersburg", (30.32, 59.94), False),
])
def test_the_default_is_moscow_roughly_not_a_rectangle(name, point, inside):
    assert in_any(regions(DEFAULT_REGIONS), point) is inside, name


def test_an_open_ring_is_closed():
    region = regions([{"name": "sq", "polygon": [SQUARE]}])[0]
    assert region.polygon[0][0] == region.polygon[0][-1] and len(region.polygon[0]) == 5


@pytest.mark.parametrize("why, value", [
    ("no region", []),
    ("two points", [{"name": "a", "polygon": [[[0, 0], [1, 1], [0, 0]]]}]),
    ("the same point thrice", [{"name": "a", "polygon": [[[0, 0], [0, 0], [0, 0], [1, 1]]]}]),
    ("on one line", [{"name": "a", "polygon": [[[0, 0], [1, 1], [2, 2]]]}]),
    ("latitude out of range", [{"name": "a", "polygon": [[[37.6, 95], [37.7, 55], [37.5, 55]]]}]),
    ("longitude out of range", [{"name": "a", "polygon": [[[190, 55], [37.7, 55], [37.5, 56]]]}]),
    ("a point of three numbers", [{"name": "a", "polygon": [[[1, 2, 3], [1, 5], [4, 4]]]}]),
    ("names twice", [{"name": "a", "polygon": [SQUARE]}, {"name": "a", "polygon": [HOLE]}]),
    ("no name", [{"polygon": [SQUARE]}]),
    ("no ring", [{"name": "a", "polygon": []}]),
])
def test_a_region_that_cannot_serve_is_refused(why, value):
    with pytest.raises(ValidationError):
        regions(value)


def test_the_config_is_checked_at_put_and_the_old_value_stays(client):
    headers = {"Content-Type": "application/json"}
    path = "/internal/v1/configs/deptrans_regions"
    good = [{"name": "square", "polygon": [SQUARE]}]
    assert client.http.put(path, headers=headers, body=json.dumps({"value": good})).status_code == 200
    bad = client.http.put(path, headers=headers, body=json.dumps({"value": [{"name": "x", "polygon": [[[0, 0]]]}]}))
    assert bad.status_code == 400 and bad.json_body["code"] == "invalid_config_value"
    stored = client.http.get(path).json_body["value"]
    assert stored == [{"name": "square", "polygon": [SQUARE + [[0, 0]]]}]


def test_the_old_rectangle_config_is_gone(client):
    assert client.http.get("/internal/v1/configs/deptrans_region").status_code == 404
    assert client.http.get("/internal/v1/configs/deptrans_regions").status_code == 200
