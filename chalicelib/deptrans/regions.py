"""The regions where line states are reported (config `deptrans_regions`): named polygons, and "is this point in one".

A region is GeoJSON-like: `{"name": "moscow", "polygon": [outer ring, hole, hole, ...]}`, each ring a list of
`[lon, lat]` points. Checked when the config is PUT (a value that cannot serve is a 400, the old one stays):
a ring may be given closed or open (it is closed here), needs at least 3 distinct points and a non-zero area;
longitudes are within -180..180, latitudes within -90..90; names are unique. Holes are taken as given (inside
the outer ring is the operator's business; a hole outside it simply never matches).

The check is ray casting (even-odd rule) per ring, after a bounding-box test: a point is in a region when it
is inside its outer ring and in none of its holes. A point exactly on an edge may fall either way: positions
are GPS fixes, metres off anyway. Our own ~40 lines instead of shapely: no native dependency in the Lambda
zip, no import cost at cold start, and a polygon of a few dozen points needs nothing faster.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, PrivateAttr, StringConstraints, field_validator, model_validator

from chalicelib.core.schema import Schema

Point = tuple[Annotated[float, Field(ge=-180, le=180)], Annotated[float, Field(ge=-90, le=90)]]
MAX_POINTS = 5000


def _close(ring: list[Point]) -> list[Point]:
    """A ring given open gets its first point again at the end."""
    if ring and ring[0] != ring[-1]:
        return [*ring, ring[0]]
    return ring


def _area2(ring: list[Point]) -> float:
    """Twice the signed area (shoelace) of a closed ring: 0 for points all on one line."""
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:]))


def inside_ring(lon: float, lat: float, ring: list[Point]) -> bool:
    """Even-odd ray casting: a ray from the point towards +lon crosses the ring's edges an odd number of times."""
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:]):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


class Region(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    polygon: Annotated[list[Annotated[list[Point], Field(max_length=MAX_POINTS)]], Field(min_length=1, max_length=50)]
    _box: tuple[float, float, float, float] = PrivateAttr(default=(0.0, 0.0, 0.0, 0.0))

    @field_validator("polygon")
    @classmethod
    def _rings(cls, polygon: list[list[Point]]) -> list[list[Point]]:
        closed = []
        for number, ring in enumerate(polygon):
            ring = _close([tuple(point) for point in ring])
            if len(set(ring)) < 3:
                raise ValueError(f"ring {number} needs at least 3 distinct [lon, lat] points")
            if _area2(ring) == 0:
                raise ValueError(f"ring {number} has no area (its points are on one line)")
            closed.append(ring)
        return closed

    @model_validator(mode="after")
    def _bounding_box(self) -> "Region":
        outer = self.polygon[0]
        self._box = (min(p[0] for p in outer), min(p[1] for p in outer),
                     max(p[0] for p in outer), max(p[1] for p in outer))
        return self

    def contains(self, lon: float, lat: float) -> bool:
        min_lon, min_lat, max_lon, max_lat = self._box
        if not (min_lon <= lon <= max_lon and min_lat <= lat <= max_lat):
            return False
        outer, *holes = self.polygon
        return inside_ring(lon, lat, outer) and not any(inside_ring(lon, lat, hole) for hole in holes)


def unique_names(regions: list[Region]) -> list[Region]:
    names = [region.name for region in regions]
    if len(names) != len(set(names)):
        raise ValueError("region names must be unique")
    return regions


def in_any(regions: list[Region], position: tuple[float, float]) -> bool:
    return any(region.contains(*position) for region in regions)


# Doc 002: "initially Moscow". Zelenograd is Moscow's (an exclave), so the default has both.
# Moscow, roughly: the city's boundary with New Moscow's wedge to the south-west (old Moscow is about the ring
# road, with the districts beyond it: Kurkino, Kosino, Butovo, Solntsevo), and Zelenograd, its exclave to
# the north-west. Rough by a kilometre or two; good enough to leave out Khimki, Balashikha or Krasnogorsk,
# which the old rectangle took in.
MOSCOW = [
    [37.370, 55.905], [37.450, 55.875], [37.530, 55.910], [37.600, 55.915], [37.700, 55.895],
    [37.800, 55.850], [37.845, 55.800], [37.850, 55.745], [37.970, 55.720], [37.925, 55.690],
    [37.840, 55.660], [37.780, 55.610], [37.680, 55.570], [37.600, 55.535], [37.560, 55.500],
    [37.520, 55.470], [37.460, 55.440], [37.450, 55.350], [37.400, 55.250], [37.200, 55.140],
    [37.000, 55.180], [36.850, 55.250], [36.800, 55.440], [37.000, 55.550], [37.200, 55.590],
    [37.350, 55.640], [37.370, 55.700], [37.365, 55.770], [37.390, 55.810], [37.360, 55.850],
    [37.370, 55.905],
]
ZELENOGRAD = [
    [37.130, 55.970], [37.200, 55.960], [37.260, 55.980], [37.250, 56.020], [37.170, 56.020],
    [37.120, 56.000], [37.130, 55.970],
]
DEFAULT_REGIONS = [{"name": "moscow", "polygon": [MOSCOW]}, {"name": "zelenograd", "polygon": [ZELENOGRAD]}]
