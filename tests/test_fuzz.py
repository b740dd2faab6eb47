"""Fuzz every route of the OpenAPI document: valid-looking and broken input never gets a 5xx, and every
4xx carries the JSON error body. Inputs come from each route's own schemas (hypothesis-jsonschema) mixed
with junk; runs in-process against moto and the upstream simulator, bounded by max_examples.
(A small schema-to-strategy reader of our own: hypothesis-jsonschema no longer runs on current hypothesis.)"""
from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core import config
from chalicelib.core.api import IDENTITY_VALUE
from chalicelib.core.openapi import build_document

DOCUMENT = build_document()
OPERATIONS = [(path, method, op) for path, methods in DOCUMENT["paths"].items() for method, op in methods.items()]
HEADER_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_=,. ", max_size=40)
# Driver and eats-user routes are called with a valid session whose identity values have every length up to
# the limit (so the view's logic runs), and now and then one the authorizer must refuse (oversized, odd).
ID_CHARS = string.ascii_letters + string.digits + "_.-"
SESSION_FIELDS = {"driverSession": ("park_id", "driver_profile_id"), "eatsSession": ("user_id",)}
JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=6)


def from_schema(schema: dict, depth: int = 0) -> st.SearchStrategy:
    """Values that mostly satisfy a JSON schema of the kinds pydantic writes (refs, anyOf, enums, patterns)."""
    if "$ref" in schema:
        return from_schema(DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], depth)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return st.one_of([from_schema(option, depth) for option in schema[key]])
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)).map(lambda d: d.isoformat())
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 30), 30))
    if kind == "integer":
        return st.integers(schema.get("minimum", -10**6), schema.get("maximum", 10**6))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), depth + 1), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        fields = {name: from_schema(sub, depth + 1) for name, sub in properties.items() if depth < 4}
        return st.fixed_dictionaries({k: v for k, v in fields.items() if k in required},
                                     optional={k: v for k, v in fields.items() if k not in required})
    return JUNK


def _value(parameter: dict, where: str):
    if where == "header":
        return HEADER_TEXT
    schema = parameter.get("schema", {})
    typed = from_schema(schema).map(lambda v: v if isinstance(v, str) else json.dumps(v))
    return st.one_of(typed, st.text(max_size=30))


@st.composite
def requests_for(draw, path: str, method: str, operation: dict):
    query, headers, url_path = {}, {"Content-Type": "application/json"}, path
    for parameter in operation.get("parameters", []):
        where, name = parameter["in"], parameter["name"]
        if where == "path":
            choices = st.sampled_from(sorted(config.REGISTRY)) | st.text(string.ascii_lowercase + "_", min_size=1,
                                                                           max_size=20)
            url_path = url_path.replace("{" + name + "}", draw(choices))
        elif draw(st.integers(0, 9)) > 0:  # now and then a parameter is simply missing
            value = draw(_value(parameter, where)).strip() if where == "header" else draw(_value(parameter, where))
            (query if where == "query" else headers)[name] = value
    body = None
    request_body = operation.get("requestBody")
    if request_body:
        schema = request_body["content"]["application/json"]["schema"]
        body = json.dumps(draw(st.one_of(from_schema(schema), JUNK)))
    identity = None
    for scheme in (operation.get("security") or [{}])[0]:
        if scheme in SESSION_FIELDS:
            identity = (scheme, tuple(draw(_identity_value()) for _ in SESSION_FIELDS[scheme]))
    return url_path, query, headers, body, identity


@st.composite
def _identity_value(draw) -> str:
    roll = draw(st.integers(0, 19))
    if roll == 0:
        return draw(st.text(alphabet=ID_CHARS, min_size=65, max_size=300))  # oversized
    if roll == 1:
        return draw(st.text(max_size=10))  # odd characters, or empty
    return draw(st.text(alphabet=ID_CHARS, min_size=1, max_size=64))


def _session_headers(identity, driver_auth, eats_auth) -> dict:
    if identity is None:
        return {}
    scheme, values = identity
    return driver_auth(*values) if scheme == "driverSession" else eats_auth(*values)


def _query_string(query: dict) -> str:
    from urllib.parse import urlencode

    return ("?" + urlencode(query)) if query else ""


@pytest.mark.parametrize("path,method,operation", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
def test_route_never_answers_5xx(client, driver_auth, eats_auth, path, method, operation):
    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(requests_for(path, method, operation))
    def check(request):
        url_path, query, headers, body, identity = request
        headers = {**headers, **_session_headers(identity, driver_auth, eats_auth)}
        answer = client.http.request(method.upper(), url_path + _query_string(query), headers=headers, body=body)
        assert answer.status_code < 500, (method, url_path, query, body, answer.body)
        if identity is not None and not all(IDENTITY_VALUE.fullmatch(value) for value in identity[1]):
            # Denied by the authorizer at the gateway (Chalice's local body here; the deployed gateway answers
            # in the error shape: tests/e2e/test_identity.py).
            assert (answer.status_code, answer.headers.get("x-amzn-ErrorType")) == (403, "AccessDeniedException")
            return
        if answer.status_code >= 400:
            error = json.loads(answer.body)
            assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), answer.body

    check()


# --- hostile input: what a careless client or an attacker sends ------------------------------------------
# Each kind once broke or could break a route before its view ran: a RecursionError in body parsing (a 500), a
# number past int()'s 4300-digit limit, bytes that are not UTF-8, a key given twice (which one wins?), NaN and
# 1e999 (floats no schema expects), a body that is not JSON at all, a huge body, a query parameter given twice.
DEEP = "[" * 3000 + "]" * 3000
HOSTILE_BODIES = {
    "deep nesting": DEEP.encode(),
    "deep nesting in a field": ('{"value": ' + DEEP + '}').encode(),
    "huge integer": b'{"value": ' + b"9" * 5000 + b"}",
    "huge float": b'{"value": 1e999}',
    "NaN": b'{"value": NaN}',
    "invalid UTF-8": b'{"value": "\xff\xfe"}',
    "duplicate keys": b'{"value": 1, "value": 2}',
    "not JSON": b"value=1",
    "empty": b"",
    "over the size limit": b'{"value": "' + b"x" * (300 * 1024) + b'"}',
}
HOSTILE_CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", None]
HOSTILE_VALUES = ["9" * 5000, "x" * 10_000, "%ff%fe", "\x00", "-1", "1e999", "NaN", "[[[[[[[[", "два"]


@st.composite
def hostile_requests(draw, path: str, method: str, operation: dict):
    url_path, query, headers, body, identity = draw(requests_for(path, method, operation))
    names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
    target = draw(st.sampled_from(["body", "content type", "query", "repeated query"]))
    query_text = _query_string(query)
    if target == "body" or (target == "content type" and not operation.get("requestBody")):
        body = HOSTILE_BODIES[draw(st.sampled_from(sorted(HOSTILE_BODIES)))]
    elif target == "content type":
        content_type = draw(st.sampled_from(HOSTILE_CONTENT_TYPES))
        headers = {k: v for k, v in headers.items() if k != "Content-Type"}
        if content_type:
            headers["Content-Type"] = content_type
    elif names:
        name = draw(st.sampled_from(names))
        from urllib.parse import quote

        value = quote(draw(st.sampled_from(HOSTILE_VALUES)), safe="%")
        if target == "repeated query":
            query_text += ("&" if query_text else "?") + f"{name}={value}&{name}={value}"
        else:
            others = {k: v for k, v in query.items() if k != name}
            query_text = _query_string(others) + ("&" if others else "?") + f"{name}={value}"
    # Valid identities only: the view's input handling is what is under test here.
    if identity is not None:
        identity = (identity[0], tuple("id-" + str(index) for index, _ in enumerate(identity[1])))
    return url_path + query_text, headers, body, identity, target


@pytest.mark.parametrize("path,method,operation", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
def test_hostile_input_is_a_4xx_in_the_error_shape(client, driver_auth, eats_auth, path, method, operation):
    @settings(max_examples=30, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(hostile_requests(path, method, operation))
    def check(request):
        url, headers, body, identity, target = request
        headers = {**headers, **_session_headers(identity, driver_auth, eats_auth)}
        answer = client.http.request(method.upper(), url, headers=headers, body=body)
        assert answer.status_code < 500, (method, url, target, (body or b"")[:80], answer.body[:300])
        if answer.status_code >= 400:
            error = json.loads(answer.body)
            assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), answer.body
        if operation.get("requestBody") and target == "body":
            assert 400 <= answer.status_code < 500, (url, body[:80], answer.status_code)

    check()
