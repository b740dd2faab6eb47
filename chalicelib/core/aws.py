"""AWS clients, created once per process and pointed at the emulator when AWS_ENDPOINT_URL is set.

One botocore session serves every client of a thread, PynamoDB's included (core.storage hands it this
session): a botocore session reads its data directory and parses the endpoint and service JSON files once,
~60-100 ms here, and PynamoDB would otherwise pay that again for every table a cold process touches.
botocore directly, not boto3: boto3 adds nothing to a low-level client but imports s3transfer (~90 ms of
cold start) for resources and transfers this app never uses.

Clients are shared: asked twice for a client with the same arguments, the session answers the same one.
PynamoDB asks for a DynamoDB client per table (the first ~15 ms of botocore work, each later one ~3 ms, and
each its own connection pool, so its own TCP/TLS handshake on a table's first call); every table and
transaction of a process uses one client and one pool instead. botocore clients are thread-safe.

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
_shared: dict[tuple, object] = {}
_shared_lock = threading.Lock()


class _SharingSession(botocore.session.Session):
    """A botocore session whose clients are shared by every caller asking with the same arguments."""

    def create_client(self, service_name, region_name=None, *args, endpoint_url=None, config=None, **kwargs):
        if args or any(value is not None for value in kwargs.values()):  # own credentials, api version...
            return super().create_client(service_name, region_name, *args, endpoint_url=endpoint_url,
                                         config=config, **kwargs)
        key = (service_name, region_name, endpoint_url, _config_key(config))
        with _shared_lock:
            shared = _shared.get(key)
            if shared is None or not _has_credentials(shared):
                shared = _shared[key] = super().create_client(service_name, region_name, endpoint_url=endpoint_url,
                                                              config=config)
            return shared


def _config_key(config: Config | None) -> tuple | None:
    if config is None:
        return None
    return tuple((name, repr(getattr(config, name, None))) for name in Config.OPTION_DEFAULTS)


def _has_credentials(client) -> bool:
    # A client made while credentials could not be found keeps none for good (PynamoDB checks the same and
    # makes a new one): such a client is not handed out again.
    signer = getattr(client, "_request_signer", None)
    return signer is None or bool(getattr(signer, "_credentials", None))


def botocore_session() -> botocore.session.Session:
    """This thread's botocore session (sessions are not thread-safe; the clients they make are)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = _SharingSession()
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


def shared_clients() -> list[str]:
    """The services this process holds a shared client of (what a cold start has made so far)."""
    with _shared_lock:
        return sorted({key[0] for key in _shared})


def reset_clients() -> None:
    """Drop cached clients (tests switch endpoints and mocks)."""
    client.cache_clear()
    with _shared_lock:
        _shared.clear()
