"""The switches of code dispatch: the `code_dispatch` experiment (per area, park and driver), the
CODE_DISPATCH_PROCESSING_ENABLED config and the area's settings."""
from __future__ import annotations

from chalicelib.core.errors import Conflict

from .schemas import EXPERIMENT, PROCESSING_ENABLED, ZONES_SETTINGS, ZoneSettings


def require_feature(area_id: str | None = None, park_id: str | None = None,
                    driver_profile_id: str | None = None) -> None:
    """The experiment, evaluated with what the call knows (a kwarg not known matches no clause)."""
    if not EXPERIMENT.get(area_id=area_id, park_id=park_id, driver_profile_id=driver_profile_id).enabled:
        raise Conflict("code dispatch is switched off", code="code_dispatch_disabled")


def require_processing() -> None:
    if not PROCESSING_ENABLED.get():
        raise Conflict("code dispatch processing is switched off", code="code_dispatch_processing_disabled")


def zone(area_id: str) -> ZoneSettings:
    settings = ZONES_SETTINGS.get().get(area_id)
    if settings is None or not settings.enabled:
        raise Conflict(f"code dispatch is not enabled in area {area_id}", code="area_disabled")
    return settings
