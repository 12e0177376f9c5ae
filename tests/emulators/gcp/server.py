"""A local Compute Engine REST emulator for the GCP live connector's tests.

`ComputeEmulator` serves, on a free 127.0.0.1 port (http.server in a daemon thread), the REST
paths google-cloud-compute's REST transport calls:

  GET /compute/v1/projects/{project}                       projects.get
  GET /compute/v1/projects/{project}/aggregated/instances  instances.aggregatedList
  GET /compute/v1/projects/{project}/aggregated/disks      disks.aggregatedList
  GET /compute/v1/projects/{project}/global/images         images.list
  GET /compute/v1/projects/{project}/global/networks       networks.list

with `maxResults` (0..500, default 500) / `pageToken` paging and `nextPageToken` in responses, and
errors in the Google JSON error shape (code, message, errors[].reason, status, ErrorInfo details),
which google-api-core turns into its typed exceptions.

Each project's data is a dict of REST responses: {"project": {...}, "instances": aggregatedList,
"disks": aggregatedList, "images": list, "networks": list} (see `estate.py`).

Switchable behaviours, reset by `reset()`:
  throttle(n, status, path)   the first n matching requests answer 429 / 503 (then normal)
  deny(project, status)       every request for the project answers 401 / 403
  grant(project, email)       the project then requires a bearer token: a JWT signed by a key
                              registered with `register_key` for a granted principal (401 for
                              none / bad signature / unknown key, 403 for another principal)
  hang(path)                  matching requests are never answered (until reset / stop)
  unreachable(project, scope) aggregatedList reports the scope UNREACHABLE instead of its items
  page_size_cap               the server's own page size limit (forces pagination)
Every request is logged in `requests` (method, path, query, principal).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_PREFIX = "/compute/v1/projects/"
MAX_RESULTS = 500

_ROUTES = (
    (re.compile(r"^/compute/v1/projects/(?P<project>[^/]+)/aggregated/(?P<kind>instances|disks)$"), "aggregated"),
    (re.compile(r"^/compute/v1/projects/(?P<project>[^/]+)/global/(?P<kind>images|networks)$"), "list"),
    (re.compile(r"^/compute/v1/projects/(?P<project>[^/]+)$"), "project"),
)
_PERMISSIONS = {
    "instances": "compute.instances.list",
    "disks": "compute.disks.list",
    "images": "compute.images.list",
    "networks": "compute.networks.list",
    "project": "compute.projects.get",
}
_STATUS = {
    400: ("INVALID_ARGUMENT", "invalid"),
    401: ("UNAUTHENTICATED", "authError"),
    403: ("PERMISSION_DENIED", "forbidden"),
    404: ("NOT_FOUND", "notFound"),
    429: ("RESOURCE_EXHAUSTED", "rateLimitExceeded"),
    500: ("INTERNAL", "backendError"),
    503: ("UNAVAILABLE", "backendError"),
}


def google_error(code: int, message: str, reason: str | None = None, metadata: dict | None = None) -> dict:
    """An error body as Google APIs write it."""
    status, legacy = _STATUS.get(code, ("UNKNOWN", "unknown"))
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": legacy}],
        "status": status,
    }
    if reason:
        body["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": metadata or {"service": "compute.googleapis.com"},
            }
        ]
    return {"error": body}


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    principal: str | None  # the JWT issuer when a valid bearer token was sent
    token: str | None = None  # the bearer token itself (tests check it never leaks)
    status: int = 0


@dataclass
class _Throttle:
    remaining: int
    status: int
    path: str


@dataclass
class _State:
    throttles: list[_Throttle] = field(default_factory=list)
    denied: dict[str, int] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)
    hangs: list[str] = field(default_factory=list)
    unreachable: dict[str, set[str]] = field(default_factory=dict)


class _Reply(Exception):
    def __init__(self, code: int, body: dict, headers: dict[str, str] | None = None):
        super().__init__(code)
        self.code = code
        self.body = body
        self.headers = headers or {}


def _page_token(path: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{path}|{offset}".encode()).decode().rstrip("=")


def _offset(path: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        token_path, offset = raw.rsplit("|", 1)
        if token_path != path:
            raise ValueError(token_path)
        return int(offset)
    except ValueError:
        raise _Reply(400, google_error(400, f"Invalid value for field 'pageToken': '{token}'.")) from None


class ComputeEmulator:
    def __init__(self, projects: dict[str, dict[str, Any]] | None = None, page_size_cap: int | None = None):
        self.projects: dict[str, dict[str, Any]] = dict(projects or {})
        self.page_size_cap = page_size_cap
        self.requests: list[LoggedRequest] = []
        self._keys: dict[str, tuple[str, str]] = {}  # key id -> (email, public key PEM)
        self._state = _State()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ComputeEmulator":
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                emulator._handle(self)

            def do_POST(self) -> None:  # noqa: N802
                emulator._handle(self)

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="gcp-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ComputeEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Normal behaviour again; hung requests are released; the log is cleared."""
        with self._lock:
            self._state = _State()
            self.requests.clear()
            self._release.set()
            self._release = threading.Event()

    # -- behaviours -------------------------------------------------------------------------

    def throttle(self, count: int, status: int = 429, path: str = "") -> None:
        with self._lock:
            self._state.throttles.append(_Throttle(count, status, path))

    def deny(self, project: str, status: int = 403) -> None:
        with self._lock:
            self._state.denied[project] = status

    def register_key(self, email: str, key_id: str, public_key_pem: str) -> None:
        with self._lock:
            self._keys[key_id] = (email, public_key_pem)

    def revoke_key(self, key_id: str) -> None:
        with self._lock:
            self._keys.pop(key_id, None)

    def grant(self, project: str, email: str) -> None:
        with self._lock:
            self._state.grants.setdefault(project, set()).add(email)

    def hang(self, path: str = "") -> None:
        with self._lock:
            self._state.hangs.append(path)

    def unreachable(self, project: str, scope: str) -> None:
        with self._lock:
            self._state.unreachable.setdefault(project, set()).add(scope)

    def calls(self, path_part: str = "", status: int | None = None) -> int:
        with self._lock:
            return sum(
                1 for r in self.requests if path_part in r.path and (status is None or r.status == status)
            )

    # -- serving ----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        principal, token_error = self._principal(handler.headers.get("Authorization"))
        authorization = handler.headers.get("Authorization") or ""
        token = authorization.split(None, 1)[1] if authorization.lower().startswith("bearer ") else None
        logged = LoggedRequest(handler.command, parts.path, query, principal, token)
        with self._lock:
            self.requests.append(logged)
            state = self._state
            release = self._release
            hang = any(p in parts.path for p in state.hangs)
            throttle = next((t for t in state.throttles if t.remaining > 0 and t.path in parts.path), None)
            if throttle is not None and not hang:
                throttle.remaining -= 1
        if hang:
            release.wait()  # never answered until reset() / stop(); the client times out
            logged.status = -1
            return
        try:
            if throttle is not None:
                self._throttled(throttle.status)
            code, body = 200, self._route(handler.command, parts.path, query, principal, token_error)
            headers: dict[str, str] = {}
        except _Reply as reply:
            code, body, headers = reply.code, reply.body, reply.headers
        logged.status = code
        data = json.dumps(body).encode()
        try:
            handler.send_response(code)
            handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _throttled(status: int) -> None:
        if status == 429:
            raise _Reply(
                429,
                google_error(
                    429,
                    "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' "
                    "of service 'compute.googleapis.com'.",
                    "RATE_LIMIT_EXCEEDED",
                ),
                {"Retry-After": "1"},
            )
        raise _Reply(status, google_error(status, "The service is currently unavailable.", None))

    def _principal(self, authorization: str | None) -> tuple[str | None, str | None]:
        """(issuer of a valid JWT bearer token, why the token is refused)."""
        if not authorization:
            return None, "missing"
        if not authorization.lower().startswith("bearer "):
            return None, "not a bearer token"
        token = authorization.split(None, 1)[1]
        from google.auth import jwt

        try:
            header = jwt.decode_header(token)
            key = self._keys.get(header.get("kid", ""))
            if key is None:
                return None, "unknown key"
            claims = jwt.decode(token, certs={header["kid"]: key[1]}, verify=True)
        except (ValueError, KeyError):
            return None, "invalid token"
        issuer = claims.get("iss")
        if issuer != key[0]:
            return None, "token issuer does not own the key"
        return issuer, None

    def _route(self, method: str, path: str, query: dict[str, str], principal: str | None,
               token_error: str | None) -> dict:
        if method != "GET":
            raise _Reply(404, google_error(404, f"No handler for {method} {path}"))
        for pattern, route in _ROUTES:
            match = pattern.match(path)
            if match:
                break
        else:
            raise _Reply(404, google_error(404, f"The requested URL {path} was not found on this server."))
        project = match["project"]
        kind = match.groupdict().get("kind") or "project"
        self._authorize(project, kind, principal, token_error)
        data = self.projects.get(project)
        if data is None:
            raise _Reply(404, google_error(404, f"The resource 'projects/{project}' was not found", "notFound"))
        if route == "project":
            return data["project"]
        size = self._page_size(query)
        if route == "aggregated":
            return self._aggregated_page(path, project, kind, data[kind], size, query.get("pageToken"))
        return self._list_page(path, data[kind], size, query.get("pageToken"))

    def _authorize(self, project: str, kind: str, principal: str | None, token_error: str | None) -> None:
        with self._lock:
            denied = self._state.denied.get(project)
            granted = self._state.grants.get(project)
        permission = _PERMISSIONS[kind]
        if denied == 401 or (granted is not None and principal is None):
            raise _Reply(
                401,
                google_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                    "cookie or other valid authentication credential.",
                    "ACCESS_TOKEN_TYPE_UNSUPPORTED" if token_error != "missing" else "CREDENTIALS_MISSING",
                ),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        if denied == 403 or (granted is not None and principal not in granted):
            raise _Reply(
                403,
                google_error(
                    403,
                    f"Required '{permission}' permission for 'projects/{project}'",
                    "IAM_PERMISSION_DENIED",
                    {"permission": permission, "resource": f"projects/{project}"},
                ),
            )

    def _page_size(self, query: dict[str, str]) -> int:
        raw = query.get("maxResults", str(MAX_RESULTS))
        try:
            size = int(raw)
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_RESULTS:
            raise _Reply(
                400,
                google_error(400, f"Invalid value for field 'maxResults': '{raw}'. Must be in the range [0, 500]."),
            )
        size = size or MAX_RESULTS
        return min(size, self.page_size_cap) if self.page_size_cap else size

    def _list_page(self, path: str, response: dict, size: int, token: str | None) -> dict:
        items = response.get("items") or []
        start = _offset(path, token)
        page = {k: v for k, v in response.items() if k not in ("items", "nextPageToken")}
        page["items"] = items[start:start + size]
        page["selfLink"] = f"https://www.googleapis.com{path}"
        if start + size < len(items):
            page["nextPageToken"] = _page_token(path, start + size)
        return page

    def _aggregated_page(self, path: str, project: str, kind: str, response: dict, size: int,
                         token: str | None) -> dict:
        """Resources are paged in scope order; scopes without resources (and unreachable ones)
        answer with a warning on the first page, as the API does."""
        with self._lock:
            unreachable = set(self._state.unreachable.get(project, ()))
        flat: list[tuple[str, dict]] = []
        warnings: dict[str, dict] = {}
        for scope, scoped in (response.get("items") or {}).items():
            if scope in unreachable:
                warnings[scope] = {
                    "warning": {
                        "code": "UNREACHABLE",
                        "message": f"Scope '{scope}' is unreachable.",
                        "data": [{"key": "scope", "value": scope}],
                    }
                }
            elif scoped.get(kind):
                flat.extend((scope, resource) for resource in scoped[kind])
            else:
                warnings[scope] = copy.deepcopy(scoped)
        start = _offset(path, token)
        items: dict[str, dict] = dict(warnings) if start == 0 else {}
        for scope, resource in flat[start:start + size]:
            items.setdefault(scope, {kind: []})[kind].append(resource)
        page = {k: v for k, v in response.items() if k not in ("items", "nextPageToken")}
        page["items"] = items
        page["selfLink"] = f"https://www.googleapis.com{path}"
        if start + size < len(flat):
            page["nextPageToken"] = _page_token(path, start + size)
        return page
