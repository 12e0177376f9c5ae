"""Faults moto cannot produce, put on the wire in front of it so the SDK's real retry and error
paths run:

* FaultProxy: an HTTP proxy to the moto server that answers, instead of forwarding,
  - RequestLimitExceeded (HTTP 503) to the next k requests of an EC2 action (`throttle`),
  - AuthFailure (EC2, HTTP 401) / InvalidClientTokenId (STS, HTTP 403) to requests signed with a
    rejected access key id (`reject_key`), optionally quoting the key id in the message the way
    some AWS services do (`echo_key=True`),
  - a closed connection to every request for a service (`drop_service`),
  - AccessDeniedException (JSON protocol services such as KMS, HTTP 400) to every request for a
    service (`deny_service`), as to a credential whose policy lacks the service's actions;
  and records (service, action, access key id, status) of every request in `requests`.
* SilentServer: accepts TCP connections and never answers (a hung endpoint).
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


def ec2_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


def json_error(code: str, message: str) -> bytes:
    """The awsJson error body (KMS)."""
    return ('{"__type": "' + code + '", "message": "' + message + '"}').encode()


def query_error(code: str, message: str) -> bytes:
    """The awsQuery error body (STS)."""
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


class Seen(NamedTuple):
    service: str
    action: str
    access_key_id: str
    status: int  # 0: connection dropped


class FaultProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._throttles: dict[str, int] = {}
        self._rejected: dict[str, bool] = {}
        self._dropped: set[str] = set()
        self._denied: set[str] = set()
        self.requests: list[Seen] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- faults -------------------------------------------------------------------------------

    def throttle(self, action: str, times: int) -> None:
        with self._lock:
            self._throttles[action] = times

    def reject_key(self, access_key_id: str, echo_key: bool = False) -> None:
        with self._lock:
            self._rejected[access_key_id] = echo_key

    def drop_service(self, service: str) -> None:
        with self._lock:
            self._dropped.add(service)

    def deny_service(self, service: str) -> None:
        with self._lock:
            self._denied.add(service)

    def statuses(self, action: str) -> list[int]:
        with self._lock:
            return [seen.status for seen in self.requests if seen.action == action]

    # -- server -------------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                proxy._handle(self)

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fault-proxy")
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
        target = request.headers.get("X-Amz-Target") or ""  # JSON protocol: "TrentService.ListAliases"
        action = action or target.rpartition(".")[2]
        match = _CREDENTIAL.search(request.headers.get("Authorization") or "")
        key_id, service = (match.group(1), match.group(2)) if match else ("", "")

        with self._lock:
            answer: tuple[int, bytes] | None = None
            content_type = "text/xml;charset=UTF-8"
            if service in self._dropped:
                answer = (0, b"")
            elif service in self._denied:
                content_type = "application/x-amz-json-1.1"
                answer = (400, json_error(
                    "AccessDeniedException",
                    f"User: arn:aws:iam::123456789012:user/qlrf-reader is not authorized to perform: {service}:{action}",
                ))
            elif key_id in self._rejected:
                echo = f" ({key_id})" if self._rejected[key_id] else ""
                if service == "sts":
                    answer = (403, query_error("InvalidClientTokenId", f"The security token included in the request is invalid{echo}."))
                else:
                    answer = (401, ec2_error("AuthFailure", f"AWS was not able to validate the provided access credentials{echo}"))
            elif self._throttles.get(action, 0) > 0:
                self._throttles[action] -= 1
                answer = (503, ec2_error("RequestLimitExceeded", "Request limit exceeded."))

        if answer is None:
            status, headers, payload = self._forward(request, body)
        else:
            status, payload = answer
            headers = [("Content-Type", content_type)]
        with self._lock:
            self.requests.append(Seen(service, action, key_id, status))

        if status == 0:  # hang up without a word
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list, bytes]:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(request.command, request.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, kept, payload
        finally:
            upstream.close()


class SilentServer:
    """Accepts connections and never answers: every request ends in the client's read timeout."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="silent-server")
        host, port = self._socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.connections = 0

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._socket.accept()
            except (socket.timeout, OSError):
                continue
            self._held.append(conn)  # read nothing, say nothing
            self.connections += 1

    def __enter__(self) -> "SilentServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self._socket.close()
