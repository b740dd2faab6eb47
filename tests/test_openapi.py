"""The OpenAPI document lists every route the app registers, with its schemas."""
from __future__ import annotations

import re

from app import app
from chalicelib.core.openapi import build_document


def test_every_registered_route_is_in_the_document():
    document = build_document()
    for path, methods in app.routes.items():
        for method in methods:
            assert method.lower() in document["paths"].get(path, {}), f"{method} {path} missing from OpenAPI"


def test_every_reference_resolves():
    document = build_document()
    text = str(document)
    for name in set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text)):
        assert name in document["components"]["schemas"], name


def test_internal_routes_declare_iam_and_driver_routes_their_headers():
    document = build_document()
    sharing = document["paths"]["/order-route-sharing/v1/sharing_keys"]["get"]
    assert sharing["security"] == [{"sigv4": []}]
    assert {"name": "x-yataxi-phoneid", "in": "header", "required": True} .items() <= sharing["parameters"][0].items()
    info = document["paths"]["/4.0/sharedroute/info"]["get"]
    assert "security" not in info and "404" in info["responses"]
