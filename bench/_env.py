"""Environment every bench sets before importing the app (PynamoDB reads it at import): fake credentials,
no emulator unless one is given, configs cached as in a warm Lambda. Imported first by each bench script."""
from __future__ import annotations

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def prepare(endpoint_url: str | None = None, **overrides: str) -> pathlib.Path:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "APP_STAGE": "bench", "CONFIG_CACHE_SECONDS": "300", "LOG_LEVEL": "WARNING",
        **({"AWS_ENDPOINT_URL": endpoint_url} if endpoint_url else {}),
        **overrides,
    })
    return ROOT
