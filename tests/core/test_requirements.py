"""Runtime pins: what core/http.py relies on is pinned, to the version the tests run with (issue 7, defect 9)."""
from __future__ import annotations

import importlib.metadata
import inspect
import re

from tests import locks
from tests.conftest import ROOT


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_urllib3_is_pinned_to_the_installed_version_that_has_the_retry_arguments_http_uses():
    chosen = locks.read(ROOT / "requirements.in").get("urllib3")
    assert chosen is not None, "requirements.in must pin urllib3 (core/http.py uses Retry(retry_after_max=...))"
    version = chosen.version
    assert version == locks.read(locks.RUNTIME_LOCK)["urllib3"].version == importlib.metadata.version("urllib3")
    # backoff_jitter came with 2.0.0, retry_after_max with 2.6.3 (urllib3's CHANGES.rst, #2952 and #3743)
    assert version_tuple(version) >= (2, 6, 3)
    from urllib3.util.retry import Retry

    accepted = inspect.signature(Retry).parameters
    assert {"backoff_jitter", "retry_after_max", "backoff_max"} <= set(accepted)
