"""A driver's KRT registry ID: bind it (checked against KRT for the driver's licence) and say whether one is bound.

The licence: driver-profiles gives the profile's driver_license_pd_id, personal the number behind it. The
number lives in this call's memory only (sent to KRT, never stored, never logged); the ID is stored per
licence pd_id and never returned to a driver (the doc: "return the fact of its presence instead").
"""
from __future__ import annotations

import re

from chalicelib.core import clock, metrics
from chalicelib.core.errors import BadRequest, NotFound, UpstreamRejected, UpstreamUnavailable
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger
from chalicelib.core.storage import get_live

from . import caches, krt, membership, store, upstreams
from .models import DriverProfile, driver_key
from .schemas import ID_PATTERN

log = get_logger(__name__)


def _licence_pd_id(identity: DriverIdentity, prefer_fresh: bool) -> str:
    driver = (identity.park_id, identity.driver_profile_id)
    found = caches.licences([driver], prefer_fresh=prefer_fresh)
    if driver not in found:
        raise UpstreamUnavailable("driver-profiles is unavailable", code="driver_profiles_unavailable")
    pd_id = found[driver]
    if pd_id is None:
        raise NotFound("the driver's profile has no driver licence", code="driver_licence_not_found")
    return pd_id


def is_bound(identity: DriverIdentity) -> bool:
    return get_live(DriverProfile, _licence_pd_id(identity, prefer_fresh=False)) is not None


def bind(identity: DriverIdentity, deptrans_id: str) -> None:
    """Check the ID's format and that KRT knows it for this driver's licence, then save it for the licence.
    KRT (or personal) down -> UpstreamUnavailable and nothing saved."""
    if not re.fullmatch(ID_PATTERN.get(), deptrans_id):
        raise BadRequest("the ID does not have the registry's format", code="invalid_id")
    pd_id = _licence_pd_id(identity, prefer_fresh=True)
    try:
        number = upstreams.licence_number(pd_id)
    except UpstreamRejected:
        raise UpstreamUnavailable("personal refused the licence lookup", code="personal_unavailable") from None
    if number is None:
        raise NotFound("the driver licence is unknown", code="driver_licence_not_found")
    try:
        valid = krt.verify_id(deptrans_id, number)
    except UpstreamRejected:
        # KRT refuses the question itself (4xx other than 401): the driver cannot fix that by retyping.
        raise UpstreamUnavailable("KRT refused the check", code="krt_unavailable") from None
    if not valid:
        log.event("deptrans.id_mismatch", park_id=identity.park_id, driver_profile_id=identity.driver_profile_id,
                  metrics=metrics.count("deptrans", "IdMismatches"))
        raise BadRequest("the ID does not belong to the driver's licence", code="id_mismatch")
    now = clock.now()
    profile = driver_key(identity.park_id, identity.driver_profile_id)
    # One licence, one ID: a new ID replaces the old one; the profiles are the licence's in the cache.
    DriverProfile(licence_pd_id=pd_id).update(
        actions=membership.bind_actions(pd_id, deptrans_id, membership.profiles_of(pd_id, profile), now))
    # Bound while on line: the sender looks at the licence first thing in its next run.
    store.mark_due(pd_id)
    log.event("deptrans.id_bound", park_id=identity.park_id, driver_profile_id=identity.driver_profile_id,
              metrics=metrics.count("deptrans", "IdsBound"))

