"""A small Kubernetes API server emulator for the live connector's tests.

Plain HTTP on a free 127.0.0.1 port, one thread per connection, answering the read-only REST
paths the connector calls with the bodies under data/ (or any payload passed in), in pages:

    GET /version
    GET /api/v1/nodes | namespaces | pods
    GET /apis/apps/v1/deployments | statefulsets | daemonsets
    GET /apis/batch/v1/cronjobs

Lists honour `limit` and `continue` as the API server does: a page carries at most `limit`
items (and at most `max_page_size`, when set: servers may return fewer than asked), and
`metadata.continue` + `metadata.remainingItemCount` while more remain. Every request needs
`Authorization: Bearer <token>` (any case of the scheme) with one of `tokens`, else 401 with a Status body.

Faults, switchable while running (all thread-safe):
    throttle(n, status=429, retry_after="0", path=None)  the next n matching requests fail
    forbid(path)                                         403 Forbidden (RBAC) on that path
    hang(path=None)                                      never answer (until stop())
    expire_continue(n)                                   the next n continued lists get 410 Gone
`requests` records (path, query, authorized, status) of every request.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

DATA_DIR = Path(__file__).parent / "data"
LIST_KEYS = ("nodes", "namespaces", "deployments", "statefulsets", "daemonsets", "cronjobs", "pods")

PATHS: dict[str, str] = {
    "/version": "version",
    "/api/v1/nodes": "nodes",
    "/api/v1/namespaces": "namespaces",
    "/api/v1/pods": "pods",
    "/apis/apps/v1/deployments": "deployments",
    "/apis/apps/v1/statefulsets": "statefulsets",
    "/apis/apps/v1/daemonsets": "daemonsets",
    "/apis/batch/v1/cronjobs": "cronjobs",
}
RBAC = {  # path -> (resource, API group) for the 403 message
    "/api/v1/nodes": ("nodes", ""),
    "/api/v1/namespaces": ("namespaces", ""),
    "/api/v1/pods": ("pods", ""),
    "/apis/apps/v1/deployments": ("deployments", "apps"),
    "/apis/apps/v1/statefulsets": ("statefulsets", "apps"),
    "/apis/apps/v1/daemonsets": ("daemonsets", "apps"),
    "/apis/batch/v1/cronjobs": ("cronjobs", "batch"),
}


def load_data(data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """The stored response bodies: {"version": {...}, "nodes": NodeList, ...}."""
    return {key: json.loads((data_dir / f"{key}.json").read_text()) for key in ("version", *LIST_KEYS)}


def status_body(code: int, reason: str, message: str) -> dict:
    """A Kubernetes Status object, as the API server returns with every error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


@dataclass
class Request:
    path: str
    query: dict[str, str]
    authorized: bool
    status: int = 0


@dataclass
class _Throttle:
    remaining: int
    status: int
    retry_after: str | None
    path: str | None


class KubernetesEmulator:
    def __init__(self, data: Mapping[str, Any] | None = None, tokens: Iterable[str] = (),
                 max_page_size: int | None = None, resource_version: str = "48213377"):
        self.data = dict(data) if data is not None else load_data()
        self.tokens = set(tokens)
        self.max_page_size = max_page_size
        self.resource_version = resource_version
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._throttles: list[_Throttle] = []
        self._forbidden: set[str] = set()
        self._hang: set[str | None] = set()
        self._expire_continue = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "KubernetesEmulator":
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # hung handlers must not hold up stop()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="k8s-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hung handlers go
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "KubernetesEmulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults ------------------------------------------------------------------------------

    def throttle(self, count: int, status: int = 429, retry_after: str | None = "0", path: str | None = None) -> None:
        with self._lock:
            self._throttles.append(_Throttle(count, status, retry_after, path))

    def forbid(self, path: str) -> None:
        with self._lock:
            self._forbidden.add(path)

    def hang(self, path: str | None = None) -> None:
        """Never answer requests to `path` (every path when None)."""
        with self._lock:
            self._hang.add(path)

    def expire_continue(self, count: int = 1) -> None:
        with self._lock:
            self._expire_continue += count

    def reset_faults(self) -> None:
        with self._lock:
            self._throttles.clear()
            self._forbidden.clear()
            self._hang.clear()
            self._expire_continue = 0

    # -- observations ------------------------------------------------------------------------

    def calls(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    # -- request handling (called from handler threads) --------------------------------------

    def respond(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, dict, dict] | None:
        """(status, headers, body) for one GET, or None to hang."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else None  # the scheme is case-insensitive
        authorized = token is not None and token in self.tokens
        record = Request(path, query, authorized)
        with self._lock:
            self.requests.append(record)
        result = self._answer(path, query, authorized)
        record.status = result[0] if result else 0
        return result

    def _answer(self, path: str, query: dict[str, str], authorized: bool) -> tuple[int, dict, dict] | None:
        key = PATHS.get(path)
        if key is None:
            return 404, {}, status_body(404, "NotFound", "the server could not find the requested resource")
        if not authorized:
            return 401, {}, status_body(401, "Unauthorized", "Unauthorized")
        with self._lock:
            if path in self._hang or None in self._hang:
                hang = True
            else:
                hang = False
                for throttle in self._throttles:
                    if throttle.remaining > 0 and throttle.path in (None, path):
                        throttle.remaining -= 1
                        headers = {"Retry-After": throttle.retry_after} if throttle.retry_after is not None else {}
                        if throttle.status == 429:
                            body = status_body(429, "TooManyRequests", "Too many requests, please try again later.")
                        else:
                            body = status_body(throttle.status, "ServiceUnavailable",
                                               "the server is currently unable to handle the request")
                        return throttle.status, headers, body
                if path in self._forbidden:
                    resource, group = RBAC[path]
                    return 403, {}, status_body(
                        403, "Forbidden",
                        f'{resource}{"." + group if group else ""} is forbidden: User "system:serviceaccount:qlrf:reader" '
                        f'cannot list resource "{resource}" in API group "{group}" at the cluster scope',
                    )
                if query.get("continue") and self._expire_continue > 0:
                    self._expire_continue -= 1
                    return 410, {}, status_body(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter.",
                    )
        if hang:
            self._release.wait(timeout=60)
            return None
        if key == "version":
            return 200, {}, self.data["version"]
        return self._page(path, key, query)

    def _page(self, path: str, key: str, query: dict[str, str]) -> tuple[int, dict, dict]:
        full = self.data.get(key) or {"kind": "List", "apiVersion": "v1", "items": []}
        items = full.get("items") or []
        offset = 0
        if query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(query["continue"].encode()))
                if token["path"] != path:
                    raise ValueError("token of another list")
                offset = int(token["offset"])
            except (ValueError, KeyError, TypeError):
                return 400, {}, status_body(400, "BadRequest", "continue key is not valid")
        try:
            limit = int(query["limit"]) if query.get("limit") else None
        except ValueError:
            return 400, {}, status_body(400, "BadRequest", f"invalid limit: {query['limit']!r}")
        size = len(items) - offset
        if limit and limit > 0:
            size = min(size, limit)
        if self.max_page_size:
            size = min(size, self.max_page_size)
        page = items[offset:offset + size]
        metadata: dict[str, Any] = {"resourceVersion": self.resource_version}
        end = offset + len(page)
        if end < len(items):
            metadata["continue"] = base64.urlsafe_b64encode(
                json.dumps({"path": path, "offset": end, "rv": self.resource_version}).encode()
            ).decode()
            metadata["remainingItemCount"] = len(items) - end
        return 200, {}, {"kind": full.get("kind"), "apiVersion": full.get("apiVersion"), "metadata": metadata, "items": page}


class _Handler(BaseHTTPRequestHandler):
    emulator: KubernetesEmulator
    protocol_version = "HTTP/1.1"  # keep-alive, as the API server (urllib3 pools connections)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, delayed ACKs cost ~40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        result = self.emulator.respond(path, query, self.headers.get("Authorization"))
        if result is None:
            self.close_connection = True
            return
        status, headers, body = result
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def write_kubeconfig(path: Path, server: str, contexts: Mapping[str, str], current: str | None = None) -> Path:
    """A kubeconfig with one cluster (`server`) and a context + user per (name, token)."""
    import yaml

    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": f"{name}-user", "user": {"token": token}} for name, token in contexts.items()],
        "contexts": [{"name": name, "context": {"cluster": "emulator", "user": f"{name}-user"}} for name in contexts],
        "current-context": current or next(iter(contexts)),
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
