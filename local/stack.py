"""The local stack: the real deployment, on one machine, on loopback only.

    python -m local.stack run       # emulator + deploy + API forwarder :8000 + upstream simulator :8100 (Ctrl-C stops)
    python -m local.stack deploy    # re-package and update the running stack (after a code change)
    python -m local.stack fire PickerOrdersUpdater   # run a @schedule handler now (its CloudFormation logical id)
    python -m local.stack logs SaveSharingKeys      # the function's recent log lines

The emulator is ministack (own virtualenv, .venv-emulator) on 127.0.0.1:4566, unless AWS_ENDPOINT_URL points
at an emulator that is already running (e.g. LocalStack): then that one is used and none is started.
The app is packaged by `chalice package --stage local --merge-template <generated resources>` and deployed as
a CloudFormation stack: the same template that goes to AWS. The emulator's event source mappings and
schedules run the handlers; nothing here pumps events.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from localstack_client import session as localstack_session

from deploy.package import package

ROOT = pathlib.Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / "local" / ".state"
BUILD_DIR = ROOT / "build" / "local"
DEMO_CONFIGS = ROOT / "local" / "demo_configs"
HOST = "127.0.0.1"
EMULATOR_PORT = 4566
API_PORT = int(os.environ.get("LOCAL_API_PORT", "8000"))
SIMULATOR_PORT = int(os.environ.get("LOCAL_SIMULATOR_PORT", "8100"))
REGION = "us-east-1"
STACK_NAME = "taxi-delivery-local"
BUCKET = "taxi-delivery-local-deploy"
# What the app uses of the emulator; nothing else is started.
EMULATOR_SERVICES = "cloudformation,s3,lambda,sqs,dynamodb,apigateway,events,logs,iam,sts,ssm"
# Secrets the local stage reads from SSM Parameter Store (SecureString), as deployed stages do; the values
# are the upstream simulator's (local/simulator/upstreams/krt.py). Seeded before every deploy, never overwritten.
LOCAL_PARAMETERS = {
    "/taxi-delivery/local/krt-credentials": json.dumps({"client_id": "taxi-local", "client_secret": "local-secret"}),
}


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


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    parsed = urllib.parse.urlsplit(url)
    try:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
        connection.request("GET", parsed.path or "/")
        return connection.getresponse().status < 500
    except OSError:
        return False


def emulator_healthy() -> bool:
    return _http_ok(emulator_url() + "/_ministack/health") or _http_ok(emulator_url() + "/_localstack/health")


def _wait(check, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


# --- emulator -----------------------------------------------------------------------------------------

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
        _wait(lambda: process.poll() is not None or emulator_healthy(), 90, "the emulator on :4566")
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


# --- package and deploy -------------------------------------------------------------------------------

def _upload(zip_path: pathlib.Path) -> str:
    s3 = aws_client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=BUCKET)
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:16]
    # A fresh key every deploy: same key + same template is "No updates are to be performed".
    key = f"deployment-{digest}-{uuid.uuid4().hex[:8]}.zip"
    s3.upload_file(str(zip_path), BUCKET, key)
    return f"s3://{BUCKET}/{key}"


def _stack_status() -> str | None:
    try:
        return aws_client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
    except Exception as error:  # does not exist
        if "does not exist" in str(error):
            return None
        raise


def _enable_ttl(template: dict) -> None:
    """The emulator ignores TimeToLiveSpecification in templates: enable TTL after deploy (once)."""
    dynamodb = aws_client("dynamodb")
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        spec = properties.get("TimeToLiveSpecification")
        if resource.get("Type") != "AWS::DynamoDB::Table" or not spec:
            continue
        table = properties["TableName"]
        current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if current.get("AttributeName") == spec["AttributeName"]:
                continue
            # The model's TTL attribute changed: as on AWS, disable the old one before enabling the new one.
            dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={
                "AttributeName": current["AttributeName"], "Enabled": False})
        dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)


def seed_parameters() -> None:
    """Put the local stage's SSM SecureStrings into the emulator (a value set by hand is kept)."""
    ssm = aws_client("ssm")
    for name, value in LOCAL_PARAMETERS.items():
        # Asked first: ministack answers a put over an existing name with a bare 400, not ParameterAlreadyExists.
        try:
            ssm.get_parameter(Name=name)
            continue
        except ssm.exceptions.ParameterNotFound:
            pass
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=False)


def deploy() -> dict:
    started = time.monotonic()
    seed_parameters()
    template, zip_path = package("local", BUILD_DIR)
    code_uri = _upload(zip_path)
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    cloudformation = aws_client("cloudformation")
    # Through S3, as `aws cloudformation deploy` does: an inline TemplateBody is capped at 51,200 bytes.
    template_key = code_uri.rsplit("/", 1)[-1].removesuffix(".zip") + ".template.json"
    aws_client("s3").put_object(Bucket=BUCKET, Key=template_key, Body=json.dumps(template).encode())
    arguments = dict(StackName=STACK_NAME, TemplateURL=f"{emulator_url()}/{BUCKET}/{template_key}",
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    status = _stack_status()
    created = status is None or status.endswith("_FAILED") or status == "ROLLBACK_COMPLETE"
    if status is None:
        cloudformation.create_stack(**arguments)
    elif status.endswith("_FAILED") or status == "ROLLBACK_COMPLETE":
        cloudformation.delete_stack(StackName=STACK_NAME)
        _wait(lambda: _stack_status() is None, 60, "the failed stack to go")
        cloudformation.create_stack(**arguments)
    else:
        cloudformation.update_stack(**arguments)
    final = _wait(lambda: (s := _stack_status()) and not s.endswith("_IN_PROGRESS") and s, 180, "the stack")
    if final not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        events = cloudformation.describe_stack_events(StackName=STACK_NAME)["StackEvents"][:10]
        reasons = [e.get("ResourceStatusReason") for e in events if e.get("ResourceStatusReason")]
        raise RuntimeError(f"stack {final}: {reasons}")
    _enable_ttl(template)
    state = {**_read_outputs(), "created": created}
    log("stack.deployed", status=final, seconds=round(time.monotonic() - started, 1),
        api=f"{emulator_url()}/_aws/execute-api/{state['api_id']}/api/")
    return state


def _read_outputs() -> dict:
    """The API id changes when the route set changes: re-read it after every deploy."""
    cloudformation = aws_client("cloudformation")
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0].get("Outputs", [])}
    functions = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME):
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
                functions[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    state = {"api_id": outputs["RestAPIId"], "functions": functions}
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    (STATE_DIR / "stack.json").write_text(json.dumps(state, indent=2))
    return state


def read_state() -> dict:
    path = STATE_DIR / "stack.json"
    return json.loads(path.read_text()) if path.exists() else _read_outputs()


def api_base(state: dict | None = None) -> str:
    return f"{emulator_url()}/_aws/execute-api/{(state or read_state())['api_id']}/api"


def seed_demo_configs(state: dict) -> None:
    """Ship the local stage's demo configs through the config API, as an operator would. Only into a stack
    just created: values changed by hand on a running stack survive `make deploy`."""
    if not state.get("created"):
        return
    base = api_base(state)
    for path in sorted(DEMO_CONFIGS.glob("*.json")):
        for name, value in json.loads(path.read_text()).items():
            answer = _request("PUT", f"{base}/internal/v1/configs/{name}", {"value": value})
            if answer[0] != 200:
                raise RuntimeError(f"demo config {name} was refused: {answer}")
    log("configs.seeded", files=sorted(p.name for p in DEMO_CONFIGS.glob("*.json")))


def signed_headers(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
    """SigV4-sign as an internal caller would: internal routes are IAM-authorised, here as on AWS."""
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(Credentials("test", "test"), "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())


def _request(method: str, url: str, body=None, timeout: float = 30) -> tuple[int, str]:
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    payload = json.dumps(body).encode() if body is not None else None
    headers = signed_headers(method, url, payload, {"Content-Type": "application/json"})
    connection.request(method, parsed.path + ("?" + parsed.query if parsed.query else ""), body=payload,
                       headers=headers)
    response = connection.getresponse()
    return response.status, response.read().decode()


def wait_for_api(state: dict) -> None:
    _wait(lambda: _request("GET", api_base(state) + "/ping", timeout=15)[0] == 200, 60, "the API to answer /ping")


# --- on-demand schedules and logs ----------------------------------------------------------------------

def scheduled_event() -> dict:
    """What EventBridge sends a scheduled Lambda; Chalice's event class needs every field."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION, "resources": ["arn:aws:events:us-east-1:000000000000:rule/local-fire"], "detail": {},
    }


def fire_schedule(logical_id: str, state: dict | None = None) -> dict:
    name = (state or read_state())["functions"][logical_id]
    answer = aws_client("lambda").invoke(FunctionName=name, Payload=json.dumps(scheduled_event()).encode())
    payload = answer["Payload"].read().decode() or "null"
    if answer.get("FunctionError"):
        raise RuntimeError(f"{logical_id} failed: {payload}")
    return {"status": answer["StatusCode"], "payload": json.loads(payload)}


def recent_logs(logical_id: str, minutes: int = 15) -> list[str]:
    name = read_state()["functions"][logical_id]
    logs = aws_client("logs")
    since = int((time.time() - minutes * 60) * 1000)
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", startTime=since)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [event["message"].rstrip() for event in events]


# --- the stable API address ----------------------------------------------------------------------------

class _ApiTarget:
    """Where :8000 forwards: the deployed API's emulator URL, read from the stack state file once and again only
    when that file changes (`make deploy` rewrites it, and the API id changes with the route set). A stat per
    request instead of a read and a JSON parse."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._base: urllib.parse.SplitResult | None = None

    @staticmethod
    def _file_stamp() -> tuple | None:
        try:
            status = (STATE_DIR / "stack.json").stat()
        except FileNotFoundError:
            return None
        return status.st_mtime_ns, status.st_size, status.st_ino

    def base(self) -> urllib.parse.SplitResult:
        stamp = self._file_stamp()
        if stamp is None or stamp != self._stamp or self._base is None:
            with self._lock:
                if stamp is None or stamp != self._stamp or self._base is None:
                    # No file yet: read_state() asks CloudFormation and writes it; the next request re-stats.
                    self._base, self._stamp = urllib.parse.urlsplit(api_base()), stamp
        return self._base


class _UpstreamConnections:
    """Keep-alive connections to the emulator, shared by the forwarder's threads: a request takes an idle one
    (or opens one), and gives it back once the answer is read whole. No TCP handshake per request, whether the
    client keeps its own connection (requests.Session) or opens one per request (curl)."""

    MAX_IDLE = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []

    def _take(self, host: str, port: int) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()  # the most recently used: the least likely to have been closed
                if (connection.host, connection.port) == (host, port):
                    return connection, True
                connection.close()  # the emulator's address changed
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, False

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.MAX_IDLE:
                self._idle.append(connection)
                return
        connection.close()

    def request(self, method: str, host: str, port: int, path: str, body: bytes | None,
                headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        while True:
            connection, reused = self._take(host, port)
            try:
                # http.client sends a bytes body in the same segment as the headers.
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (ConnectionError, http.client.BadStatusLine):
                connection.close()
                if reused:
                    continue  # an idle connection the emulator had closed: reconnect (a fresh one is not retried)
                raise
            except BaseException:
                connection.close()
                raise
            if response.will_close:
                connection.close()
            else:
                self._give_back(connection)
            return response.status, response.getheaders(), payload


class _Forwarder(BaseHTTPRequestHandler):
    """127.0.0.1:8000 -> the deployed API's emulator URL (which changes with the route set).

    It signs every request (SigV4, the emulator's test credentials), so internal routes, IAM-authorised in
    the template as in every stage, are open to curl here. The emulator URL itself wants a signature.
    Every method is forwarded (API Gateway, not this forwarder, decides what a method it has no route for
    gets: a 4xx). Each answer leaves in ONE write with TCP_NODELAY: headers and body in separate segments
    cost a delayed-ACK stall (~40 ms) per request.
    """

    protocol_version = "HTTP/1.1"
    hop_by_hop = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-authorization", "host",
                  "proxy-connection", "trailer"}
    target = _ApiTarget()
    upstream = _UpstreamConnections()

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __getattr__(self, name: str):
        # BaseHTTPRequestHandler answers 501 for any method without a do_<METHOD>: forward them all.
        if name.startswith("do_"):
            return self._forward
        raise AttributeError(name)

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else None

    def _forward(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "malformed request body framing")
            return
        try:
            target = self.target.base()
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in self.hop_by_hop and not k.lower().startswith(("authorization", "x-amz-"))}
            url = f"{target.scheme}://{target.netloc}{target.path}{self.path}"
            headers = signed_headers(self.command, url, body, headers)
            status, answer_headers, payload = self.upstream.request(
                self.command, target.hostname, target.port, target.path + self.path, body, headers)
        except Exception as error:
            status, answer_headers = 502, [("Content-Type", "application/json")]
            payload = json.dumps({"code": "local_forwarder_error", "message": repr(error)}).encode()
        self._answer(status, answer_headers, payload)

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        length = None
        for key, value in headers:
            lower = key.lower()
            if lower == "content-length":
                length = value
            elif lower not in self.hop_by_hop:
                lines.append(f"{key}: {value}")
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        if self.command == "HEAD":
            lines.append(f"Content-Length: {length or 0}")  # what a GET would carry; no body follows
        elif not no_body:
            lines.append(f"Content-Length: {len(payload)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head if no_body else head + payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The forwarder's own refusals (a malformed request line or header) in the app's error shape."""
        self.close_connection = True
        body = json.dumps({"code": "bad_request" if code < 500 else "local_forwarder_error",
                           "message": message or http.HTTPStatus(code).phrase}).encode()
        if not hasattr(self, "command") or self.command is None:
            self.command = ""
        self._answer(code, [("Content-Type", "application/json")], body)

    def log_message(self, format, *args):  # noqa: A002
        pass


class _ForwarderServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # a burst of clients must not be refused at accept


def start_forwarder(port: int = API_PORT) -> ThreadingHTTPServer:
    server = _ForwarderServer((HOST, port), _Forwarder)
    threading.Thread(target=server.serve_forever, name="api-forwarder", daemon=True).start()
    return server


# --- the whole stack -----------------------------------------------------------------------------------

@dataclasses.dataclass
class RunningStack:
    state: dict
    api_url: str
    simulator_url: str
    emulator: subprocess.Popen | None = None
    servers: list = dataclasses.field(default_factory=list)

    def function_name(self, logical_id: str) -> str:
        return self.state["functions"][logical_id]

    def fire_schedule(self, logical_id: str) -> dict:
        return fire_schedule(logical_id, self.state)


def _port_open(port: int) -> bool:
    return _http_ok(f"http://{HOST}:{port}/", timeout=0.5)


def _clean_emulator_leftovers() -> None:
    shutil.rmtree(STATE_DIR / "emulator-tmp", ignore_errors=True)


@contextlib.contextmanager
def running(redeploy: bool = True):
    """Reuse a running stack (make run) or start one for the duration of the block."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    emulator, servers = None, []
    try:
        if not emulator_healthy():
            if os.environ.get("AWS_ENDPOINT_URL"):
                raise RuntimeError(f"AWS_ENDPOINT_URL={emulator_url()} does not answer")
            emulator = start_emulator()
        if not _port_open(SIMULATOR_PORT):
            from local.simulator.server import serve

            servers.append(serve(SIMULATOR_PORT)[0])
        if redeploy or _stack_status() is None:
            state = deploy()
        else:
            state = _read_outputs()
        if not _port_open(API_PORT):
            servers.append(start_forwarder(API_PORT))
        wait_for_api(state)
        seed_demo_configs(state)
        yield RunningStack(state=state, api_url=f"http://{HOST}:{API_PORT}",
                           simulator_url=f"http://{HOST}:{SIMULATOR_PORT}", emulator=emulator, servers=servers)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        if emulator is not None:
            stop_process(emulator)
            _clean_emulator_leftovers()
            (STATE_DIR / "stack.json").unlink(missing_ok=True)


def _print_banner(stack: RunningStack) -> None:
    api = api_base(stack.state)
    print(f"""
Local stack is up (Ctrl-C stops everything):
  API (stable)        {stack.api_url}            e.g. curl {stack.api_url}/ping
  API (emulator)      {api}/
  AWS emulator        {emulator_url()}   e.g. aws --endpoint-url {emulator_url()} sqs list-queues
  Upstream simulator  {stack.simulator_url}       e.g. curl -X POST {stack.simulator_url}/_control/faults -d '{{"upstream":"protocol","mode":"error"}}'
  Functions           {', '.join(sorted(stack.state['functions']))}
  After a code change: make deploy      Fire a schedule now: make fire FN=<Function>
""", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start everything in the foreground")
    commands.add_parser("deploy", help="re-package and update the running stack")
    fire = commands.add_parser("fire", help="invoke a @schedule function now")
    fire.add_argument("function", help="its logical id, e.g. PickerOrdersUpdater")
    logs = commands.add_parser("logs", help="a function's recent log lines")
    logs.add_argument("function")
    logs.add_argument("--minutes", type=int, default=15)
    args = parser.parse_args(argv)

    if args.command == "run":
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            with running() as stack:
                _print_banner(stack)
                stopping.wait()
        except KeyboardInterrupt:
            pass
        log("stack.stopped")
    elif args.command == "deploy":
        if not emulator_healthy():
            sys.exit("no emulator is running: start it with `make run`")
        state = deploy()
        wait_for_api(state)
        seed_demo_configs(state)
    elif args.command == "fire":
        print(json.dumps(fire_schedule(args.function), ensure_ascii=False, indent=2))
    elif args.command == "logs":
        print("\n".join(recent_logs(args.function, args.minutes)))


if __name__ == "__main__":
    main()
