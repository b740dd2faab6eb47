"""Is a licence reportable to KRT now? A page of licences at a time, every lookup batched.

A licence none of whose profiles is on line: off line, no lookup at all (going off line is never held up).
A licence on line: its on-line profiles are looked at, in this order (the first that fails is the reason):
1. position (driver-trackstory, live): some on-line profile inside a region (deptrans_regions). None inside:
   `region` when every position is known and outside, `no_position` when one is unknown. Trackstory down:
   cannot tell (`upstream`).
2. registry ID bound to the licence (deptrans_profiles): else `no_id`.
3. category (categories cache): an in-region profile works in a configured category: else `category`; the
   cache without an answer and the upstream down: cannot tell (`upstream`).
Position comes first because it decides who counts as supply in the regions (the product metric).

"No position" says nothing about where he is: for a licence KRT has on line it never turns it off (the
verdict is not `certain`); "outside every region" does.

Doc 002 readings: categories are per profile (a park's tariffs), so a licence is reportable when one of its
on-line profiles is in a region AND works in a configured category; "driver-trackstory down: do not send status
updates" holds for coming on line only (going off line needs no lookup, and a held change keeps its event's time).
"""
from __future__ import annotations

from chalicelib.core.errors import AppError, describe
from chalicelib.core.logs import get_logger

from . import caches, upstreams
from .lines import IDLE_VERDICT, ON, OFF, Reason, Verdict, on_profiles
from .models import LicenceLine
from .regions import in_any
from .schemas import CATEGORIES, REGIONS

log = get_logger(__name__)

Driver = upstreams.Driver


def _driver(profile: str) -> Driver:
    park_id, _, driver_id = profile.partition("/")
    return park_id, driver_id


def judge(rows: list[LicenceLine], store) -> dict[str, Verdict]:
    """licence pd_id -> Verdict, for every row."""
    verdicts: dict[str, Verdict] = {}
    online = {row.licence_pd_id: on_profiles(row) for row in rows}
    for licence, profiles in online.items():
        if not profiles:
            verdicts[licence] = IDLE_VERDICT
    waiting = {licence: profiles for licence, profiles in online.items() if profiles}
    if not waiting:
        return verdicts
    inside = _inside_regions(waiting, verdicts)
    bindings = store.bindings(list(inside))
    for licence in list(inside):
        if licence not in bindings:
            verdicts[licence] = Verdict(OFF, reason=Reason.no_id, in_regions=True)
            del inside[licence]
    categories = caches.categories([_driver(p) for profiles in inside.values() for p in profiles]) if inside else {}
    wanted = set(CATEGORIES.get())
    for licence, profiles in inside.items():
        known = [p for p in profiles if _driver(p) in categories]
        fitting = [p for p in known if wanted & set(categories[_driver(p)])]
        if fitting:
            verdicts[licence] = Verdict(ON, registry_id=bindings[licence].deptrans_id, profile=fitting[0],
                                        in_regions=True)
        elif len(known) < len(profiles):
            verdicts[licence] = Verdict(None, reason=Reason.upstream, in_regions=True)
        else:
            verdicts[licence] = Verdict(OFF, reason=Reason.category, in_regions=True)
    return verdicts


def _inside_regions(waiting: dict[str, list[str]], verdicts: dict[str, Verdict]) -> dict[str, list[str]]:
    """The licences with an on-line profile inside a region -> those profiles; the others' verdicts are set."""
    drivers = list(dict.fromkeys(_driver(p) for profiles in waiting.values() for p in profiles))
    try:
        positions = upstreams.positions(drivers)
    except AppError as error:
        log.warning_event("deptrans.trackstory_unavailable", drivers=len(drivers), error=describe(error))
        verdicts.update({licence: Verdict(None, reason=Reason.upstream) for licence in waiting})
        return {}
    regions = REGIONS.get()
    inside: dict[str, list[str]] = {}
    for licence, profiles in waiting.items():
        known = {p: positions.get(_driver(p)) for p in profiles}
        there = [p for p, position in known.items() if position is not None and in_any(regions, position)]
        if there:
            inside[licence] = there
        elif any(position is None for position in known.values()):
            verdicts[licence] = Verdict(OFF, reason=Reason.no_position, certain=False)
        else:
            verdicts[licence] = Verdict(OFF, reason=Reason.region, in_regions=False)
    return inside
