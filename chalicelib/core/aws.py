"""AWS clients, created once per process and pointed at the emulator when AWS_ENDPOINT_URL is set.

One botocore session serves every client of a thread, PynamoDB's included (core.storage hands it this
session): a botocore session reads its data directory and parses the endpoint and service JSON files once,
~60-100 ms here, and PynamoDB would otherwise pay that again for every table a cold process touches.
botocore directly, not boto3: boto3 adds nothing to a low-level client but imports s3transfer (~90 ms of
cold start) for resources and transfers this app never uses.

SERVICES is every AWS API the app calls. The deployment zip ships botocore's data for these alone
(tools/bytecode.py): botocore lists its whole data directory (~440 services) before its first client, a
third of a cold process's first request, and the zip loses 28 MB. A client of any other service is refused
here, so a new one fails in the unit tests, not in Lambda: add it to SERVICES.
"""
from __future__ import annotations

import functools
import threading

import botocore.session
from botocore.config import Config

from .settings import get_settings

SERVICES = frozenset({"dynamodb", "sqs", "ssm"})
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})
_local = threading.local()


def botocore_session() -> botocore.session.Session:
    """This thread's botocore session (sessions are not thread-safe; the clients they make are)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = botocore.session.get_session()
    return session


@functools.cache
def client(service: str):
    if service not in SERVICES:
        raise ValueError(f"AWS service {service!r} is not in chalicelib.core.aws.SERVICES: add it there, or "
                         "the deployment zip will not hold botocore's data for it")
    settings = get_settings()
    return botocore_session().create_client(
        service,
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        config=_CLIENT_CONFIG,
    )


def reset_clients() -> None:
    """Drop cached clients (tests switch endpoints and mocks)."""
    client.cache_clear()
