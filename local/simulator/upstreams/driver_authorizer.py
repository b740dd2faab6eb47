"""driver-authorizer: checks the driver app's session (the gateway's driver authorizer asks it).

    POST /driver_authorizer/v1/session/check {"token"} -> 200 {"park_id", "driver_profile_id"}
                                                          401 unknown or expired;  400 no token

Sessions are made by POST /_control/sessions {"kind": "driver", ...} (see local/simulator/sessions.py, shared
with eats_passport). Faults: POST /_control/faults {"upstream": "driver_authorizer", ...}.
"""
from __future__ import annotations

from local.simulator import sessions

NAME = "driver_authorizer"
ROUTES = [("POST", r"/v1/session/check", lambda request: sessions.check("driver", request))]
# Both session services expose the one sessions control; the server takes the first match (the same function).
CONTROL_ROUTES = sessions.CONTROL_ROUTES


def reset() -> None:
    sessions.reset("driver")
