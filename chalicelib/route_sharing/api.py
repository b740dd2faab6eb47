"""Route sharing HTTP routes: parse -> keys / shared_route -> render."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.api import INTERNAL, PUBLIC, Call, route

from . import keys, shared_route
from .schemas import (
    CORP_NAMES, MAX_ORDER_DAYS, SCREEN_TEXTS, SHOW_TRACK_STATUSES, CargoClaimIn, CargoClaimOut, CorpInfo, CorpInfoOut, PhoneHeaders, SharedRouteInfo, SharedRouteQuery,
    SharedRouteTrack, SharingKeyQuery, SharingKeysOut,
)

bp = Blueprint(__name__)


@route(bp, "/order-route-sharing/v1/sharing_keys", kind=INTERNAL, headers=PhoneHeaders, response=SharingKeysOut)
def sharing_keys(call: Call) -> dict:
    """Live sharing keys of the phone's orders, newest first (merged into /launch)."""
    return {"sharing_keys": keys.sharing_keys(call.headers.phone_id)}


@route(bp, "/order-route-sharing/v1/corp_info", kind=INTERNAL, query=SharingKeyQuery, response=CorpInfoOut,
       errors=(404,), configs=(CORP_NAMES,))
def corp_info(call: Call) -> CorpInfoOut:
    """The seller's name of the key's order."""
    return CorpInfoOut(corp_info=CorpInfo(name=shared_route.corp_info(call.query.sharing_key)))


@route(bp, "/order-route-sharing/v1/cargo_claims", method="POST", kind=INTERNAL, body=CargoClaimIn,
       response=CargoClaimOut, errors=(409,), configs=(MAX_ORDER_DAYS,))
def register_cargo_claim(call: Call) -> CargoClaimOut:
    """Register a cargo claim for its recipients; the same claim always gets the same key."""
    return CargoClaimOut(claim_id=call.body.claim_id, sharing_key=keys.register_cargo_claim(call.body))


@route(bp, "/4.0/sharedroute/info", kind=PUBLIC, query=SharedRouteQuery, response=SharedRouteInfo,
       errors=(404, 502, 503), configs=(CORP_NAMES, SCREEN_TEXTS, SHOW_TRACK_STATUSES))
def shared_route_info(call: Call) -> dict:
    """The shared order for its recipient: the protocol's sharedroute plus screen texts, flags, seller (a key not
    saved here: the protocol's answer with the client flags)."""
    return shared_route.shared_route_info(call.query.key)


@route(bp, "/4.0/sharedroute/track", kind=PUBLIC, query=SharedRouteQuery, response=SharedRouteTrack,
       errors=(404, 502, 503))
def shared_route_track(call: Call) -> dict:
    """The courier's track (the protocol's sharedroutetrack): for a live key saved here, or any key it knows."""
    return shared_route.shared_route_track(call.query.key)
