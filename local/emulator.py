"""The AWS emulator the local stack runs on: where it listens, a client of it, starting and stopping it.

ministack (own virtualenv, .venv-emulator) on 127.0.0.1:4566, unless AWS_ENDPOINT_URL points at an emulator that
is already running (e.g. LocalStack): then that one is used and none is started.
"""
from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from localstack_client import session as localstack_session

ROOT = pathlib.Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / "local" / ".state"
HOST = "127.0.0.1"
EMULATOR_PORT = 4566
REGION = "us-east-1"
# What the app uses of the emulator; nothing else is started.
EMULATOR_SERVICES = "cloudformation,s3,lambda,sqs,dynamodb,apigateway,events,logs,iam,sts,ssm"


def log(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}, ensure_ascii=False), flush=True)


def emulator_url() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or f"http://{HOST}:{EMULATOR_PORT}"


@functools.cache
def aws_client(service: str):
    """A client of the emulator, made by localstack-client (the design card's library for this).

    Pointed at our emulator explicitly: left alone it aims at localhost:4566 (which may resolve to ::1 while
    the emulator listens on 127.0.0.1 only), or at https with USE_SSL set. It takes AWS_ENDPOINT_URL itself
    when that is set, as emulator_url() does; the check below catches any other drift."""
    endpoint = urllib.parse.urlsplit(emulator_url())
    session = localstack_session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                         region_name=REGION, localstack_host=endpoint.netloc)
    client = session.client(service, config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                                   read_timeout=30))
    if client.meta.endpoint_url.rstrip("/") != emulator_url().rstrip("/"):
        raise RuntimeError(f"localstack-client aimed {service} at {client.meta.endpoint_url}, not {emulator_url()}"
                           " (USE_SSL or LOCALSTACK_HOST in the environment?)")
    return client


def http_ok(url: str, timeout: float = 1.0) -> bool:
    parsed = urllib.parse.urlsplit(url)
    try:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
        connection.request("GET", parsed.path or "/")
        return connection.getresponse().status < 500
    except OSError:
        return False


def emulator_healthy() -> bool:
    return http_ok(emulator_url() + "/_ministack/health") or http_ok(emulator_url() + "/_localstack/health")


def wait_for(check, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")



def start_emulator() -> subprocess.Popen:
    binary = ROOT / ".venv-emulator" / "bin" / "ministack"
    if not binary.exists():
        raise RuntimeError("the emulator is not installed: run `make run` (it creates .venv-emulator)")
    tmp = STATE_DIR / "emulator-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIRTUAL_ENV"))},
        "BIND_HOST": HOST, "GATEWAY_PORT": str(EMULATOR_PORT), "SERVICES": EMULATOR_SERVICES,
        "IOT_MTLS_ENABLED": "0", "LAMBDA_EXECUTOR": "local", "LOG_LEVEL": "WARNING",
        # Its Lambda workers unpack every function here (~60 MB each): ours to delete on exit.
        "TMPDIR": str(tmp), "AWS_DEFAULT_REGION": REGION,
    }
    logfile = open(STATE_DIR / "emulator.log", "ab")
    process = subprocess.Popen([str(binary)], env=env, stdout=logfile, stderr=subprocess.STDOUT,
                               cwd=str(STATE_DIR), start_new_session=True)
    try:
        wait_for(lambda: process.poll() is not None or emulator_healthy(), 90, "the emulator on :4566")
    except RuntimeError:
        stop_process(process)
        raise
    if process.poll() is not None:
        raise RuntimeError(f"the emulator exited ({process.returncode}); see {STATE_DIR / 'emulator.log'}")
    log("emulator.started", url=emulator_url(), pid=process.pid)
    return process


def stop_process(process: subprocess.Popen | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def signed_headers(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
    """SigV4-sign as an internal caller would: internal routes are IAM-authorised, here as on AWS."""
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(Credentials("test", "test"), "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())
