"""Who is calling: the identities the gateway's authorizers establish. Plain data, free of Chalice, so
domain code (service.py) can take them as arguments."""
from __future__ import annotations

import dataclasses


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
