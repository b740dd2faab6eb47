"""Platform routes: /ping, /openapi.json (local stage only), /internal/v1/configs/{name}."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.core import config
from chalicelib.core.api import INTERNAL, PUBLIC, Call, route
from chalicelib.core.errors import NotFound
from chalicelib.core.openapi import build_document
from chalicelib.core.settings import get_settings

from .schemas import ConfigIn, ConfigOut, PingOut

bp = Blueprint(__name__)


@route(bp, "/ping", kind=PUBLIC, response=PingOut)
def ping(call: Call) -> PingOut:
    """Liveness: the API and its Lambda answer."""
    return PingOut(status="ok")


@route(bp, "/openapi.json", kind=PUBLIC, errors=(404,))
def openapi_document(call: Call) -> dict:
    """The OpenAPI 3 document of every route (local stage only)."""
    if not get_settings().is_local:
        raise NotFound("the API document is served in the local stage only")
    return build_document()


@route(bp, "/internal/v1/configs/{name}", kind=INTERNAL, response=ConfigOut, errors=(404,))
def get_config(call: Call) -> dict:
    """A runtime config's or experiment's current value (the code's default until one is stored); `kind` says
    which, and an experiment lists the kwargs it is evaluated with."""
    return config.read(call.path["name"])


@route(bp, "/internal/v1/configs/{name}", method="PUT", kind=INTERNAL, body=ConfigIn, response=ConfigOut,
       errors=(404,))
def put_config(call: Call) -> dict:
    """Store a runtime config's value after validating it against that config's schema. An experiment takes
    {"clauses": [{"title", "predicate", "value"}], "default"} (or a plain value: the same for everyone)."""
    return config.write(call.path["name"], call.body.value)
