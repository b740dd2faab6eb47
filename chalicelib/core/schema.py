"""The base of every pydantic payload model in the app.

`defer_build`: a model's validator is built on first use, not at import. A Lambda imports every schema
of its service at cold start but a request touches a few; building them all up front cost ~65 ms.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from .clock import sane_epoch, sane_utc

# A timestamp as every payload takes it (queue messages, requests, upstream answers): naive means UTC, aware is
# converted to UTC, and one outside 2000-2100 is invalid (core/clock.py: sane_utc).
UtcDatetime = Annotated[dt.datetime, AfterValidator(sane_utc)]
# Epoch seconds as a payload carries them, in the same range.
EpochSecondsValue = Annotated[int, AfterValidator(sane_epoch)]


class Schema(BaseModel):
    model_config = ConfigDict(defer_build=True)
