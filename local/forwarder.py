"""127.0.0.1:8000, the local stack's stable API address: a forwarder to the deployed API's emulator URL (which
changes with the route set), signing every request as an internal caller."""
from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from local.deployment import api_base
from local.emulator import HOST, STATE_DIR, signed_headers

API_PORT = int(os.environ.get("LOCAL_API_PORT", "8000"))


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
