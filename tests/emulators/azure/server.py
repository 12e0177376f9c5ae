"""A local Azure emulator (Microsoft Entra ID token endpoint + Azure Resource Manager) for the
Azure live connector's tests.

`AzureEmulator` serves HTTPS on a free 127.0.0.1 port (http.server in daemon threads, TLS with a
certificate from `certs.make_certificates`, which clients must trust through the CA file):

  Entra ID (the authority is the emulator's base URL, tenant `TENANT`)
    GET  /<tenant>/v2.0/.well-known/openid-configuration     OIDC metadata MSAL reads
    GET  /common/discovery/instance                          instance discovery (when not disabled)
    POST /<tenant>/oauth2/v2.0/token                         client_credentials grant -> bearer token
  Azure Resource Manager (every request needs `Authorization: Bearer <issued token>`)
    GET /subscriptions/<sub>                                                     subscriptions get
    GET /subscriptions/<sub>/providers/Microsoft.Compute/virtualMachines         (statusOnly=true adds instanceView)
    GET /subscriptions/<sub>/providers/Microsoft.Compute/galleries
    GET /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/galleries/<g>/images
    GET .../galleries/<g>/images/<definition>/versions
    GET /subscriptions/<sub>/providers/Microsoft.Compute/images
    GET /subscriptions/<sub>/providers/Microsoft.Compute/disks
    GET /subscriptions/<sub>/providers/Microsoft.Network/networkInterfaces
    GET /subscriptions/<sub>/providers/Microsoft.Network/publicIPAddresses

ARM behaviour copied from the real service: paths compare case-insensitively, the api-version
must be one the resource provider supports (400 NoRegisteredProviderFound otherwise), lists
answer `{"value": [...], "nextLink": ...}` pages of `page_size` with a `$skiptoken`, errors are
`{"error": {"code", "message"}}` (401 InvalidAuthenticationToken, 403 AuthorizationFailed,
404 SubscriptionNotFound / InvalidResourceType, 429 TooManyRequests with Retry-After).
The token endpoint answers 401 invalid_client (AADSTS7000215) for a wrong secret and checks the
requested scope is `<base_url>/.default`.

Resources come from data/*.json (see make_data.py). Service principals are registered with
`add_principal(client_id, secret, reader=True)`; one without the Reader role gets 403 on ARM.

Switchable behaviours (cleared by `reset()`):
  page_size                    items per list page (default 50)
  throttle(n, path, retry_after)  the first n ARM requests whose path contains `path` answer 429
  hang(path)                   matching requests are never answered (until reset() / stop())
Every request is logged in `requests` (method, path, query, status, client_id); issued tokens
are kept in `tokens` so tests can check they never leak.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.emulators.azure.certs import TestCertificates, make_certificates
from tests.emulators.azure.estate import SUBSCRIPTION, TENANT

DATA = Path(__file__).resolve().parent / "data"

# api-versions each resource provider accepts (the SDK's current ones among them).
API_VERSIONS = {
    "compute": {"2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2026-04-01"},
    "gallery": {"2023-07-03", "2024-03-03", "2025-03-03", "2026-03-03"},
    "disk": {"2023-10-02", "2024-03-02", "2025-01-02", "2026-03-02"},
    "network": {"2023-09-01", "2024-01-01", "2024-05-01", "2024-07-01", "2025-01-01"},
    "resources": {"2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01"},
}

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_GALLERY = _SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.compute/galleries/(?P<gallery>[^/]+)"
# (pattern on the lower-cased path, collection, provider for api-version, RBAC action)
_ROUTES = (
    (re.compile(_SUB + r"$"), "subscription", "resources", "Microsoft.Resources/subscriptions/read"),
    (re.compile(_SUB + r"/providers/microsoft\.compute/virtualmachines$"), "virtualMachines", "compute",
     "Microsoft.Compute/virtualMachines/read"),
    (re.compile(_SUB + r"/providers/microsoft\.compute/galleries$"), "galleries", "gallery",
     "Microsoft.Compute/galleries/read"),
    (re.compile(_GALLERY + r"/images$"), "galleryImages", "gallery", "Microsoft.Compute/galleries/images/read"),
    (re.compile(_GALLERY + r"/images/(?P<image>[^/]+)/versions$"), "galleryImageVersions", "gallery",
     "Microsoft.Compute/galleries/images/versions/read"),
    (re.compile(_SUB + r"/providers/microsoft\.compute/images$"), "images", "compute", "Microsoft.Compute/images/read"),
    (re.compile(_SUB + r"/providers/microsoft\.compute/disks$"), "disks", "disk", "Microsoft.Compute/disks/read"),
    (re.compile(_SUB + r"/providers/microsoft\.network/networkinterfaces$"), "networkInterfaces", "network",
     "Microsoft.Network/networkInterfaces/read"),
    (re.compile(_SUB + r"/providers/microsoft\.network/publicipaddresses$"), "publicIPAddresses", "network",
     "Microsoft.Network/publicIPAddresses/read"),
)
_CHILD_COLLECTIONS = {"galleryImages", "galleryImageVersions"}  # filtered by their parent's id


@dataclass
class Principal:
    client_id: str
    secret: str
    reader: bool = True


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int | None = None
    client_id: str | None = None


@dataclass
class _Throttle:
    remaining: int
    path: str
    retry_after: str


@dataclass
class _Behaviour:
    page_size: int = 50
    throttles: list[_Throttle] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)


def load_data(directory: Path = DATA) -> dict[str, Any]:
    data = {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}
    return data


def arm_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class AzureEmulator:
    def __init__(self, cert_dir: Path, data_dir: Path = DATA):
        self.tenant = TENANT
        self.subscription = SUBSCRIPTION
        self.data = load_data(data_dir)
        self.certs: TestCertificates = make_certificates(cert_dir)
        self.principals: dict[str, Principal] = {}
        self.tokens: dict[str, str] = {}  # token -> client id
        self.requests: list[LoggedRequest] = []
        self.behaviour = _Behaviour()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> "AzureEmulator":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certs.cert_file, self.certs.key_file)
        self._server = _TLSServer(("127.0.0.1", 0), _Handler, context, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="azure-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "AzureEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "emulator not started"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    # configuration

    def add_principal(self, client_id: str, secret: str, reader: bool = True) -> Principal:
        principal = Principal(client_id, secret, reader)
        self.principals[client_id] = principal
        return principal

    def reset(self) -> None:
        """Normal behaviour again; the request log emptied; hung requests let go."""
        with self._lock:
            self.behaviour = _Behaviour()
            self.requests = []
            self._released.set()
            self._released = threading.Event()

    def throttle(self, n: int, path: str = "", retry_after: str = "0") -> None:
        with self._lock:
            self.behaviour.throttles.append(_Throttle(n, path.lower(), retry_after))

    def hang(self, path: str) -> None:
        with self._lock:
            self.behaviour.hangs.append(path.lower())

    # what tests read

    def arm_requests(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path.lower().startswith("/subscriptions/")]

    def token_requests(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path.endswith("/oauth2/v2.0/token")]

    # request handling (called from the handler threads)

    def _log(self, method: str, path: str, query: dict[str, str]) -> LoggedRequest:
        entry = LoggedRequest(method, path, query)
        with self._lock:
            self.requests.append(entry)
        return entry

    def _should_hang(self, path: str) -> threading.Event | None:
        with self._lock:
            if any(pattern in path.lower() for pattern in self.behaviour.hangs):
                return self._released
        return None

    def _take_throttle(self, path: str) -> str | None:
        with self._lock:
            for throttle in self.behaviour.throttles:
                if throttle.remaining > 0 and throttle.path in path.lower():
                    throttle.remaining -= 1
                    return throttle.retry_after
        return None

    def openid_configuration(self, tenant: str) -> tuple[int, dict]:
        base = f"{self.base_url}/{tenant}"
        return 200, {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{self.base_url}/{tenant}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "tenant_region_scope": "EU",
        }

    def instance_discovery(self) -> tuple[int, dict]:
        return 200, {
            "tenant_discovery_endpoint": f"{self.base_url}/{self.tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [],
        }

    def token(self, tenant: str, form: dict[str, str], entry: LoggedRequest) -> tuple[int, dict]:
        def aad_error(status: int, error: str, code: int, text: str) -> tuple[int, dict]:
            trace = secrets.token_hex(8)
            return status, {
                "error": error,
                "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {trace} "
                f"Timestamp: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}",
                "error_codes": [code],
                "trace_id": trace,
            }

        if tenant.lower() != self.tenant:
            return aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        entry.client_id = client_id
        principal = self.principals.get(client_id)
        if principal is None:
            return aad_error(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if not secrets.compare_digest(form.get("client_secret", ""), principal.secret):
            return aad_error(
                401, "invalid_client", 7000215,
                f"Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        expected_scope = f"{self.base_url}/.default"
        if form.get("scope", "").split() != [expected_scope]:
            return aad_error(
                400, "invalid_scope", 1002012, f"The provided value for scope {form.get('scope')} is not valid."
            )
        now = int(time.time())
        claims = {"aud": self.base_url, "iss": f"{self.base_url}/{self.tenant}/v2.0", "iat": now, "exp": now + 3600,
                  "tid": self.tenant, "appid": client_id, "oid": secrets.token_hex(16)}
        token = ".".join(
            (_b64(json.dumps({"typ": "JWT", "alg": "RS256"}).encode()), _b64(json.dumps(claims).encode()),
             _b64(secrets.token_bytes(32)))
        )
        with self._lock:
            self.tokens[token] = client_id
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def arm(self, path: str, query: dict[str, str], authorization: str | None, entry: LoggedRequest
            ) -> tuple[int, dict, dict[str, str]]:
        """(status, body, extra headers) of one ARM GET."""
        match = re.fullmatch(r"Bearer (\S+)", authorization or "")
        client_id = self.tokens.get(match.group(1)) if match else None
        if client_id is None:
            missing = "Authentication failed. The 'Authorization' header is missing."
            return 401, arm_error(
                "InvalidAuthenticationToken" if match else "AuthenticationFailed",
                "The access token is invalid." if match else missing,
            ), {"WWW-Authenticate": f'Bearer authorization_uri="{self.base_url}/{self.tenant}", error="invalid_token"'}
        entry.client_id = client_id
        lowered = path.lower().rstrip("/")
        for pattern, collection, provider, action in _ROUTES:
            found = pattern.fullmatch(lowered)
            if found:
                break
        else:
            return 404, arm_error("InvalidResourceType", f"The resource type could not be found for path '{path}'."), {}
        if found.group("sub") != self.subscription:
            message = f"The subscription '{found.group('sub')}' could not be found."
            return 404, arm_error("SubscriptionNotFound", message), {}
        version = query.get("api-version")
        if version is None:
            message = "The api-version query parameter (?api-version=) is required for all requests."
            return 400, arm_error("MissingApiVersionParameter", message), {}
        if version not in API_VERSIONS[provider]:
            return 400, arm_error(
                "NoRegisteredProviderFound",
                f"No registered resource provider found for api version '{version}'. The supported api-versions "
                f"are '{', '.join(sorted(API_VERSIONS[provider]))}'.",
            ), {}
        if not self.principals[client_id].reader:
            return 403, arm_error(
                "AuthorizationFailed",
                f"The client '{client_id}' with object id '{client_id}' does not have authorization to perform "
                f"action '{action}' over scope '/subscriptions/{self.subscription}' or the scope is invalid. If "
                "access was recently granted, please refresh your credentials.",
            ), {}
        retry_after = self._take_throttle(path)
        if retry_after is not None:
            return 429, arm_error(
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type - Read_30Min. "
                "For more information, see - https://aka.ms/srpthrottlinglimits",
            ), {"Retry-After": retry_after, "x-ms-ratelimit-remaining-subscription-reads": "0"}
        if collection == "subscription":
            return 200, self.data["subscription"], {}
        items = self.data[collection]
        if collection in _CHILD_COLLECTIONS:
            parent = lowered
            items = [item for item in items if item["id"].lower().rsplit("/", 1)[0] == parent]
        if collection == "virtualMachines" and query.get("statusOnly", "").lower() != "true":
            items = [_without_instance_view(vm) for vm in items]
        return 200, self._page(path, query, items), {}

    def _page(self, path: str, query: dict[str, str], items: list[dict]) -> dict:
        token = query.get("$skiptoken")
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        size = self.behaviour.page_size
        body: dict[str, Any] = {"value": items[start : start + size]}
        if start + size < len(items):
            next_query = {k: v for k, v in query.items() if k != "$skiptoken"}
            next_query["$skiptoken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            body["nextLink"] = f"{self.base_url}{path}?{urlencode(next_query)}"
        return body


def _without_instance_view(vm: dict) -> dict:
    vm = copy.copy(vm)
    vm["properties"] = {k: v for k, v in vm["properties"].items() if k != "instanceView"}
    return vm


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, context: ssl.SSLContext, emulator: AzureEmulator):
        super().__init__(address, handler)
        self.ssl_context = context
        self.emulator = emulator

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread, not in the accept loop.
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qlrf-azure-emulator"
    timeout = 15  # idle keep-alive connections

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    @property
    def emulator(self) -> AzureEmulator:
        return self.server.emulator  # type: ignore[attr-defined]

    def _query(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        return parts.path, {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", secrets.token_hex(16))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _hang(self, path: str) -> bool:
        released = self.emulator._should_hang(path)
        if released is None:
            return False
        released.wait(60)
        self.close_connection = True
        return True

    def do_GET(self) -> None:  # noqa: N802
        path, query = self._query()
        entry = self.emulator._log("GET", path, query)
        if self._hang(path):
            return
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            status, body = self.emulator.openid_configuration(path.strip("/").split("/")[0])
            headers: dict[str, str] = {}
        elif path == "/common/discovery/instance":
            status, body = self.emulator.instance_discovery()
            headers = {}
        else:
            status, body, headers = self.emulator.arm(path, query, self.headers.get("Authorization"), entry)
        entry.status = status
        self._send(status, body, headers)

    def do_POST(self) -> None:  # noqa: N802
        path, query = self._query()
        entry = self.emulator._log("POST", path, query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self._hang(path):
            return
        match = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", path)
        if match:
            form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            status, body = self.emulator.token(match.group(1), form, entry)
        else:
            status, body = 404, arm_error("NotFound", f"No route for POST {path}")
        entry.status = status
        self._send(status, body)
