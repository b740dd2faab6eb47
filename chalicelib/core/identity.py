"""Who is calling: the route kinds, the identities the gateway's authorizers establish, and what an identity
value may be. Plain data, free of Chalice and pydantic: domain code (the topic modules) takes these as arguments, and
the authorizer Lambdas, which run on every uncached call, import this instead of the HTTP layer."""
from __future__ import annotations

import dataclasses
import re
from typing import Any

PUBLIC = "public"  # no auth: e.g. shared routes by an unguessable key
INTERNAL = "internal"  # service-to-service: IAM-signed in every stage's template
DRIVER = "driver"  # identity from the gateway's driver authorizer (session in X-Driver-Session)
EATS_USER = "eats_user"  # identity from the gateway's eats-user authorizer (session in X-Eats-Session)
KINDS = (PUBLIC, INTERNAL, DRIVER, EATS_USER)

# What an identity value (park_id, driver_profile_id, user_id) may be before it reaches a key or a log line.
# Ids of the session services are short tokens of these characters; anything else is refused (4xx), never
# stored. The authorizers refuse it at the gateway; views check again (the context is only as good as the
# authorizer that wrote it).
IDENTITY_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def valid_identity_value(value: Any) -> bool:
    return isinstance(value, str) and IDENTITY_VALUE.fullmatch(value) is not None


@dataclasses.dataclass(frozen=True)
class DriverIdentity:
    park_id: str
    driver_profile_id: str

    @property
    def driver_id(self) -> str:
        return f"{self.park_id}_{self.driver_profile_id}"


@dataclasses.dataclass(frozen=True)
class EatsUserIdentity:
    user_id: str
