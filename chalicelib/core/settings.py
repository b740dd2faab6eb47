"""Every environment variable the app reads, read once and typed.

Values come from `.chalice/config.json` (per stage) in Lambda and from the test fixtures in tests.
Call `get_settings()` at use time, never in a decorator at import: `chalice package` imports the app
without the stage's environment.
"""
from __future__ import annotations

import dataclasses
import functools
import os

ROUTE_MODULES_VARIABLE = "API_ROUTE_MODULES"
CONFIG_MODULES_VARIABLE = "CONFIG_MODULES"
DOCUMENT_ROUTE_MODULES_VARIABLE = "DOCUMENT_ROUTE_MODULES"


@dataclasses.dataclass(frozen=True)
class Settings:
    # A plain typed dataclass, not a pydantic model: the authorizer Lambdas import settings (through core.http)
    # on every cold start, and this keeps pydantic out of their import path. Values are checked in _from_environ.
    stage: str = "dev"
    region: str = "us-east-1"
    # Points boto3 and PynamoDB at an emulator (ministack / LocalStack); None in AWS.
    aws_endpoint_url: str | None = None
    # Upstream base URLs by upstream name (UPSTREAM_<NAME>_URL), e.g. {"protocol": "http://..."}.
    upstream_urls: dict[str, str] = dataclasses.field(default_factory=dict)
    upstream_connect_timeout: float = 0.3
    upstream_read_timeout: float = 1.0
    upstream_retries: int = 2
    # How long a dynamic config value is cached in memory before it is read again.
    config_cache_seconds: float = 10.0
    # How long API Gateway caches an authorizer's answer per session token (0 = no cache; AWS allows <= 3600).
    # A property of the template: read when `chalice package` imports the authorizers, in the build's environment.
    authorizer_cache_seconds: int = 60
    log_level: str = "INFO"
    # Written by the build into an API function's environment (deploy/api_functions.py), never by hand:
    # the route modules it serves (ROUTE_MODULES_VARIABLE; chalicelib/core/api_function.py), and for the platform's
    # function the modules defining every config (CONFIG_MODULES_VARIABLE: the config API serves them all) and
    # every route module (DOCUMENT_ROUTE_MODULES_VARIABLE: the local stage's OpenAPI document lists them all).
    route_modules: tuple[str, ...] = ()
    config_modules: tuple[str, ...] = ()
    document_route_modules: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.stage == "local"


def _number(environ: dict[str, str], name: str, kind: type, default, low: float = 0, high: float | None = None):
    """The variable as `kind`, within [low, high]; a bad value stops the process at start, naming the variable."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {kind.__name__}") from None
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


def _upstream_urls(environ: dict[str, str]) -> dict[str, str]:
    prefix, suffix = "UPSTREAM_", "_URL"
    return {
        key[len(prefix):-len(suffix)].lower(): value.rstrip("/")
        for key, value in environ.items()
        if key.startswith(prefix) and key.endswith(suffix) and value
    }


def _names(environ: dict[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of module names."""
    return tuple(part.strip() for part in (environ.get(name) or "").split(",") if part.strip())


def _from_environ(environ: dict[str, str]) -> Settings:
    defaults = Settings()
    return Settings(
        stage=environ.get("APP_STAGE") or defaults.stage,
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or defaults.region,
        aws_endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
        upstream_urls=_upstream_urls(environ),
        upstream_connect_timeout=_number(environ, "UPSTREAM_CONNECT_TIMEOUT", float, defaults.upstream_connect_timeout),
        upstream_read_timeout=_number(environ, "UPSTREAM_READ_TIMEOUT", float, defaults.upstream_read_timeout),
        upstream_retries=_number(environ, "UPSTREAM_RETRIES", int, defaults.upstream_retries, high=10),
        config_cache_seconds=_number(environ, "CONFIG_CACHE_SECONDS", float, defaults.config_cache_seconds),
        authorizer_cache_seconds=_number(environ, "AUTHORIZER_CACHE_SECONDS", int,
                                         defaults.authorizer_cache_seconds, high=3600),
        log_level=environ.get("LOG_LEVEL") or defaults.log_level,
        route_modules=_names(environ, ROUTE_MODULES_VARIABLE),
        config_modules=_names(environ, CONFIG_MODULES_VARIABLE),
        document_route_modules=_names(environ, DOCUMENT_ROUTE_MODULES_VARIABLE),
    )


@functools.cache
def get_settings() -> Settings:
    return _from_environ(dict(os.environ))


def reload_settings() -> Settings:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
    return get_settings()
