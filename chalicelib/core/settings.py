"""Every environment variable the app reads, read once and typed.

Values come from `.chalice/config.json` (per stage) in Lambda and from the test fixtures in tests.
Call `get_settings()` at use time, never in a decorator at import: `chalice package` imports the app
without the stage's environment.
"""
from __future__ import annotations

import functools
import os

from pydantic import BaseModel, Field


class Settings(BaseModel):
    stage: str = "dev"
    region: str = "us-east-1"
    # Points boto3 and PynamoDB at an emulator (ministack / LocalStack); None in AWS.
    aws_endpoint_url: str | None = None
    # Upstream base URLs by upstream name (UPSTREAM_<NAME>_URL), e.g. {"protocol": "http://..."}.
    upstream_urls: dict[str, str] = Field(default_factory=dict)
    upstream_connect_timeout: float = 0.3
    upstream_read_timeout: float = 1.0
    upstream_retries: int = 2
    # How long a dynamic config value is cached in memory before it is read again.
    config_cache_seconds: float = 10.0
    # How long API Gateway caches an authorizer's answer per session token (0 = no cache; AWS allows <= 3600).
    # A property of the template: read when `chalice package` imports the authorizers, in the build's environment.
    authorizer_cache_seconds: int = Field(60, ge=0, le=3600)
    log_level: str = "INFO"

    @property
    def is_local(self) -> bool:
        return self.stage == "local"


def _upstream_urls(environ: dict[str, str]) -> dict[str, str]:
    prefix, suffix = "UPSTREAM_", "_URL"
    return {
        key[len(prefix):-len(suffix)].lower(): value.rstrip("/")
        for key, value in environ.items()
        if key.startswith(prefix) and key.endswith(suffix) and value
    }


def _from_environ(environ: dict[str, str]) -> Settings:
    raw = {
        "stage": environ.get("APP_STAGE"),
        "region": environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
        "aws_endpoint_url": environ.get("AWS_ENDPOINT_URL") or None,
        "upstream_urls": _upstream_urls(environ),
        "upstream_connect_timeout": environ.get("UPSTREAM_CONNECT_TIMEOUT"),
        "upstream_read_timeout": environ.get("UPSTREAM_READ_TIMEOUT"),
        "upstream_retries": environ.get("UPSTREAM_RETRIES"),
        "config_cache_seconds": environ.get("CONFIG_CACHE_SECONDS"),
        "authorizer_cache_seconds": environ.get("AUTHORIZER_CACHE_SECONDS"),
        "log_level": environ.get("LOG_LEVEL"),
    }
    return Settings.model_validate({k: v for k, v in raw.items() if v is not None})


@functools.cache
def get_settings() -> Settings:
    return _from_environ(dict(os.environ))


def reload_settings() -> Settings:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
    return get_settings()
