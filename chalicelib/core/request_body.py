"""A client's JSON body, read strictly: whatever bytes arrive, the answer is an object or a 4xx, never a crash.

Chalice's `request.json_body` is `json.loads` of the raw body: a body nested a few thousand levels deep raises
RecursionError (a 500), invalid UTF-8 or a 5000-digit number raise errors it does not map, a repeated key
silently keeps the last value, and `NaN`/`1e999` become floats no schema expects. Here each is a 400 with its
own code, and a body larger than any of our payloads is a 413 before it is parsed.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import AppError, BadRequest

# Our largest request (a config PUT with an experiment's clauses) is a few KiB; API Gateway allows 10 MiB.
MAX_BODY_BYTES = 256 * 1024
# Our deepest payload (an experiment's nested all/any predicates) is about 12 levels.
MAX_DEPTH = 32
# The characters that matter to nesting: brackets, and quotes and backslashes (brackets inside strings do not).
_SPECIAL = re.compile(r'[\\"\[\]{}]')


class BodyTooLarge(AppError):
    status = 413
    code = "body_too_large"


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise BadRequest("a key appears twice in one JSON object", code="duplicate_key")
    return body


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest("a number is too large", code="invalid_number")
    return value


def _not_a_number(name: str) -> float:
    raise BadRequest(f"{name} is not a JSON number", code="invalid_number")


def _too_deep(text: str) -> bool:
    """Is an array or object nested deeper than MAX_DEPTH? One linear pass over the special characters only
    (no backtracking regex: the body is the attacker's), stopping as soon as the limit is passed."""
    depth, in_string, escaped_at = 0, False, -1
    for match in _SPECIAL.finditer(text):
        char, at = match.group(), match.start()
        if at == escaped_at:
            continue
        if in_string:
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def read_object(raw: bytes | str | None) -> dict:
    """The body as a JSON object; BadRequest (400) or BodyTooLarge (413) for anything else."""
    raw = raw or b""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8", code="invalid_encoding") from None
    if not text.strip():
        raise BadRequest("a JSON body is required", code="body_required")
    if _too_deep(text):
        raise BadRequest(f"the body is nested deeper than {MAX_DEPTH} levels", code="body_too_deep")
    try:
        body = json.loads(text, object_pairs_hook=_no_repeated_keys, parse_float=_finite,
                          parse_constant=_not_a_number)
    except BadRequest:
        raise
    except (ValueError, RecursionError):  # malformed, or an integer past Python's digit limit
        raise BadRequest("request body is not valid JSON", code="invalid_json") from None
    if body is None:
        raise BadRequest("a JSON body is required", code="body_required")
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object", code="invalid_body")
    return body
