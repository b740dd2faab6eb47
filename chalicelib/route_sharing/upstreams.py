"""Clients of the protocol handlers this service proxies: sharedroute, sharedroutetrack, ordercontactobtain."""
from __future__ import annotations

from pydantic import ConfigDict

from chalicelib.core.schema import Schema
from chalicelib.core import http
from chalicelib.core.errors import NotFound, UpstreamRejected, UpstreamUnavailable

PROTOCOL = "protocol"


class PhoneGateway(Schema):
    model_config = ConfigDict(extra="ignore")

    phone: str
    ext: str | None = None


def _get_object(path: str, key: str) -> dict:
    try:
        body = http.call_json(PROTOCOL, "GET", path, params={"key": key})
    except UpstreamRejected as error:
        if error.upstream_status == 404:
            raise NotFound("shared route not found", code="shared_route_not_found") from None
        raise
    if not isinstance(body, dict):
        raise UpstreamUnavailable(f"protocol {path} answered something other than an object")
    return body


def shared_route(key: str) -> dict:
    return _get_object("/sharedroute", key)


def shared_route_track(key: str) -> dict:
    return _get_object("/sharedroutetrack", key)


# An enrichment: one short try. Clients poll sharedroute every 5 s, so a slow phone lookup must not hold the
# answer (it is left out and comes with the next poll).
CONTACT_TIMEOUT = (0.2, 0.3)


def order_contact(order_id: str) -> PhoneGateway:
    """The courier's forwarded phone."""
    return http.call_as(PROTOCOL, "POST", "/ordercontactobtain", PhoneGateway, json={"order_id": order_id},
                        timeout=CONTACT_TIMEOUT, retries=0)
