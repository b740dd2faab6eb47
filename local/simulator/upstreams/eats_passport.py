"""eats-passport: checks the eats app's session (the gateway's eats-user authorizer asks it).

    POST /eats_passport/v1/session/check {"token"} -> 200 {"user_id"}
                                                      401 unknown or expired;  400 no token

Sessions are made by POST /_control/sessions {"kind": "eats_user", "user_id": "..."} (see
local/simulator/sessions.py, shared with driver_authorizer). Faults: /_control/faults {"upstream": "eats_passport"}.
"""
from __future__ import annotations

from local.simulator import sessions

NAME = "eats_passport"
ROUTES = [("POST", r"/v1/session/check", lambda request: sessions.check("eats_user", request))]
CONTROL_ROUTES = sessions.CONTROL_ROUTES


def reset() -> None:
    sessions.reset("eats_user")
