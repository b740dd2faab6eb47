"""The base of every pydantic payload model in the app.

`defer_build`: a model's validator is built on first use, not at import. A Lambda imports every schema
of its service at cold start but a request touches a few; building them all up front cost ~65 ms.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from .clock import to_utc

# A timestamp as every payload takes it: naive means UTC, aware is converted to UTC.
UtcDatetime = Annotated[dt.datetime, AfterValidator(to_utc)]


class Schema(BaseModel):
    model_config = ConfigDict(defer_build=True)
