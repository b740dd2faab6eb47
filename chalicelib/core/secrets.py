"""Secrets of deployed stages: SSM Parameter Store SecureStrings, read once per process for a short time.

    CARGO_TOKEN = SecureParameter("CARGO_TOKEN_PARAMETER", "cargo_token_unavailable")
    token = CARGO_TOKEN.read()  # str, or UpstreamUnavailable(code=...) when it cannot be read

The parameter's name is a stage setting (an environment variable of the function, set per stage in
.chalice/config.json; each function's grant names exactly that parameter). The value is cached per process for
`cache_seconds`, so a rotation reaches every Lambda within that time, and `forget()` drops it at once (tests, a
refused credential). A value that cannot be read (missing, no access, SSM down, empty, or refused by `parse`)
raises UpstreamUnavailable with the secret's own code: the caller's upstream is then as unavailable as if it
were down, with its usual fallback. The value is never logged.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

from . import aws
from .errors import UpstreamUnavailable
from .logs import get_logger

log = get_logger(__name__)

DEFAULT_CACHE_SECONDS = 300
_ALL: list["SecureParameter"] = []


def forget_all() -> None:
    """Drop every secret's cached value and name (tests: each may run under another stage's settings)."""
    for secret in _ALL:
        secret.forget()


class SecureParameter:
    def __init__(self, setting: str, code: str, *, default_name: Callable[[], str | None] = lambda: None,
                 parse: Callable[[str], Any] = str.strip, cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        self.setting, self.code, self.parse = setting, code, parse
        self.default_name, self.cache_seconds = default_name, cache_seconds
        self._cached: tuple[float, Any] | None = None
        self._name: str | None = None
        _ALL.append(self)

    def name(self) -> str | None:
        """The parameter's name: the stage setting, else the default (None: this stage has no such secret).
        Read once per process, like every setting (core/settings.py)."""
        if self._name is None:
            self._name = os.environ.get(self.setting) or self.default_name()
        return self._name

    def forget(self) -> None:
        """Drop the cached value and name (tests, a rotation, a refused credential)."""
        self._cached = self._name = None

    def read(self) -> Any:
        if self._cached and time.monotonic() - self._cached[0] < self.cache_seconds:
            return self._cached[1]
        name = self.name()
        if not name:
            raise UpstreamUnavailable(f"{self.setting} is not set in this stage", code=self.code)
        try:
            text = aws.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except Exception as error:  # botocore: missing parameter, no access, SSM down
            log.error_event("secret.unavailable", setting=self.setting, error=type(error).__name__)
            raise UpstreamUnavailable(f"the secret of {self.setting} is unavailable", code=self.code) from None
        try:
            value = self.parse(text)
        except Exception:  # malformed: never echo the value
            log.error_event("secret.malformed", setting=self.setting)
            raise UpstreamUnavailable(f"the secret of {self.setting} is malformed", code=self.code) from None
        if not value:
            raise UpstreamUnavailable(f"the secret of {self.setting} is empty", code=self.code)
        self._cached = (time.monotonic(), value)
        return value
