"""boto3 clients, created once per process and pointed at the emulator when AWS_ENDPOINT_URL is set."""
from __future__ import annotations

import functools

import boto3
from botocore.config import Config

from .settings import get_settings

_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})


@functools.cache
def client(service: str):
    settings = get_settings()
    return boto3.client(
        service,
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        config=_CLIENT_CONFIG,
    )


def reset_clients() -> None:
    """Drop cached clients (tests switch endpoints and mocks)."""
    client.cache_clear()
