"""Settings: typed from the environment, a bad value named at start; the authorizers' import path stays light."""
from __future__ import annotations

import subprocess
import sys

import pytest

from chalicelib.core.settings import _from_environ
from tests.conftest import ROOT


def test_values_are_typed_and_upstream_urls_collected():
    settings = _from_environ({"APP_STAGE": "prod", "UPSTREAM_RETRIES": "3", "UPSTREAM_READ_TIMEOUT": "1.5",
                              "UPSTREAM_KRT_URL": "https://krt.example/", "AUTHORIZER_CACHE_SECONDS": "0"})
    assert (settings.stage, settings.upstream_retries, settings.upstream_read_timeout) == ("prod", 3, 1.5)
    assert settings.upstream_urls == {"krt": "https://krt.example"}
    assert settings.authorizer_cache_seconds == 0
    assert _from_environ({}).authorizer_cache_seconds == 60


@pytest.mark.parametrize("name, value", [("UPSTREAM_RETRIES", "two"), ("UPSTREAM_READ_TIMEOUT", "-1"),
                                         ("AUTHORIZER_CACHE_SECONDS", "3601")])
def test_a_bad_value_stops_the_process_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        _from_environ({name: value})


def test_the_authorizer_lambda_imports_neither_pydantic_nor_the_http_layer():
    # It runs on every call the gateway has not cached: its cold start is on the request path.
    script = ("import sys; import chalicelib.core.authorizers\n"
              "heavy = sorted(m for m in ('pydantic', 'chalicelib.core.api', 'pynamodb', 'boto3') if m in sys.modules)\n"
              "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True)
