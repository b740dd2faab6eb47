"""A third-party fuzzer (the schemathesis CLI) against the RUNNING stack, through the :8000 forwarder a user talks to.

    st run http://127.0.0.1:8000/openapi.json --checks not_a_server_error,error_shape ...

Every operation of the deployed API's own OpenAPI document, in schemathesis's phases: examples, coverage
(boundaries, wrong types, missing parameters, and methods a route does not declare: TRACE, QUERY, OPTIONS, ...)
and fuzzing; bounded in examples per operation and by a hard time limit on the run. What must hold for every
answer:
- no 5xx (`not_a_server_error`): the app, the gateway and the forwarder answer a bad request with a 4xx,
  whatever the method;
- every 4xx is in the app's error shape `{"code", "message"}` (`error_shape` below; HEAD answers carry no body).
Driver and eats routes get sessions from the upstream simulator (`POST :8100/_control/sessions`), rotated over
identity values of many lengths and characters, plus a token nobody issued, so the fuzz reaches the views behind
the authorizer as well as its refusals. Configs the fuzz may overwrite (PUT /internal/v1/configs/{name}) are put
back afterwards.

This module is also the CLI's hooks module (SCHEMATHESIS_HOOKS): the check and the session hook below are
registered only in that subprocess.
"""
from __future__ import annotations

import itertools
import json
import os
import pathlib
import re
import subprocess
import sys

import requests

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
TIME_LIMIT_SECONDS = int(os.environ.get("SCHEMATHESIS_TIME_LIMIT", "900"))
SESSIONS_ENV = "TAXI_FUZZ_SESSIONS"
# Identity values a session may carry: the app checks what the session service hands over, never trusts it.
# Interleaved, so every other call carries an acceptable identity and reaches the view behind the authorizer.
IDENTITIES = ["park-1", "b" * 65, "p", "c" * 300, "a" * 64, "юникод-парк", "park_2", "with space", "P-3",
              "semi;colon", "park-4", "../..", "park-5", ""]
UNKNOWN_TOKEN = "nobody-issued-this-token"
ROOT = pathlib.Path(__file__).resolve().parents[2]


# --- loaded by the schemathesis CLI (SCHEMATHESIS_HOOKS=tests.e2e.test_schemathesis) -----------------------

if SESSIONS_ENV in os.environ:
    import schemathesis

    @schemathesis.check
    def error_shape(ctx, response, case):
        """Every 4xx leaves the API as {"code", "message"} (the app's, the gateway's and the forwarder's)."""
        if not 400 <= response.status_code < 500 or case.method.upper() == "HEAD":
            return None
        try:
            body = json.loads(response.content or b"null")
        except ValueError:
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("code"), str) and isinstance(body.get("message"), str)):
            raise AssertionError(f"{response.status_code} outside the error shape: {response.content[:300]!r}")
        return None

    _ROTATION = {header: itertools.cycle(tokens)
                 for header, tokens in json.loads(os.environ[SESSIONS_ENV]).items() if tokens}

    @schemathesis.hook
    def before_call(context, case, kwargs):
        case.headers = {**(case.headers or {}), **{header: next(tokens) for header, tokens in _ROTATION.items()}}


# --- the test ----------------------------------------------------------------------------------------------

def _sessions(stack) -> dict[str, list[str]]:
    """Driver and eats session tokens over IDENTITIES (and one unknown token), or none when this simulator has
    no session control yet (the routes then answer 401, still checked for their shape)."""
    made: dict[str, list[str]] = {"X-Driver-Session": [], "X-Eats-Session": []}
    for value in IDENTITIES:
        for header, body in (("X-Driver-Session", {"kind": "driver", "park_id": value, "driver_profile_id": value}),
                             ("X-Eats-Session", {"kind": "eats_user", "user_id": value})):
            answer = requests.post(f"{stack.simulator}/_control/sessions", json=body, timeout=5)
            if answer.status_code == 404:
                return {}
            assert answer.status_code == 200, answer.text
            made[header].append(answer.json()["token"])
    for tokens in made.values():
        tokens += [UNKNOWN_TOKEN, tokens[0]]  # a refused token, then an accepted one: the alternation holds
    return made


def test_schemathesis_finds_no_5xx_and_every_4xx_in_the_error_shape(stack):
    from chalicelib.core import config as app_config

    before = {name: stack.get(f"/internal/v1/configs/{name}").json() for name in sorted(app_config.REGISTRY)}
    sessions = _sessions(stack)
    command = [
        str(pathlib.Path(sys.executable).parent / "st"), "run", f"{stack.api}/openapi.json",
        "--checks", "not_a_server_error,error_shape",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--workers", "2",
        "--request-timeout", "30",
        # Sessions come from the hook above; the forwarder signs internal routes (it drops any Authorization).
        "--generation-with-security-parameters", "false",
        "--generation-database", "none",
        "--suppress-health-check", "all",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": __name__, SESSIONS_ENV: json.dumps(sessions)}
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=TIME_LIMIT_SECONDS)
    finally:
        for name, answer in before.items():
            if "value" in answer:
                stack.put_config(name, answer["value"])
    output = result.stdout + result.stderr
    print(output[-4000:])
    assert result.returncode == 0, output[-12000:]
    # Every operation of the document was reached, not just loaded.
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested and int(tested.group(1)) == int(selected.group(2)) > 20, output[-4000:]
    assert sessions, ("FOLLOW-UP: the simulator has no POST /_control/sessions: driver and eats routes were fuzzed "
                      "only up to the gateway's 401")
