"""Azure live discovery: one subscription (`site.account`) through the unmodified Azure SDK
clients, assembled into the ARM list responses `connectors/azure.normalize` reads.

Calls (one paged request per page, never one per VM):

    virtual_machines.list_all(status_only="true")       Microsoft.Compute/virtualMachines/list
        (statusOnly=true adds properties.instanceView.statuses, i.e. the power state, to every
        VM of the page; `$expand=instanceView` is only allowed per resource group / with $filter)
    galleries.list                                      Microsoft.Compute/galleries/list
      gallery_images.list_by_gallery                    Microsoft.Compute/galleries/images/list
        gallery_image_versions.list_by_gallery_image    Microsoft.Compute/galleries/images/versions/list
    images.list                                         Microsoft.Compute/images/list
    disks.list                                          Microsoft.Compute/disks/list
    GET .../providers/Microsoft.Network/networkInterfaces   Microsoft.Network/networkInterfaces/list
    GET .../providers/Microsoft.Network/publicIPAddresses   Microsoft.Network/publicIPAddresses/list

The two Microsoft.Network collections go through the compute client's own pipeline
(`send_request`: same credential, retry, timeout and counting policies), so azure-mgmt-network
is not needed. The independent collections are fetched concurrently (settings.max_concurrency,
default 4); the VM nextLink chain is necessarily sequential.

Models become REST JSON: `as_dict()` of the azure-mgmt-compute >= 35 models (typespec
`Model`, a mapping over the wire JSON) already has the REST camelCase keys and nested
`properties`, unknown fields included; older msrest models give it with
`serialize(keep_readonly=True)`.

Site fields used: account (subscription id), endpoint_url (ARM base URL for sovereign clouds or
tests; the token scope becomes <endpoint>/.default), verify_ssl, credentials.tenant_id_env /
client_id_env / client_secret_env (a service principal; without them DefaultAzureCredential),
settings: authority (Entra ID authority host, e.g. login.microsoftonline.us; instance discovery
is then disabled unless settings.disable_instance_discovery is false), ca_bundle (CA file to
trust), credential_scope, timeout_seconds, retry_total, retry_backoff_factor, max_concurrency,
network_api_version, include_disks.
"""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext

READ_PERMISSIONS: dict[str, list[str]] = {
    "azure_role": ["Reader"],
    "actions": [
        "Microsoft.Compute/virtualMachines/read",
        "Microsoft.Compute/virtualMachines/instanceView/read",
        "Microsoft.Compute/galleries/read",
        "Microsoft.Compute/galleries/images/read",
        "Microsoft.Compute/galleries/images/versions/read",
        "Microsoft.Compute/images/read",
        "Microsoft.Compute/disks/read",
        "Microsoft.Network/networkInterfaces/read",
        "Microsoft.Network/publicIPAddresses/read",
    ],
}

NETWORK_API_VERSION = "2024-05-01"
SUBSCRIPTIONS_API_VERSION = "2022-12-01"
PUBLIC_ARM = "https://management.azure.com"

TOKEN_CALL = "oauth2/token"
VMS = "Microsoft.Compute/virtualMachines/list"
GALLERIES = "Microsoft.Compute/galleries/list"
GALLERY_IMAGES = "Microsoft.Compute/galleries/images/list"
GALLERY_VERSIONS = "Microsoft.Compute/galleries/images/versions/list"
IMAGES = "Microsoft.Compute/images/list"
DISKS = "Microsoft.Compute/disks/list"
NICS = "Microsoft.Network/networkInterfaces/list"
PUBLIC_IPS = "Microsoft.Network/publicIPAddresses/list"
SUBSCRIPTION_READ = "Microsoft.Resources/subscriptions/read"

_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_BEARER = re.compile(r"(?i)bearer\s+[^\s,;\"']+")


# -- naming and counting requests ------------------------------------------------------------


def operation_name(method: str, path: str) -> str:
    """The ARM operation a request performs, from its URL path:
    '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images' (GET)
    -> 'Microsoft.Compute/galleries/images/list'."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    lowered = [s.lower() for s in segments]
    if "providers" in lowered:
        start = len(lowered) - 1 - lowered[::-1].index("providers")
        namespace, rest = segments[start + 1], segments[start + 2 :]
    else:
        namespace, rest = "Microsoft.Resources", segments
    types = rest[0::2]
    if method.upper() != "GET":
        return f"{namespace}/{'/'.join(types)}/{method.lower()}"
    verb = "list" if len(rest) % 2 else "read"
    return f"{namespace}/{'/'.join(types)}/{verb}"


class _Counts:
    """ctx.count from the fetch threads (FetchContext's Counter is not thread-safe)."""

    def __init__(self, ctx: FetchContext):
        self._ctx = ctx
        self._lock = threading.Lock()

    def __call__(self, call: str) -> None:
        with self._lock:
            self._ctx.count(call)


def _policies(counts: _Counts) -> tuple[Any, Any]:
    from urllib.parse import urlsplit

    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class PageCounter(SansIOHTTPPolicy):
        """Per call (before the retry policy): one count per page request."""

        def on_request(self, request):
            http = request.http_request
            counts(operation_name(http.method, urlsplit(http.url).path))

    class RetryCounter(SansIOHTTPPolicy):
        """Per retry (after the retry policy): counts the repeated attempts, e.g. after a 429."""

        def on_request(self, request):
            attempt = request.context.get("qlrf_attempt", 0) + 1
            request.context["qlrf_attempt"] = attempt
            if attempt > 1:
                http = request.http_request
                counts(f"{operation_name(http.method, urlsplit(http.url).path)} (retry)")

    return PageCounter(), RetryCounter()


# -- clients ---------------------------------------------------------------------------------


class _Session:
    """The credential and the compute client for one site, and the error translation."""

    def __init__(self, ctx: FetchContext):
        self.ctx = ctx
        site = ctx.site
        settings = site.settings
        if not site.account:
            raise ctx.fail("configuration", "account (the Azure subscription id) is not set")
        self.subscription = site.account
        self.endpoint = (site.endpoint_url or PUBLIC_ARM).rstrip("/")
        self.scope = settings.get("credential_scope") or f"{self.endpoint}/.default"
        self.authority = str(settings.get("authority") or "login.microsoftonline.com")
        self.retry_total = int(settings.get("retry_total", 3))
        self.retry_read = int(settings.get("retry_read", 1))
        verify: bool | str = bool(site.verify_ssl)
        if verify and settings.get("ca_bundle"):
            verify = str(settings["ca_bundle"])
        self.transport_kwargs: dict[str, Any] = {
            "connection_timeout": ctx.timeout_s,
            "read_timeout": ctx.timeout_s,
            "connection_verify": verify,
            "retry_total": self.retry_total,
            "retry_connect": min(self.retry_total, 2),
            "retry_read": min(self.retry_total, self.retry_read),
            "retry_status": self.retry_total,
            "retry_backoff_factor": float(settings.get("retry_backoff_factor", 0.8)),
            "retry_backoff_max": float(settings.get("retry_backoff_max", 60)),
            "user_agent": "qlrf-pipelines",
        }
        self.secrets: list[str] = []  # values scrubbed from every message
        self.client = None
        self.credential = None
        self.credential = self.guard("credentials", self._credential)

    # credentials

    def _credential(self):
        ctx, creds, settings = self.ctx, self.ctx.site.credentials, self.ctx.site.settings
        authority = settings.get("authority")
        kwargs = dict(self.transport_kwargs)
        if authority:
            kwargs["authority"] = authority
            kwargs["disable_instance_discovery"] = bool(settings.get("disable_instance_discovery", True))
        fields = ("tenant_id_env", "client_id_env", "client_secret_env")
        if any(getattr(creds, f) for f in fields):
            missing = [getattr(creds, f) or f for f in fields if not ctx.secret(f)]
            if missing:
                raise ctx.fail(
                    "credentials", f"environment variable(s) {', '.join(missing)} not set (service principal)"
                )
            secret = ctx.secret("client_secret_env")
            self.secrets.append(secret)
            from azure.identity import ClientSecretCredential

            return ClientSecretCredential(ctx.secret("tenant_id_env"), ctx.secret("client_id_env"), secret, **kwargs)
        from azure.identity import DefaultAzureCredential

        # EnvironmentCredential's secret is scrubbed from messages too.
        self.secrets.append(os.environ.get("AZURE_CLIENT_SECRET", ""))
        return DefaultAzureCredential(**kwargs)

    def authenticate(self) -> None:
        """Get the ARM token up front, so a bad credential fails once, as the token call."""
        token = self.guard(TOKEN_CALL, lambda: self.credential.get_token(self.scope))
        self.secrets.append(token.token)

    def compute(self):
        if self.client is None:
            from azure.mgmt.compute import ComputeManagementClient

            page_counter, retry_counter = _policies(_Counts(self.ctx))
            kwargs = dict(self.transport_kwargs)
            if self.endpoint != PUBLIC_ARM or self.ctx.site.settings.get("credential_scope"):
                kwargs["credential_scopes"] = [self.scope]
            self.client = ComputeManagementClient(
                self.credential,
                self.subscription,
                base_url=self.endpoint,
                per_call_policies=[page_counter],
                per_retry_policies=[retry_counter],
                **kwargs,
            )
        return self.client

    def close(self) -> None:
        for thing in (self.client, self.credential):
            try:
                if thing is not None:
                    thing.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # errors

    def scrub(self, text: str, limit: int = 400) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        text = _BEARER.sub("Bearer ***", _JWT.sub("***", text))
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def guard(self, call: str, action: Callable[[], Any]) -> Any:
        """Run one SDK call; every failure becomes ConnectorError(site, call, message)."""
        try:
            return action()
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated below, nothing secret kept
            error = self.translate(call, exc)
        raise error from None

    def translate(self, call: str, exc: Exception) -> ConnectorError:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceRequestTimeoutError,
            ServiceResponseError,
            ServiceResponseTimeoutError,
        )

        fail = self.ctx.fail
        creds = self.ctx.site.credentials
        who = (
            f"the service principal named by {creds.tenant_id_env}/{creds.client_id_env}/{creds.client_secret_env}"
            if creds.client_secret_env
            else "DefaultAzureCredential"
        )
        where = f"the token endpoint of {self.authority}" if call == TOKEN_CALL else self.endpoint
        chain = _chain(exc)
        response = getattr(exc, "response", None)
        status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
        if any(
            isinstance(e, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)) or "Timeout" in type(e).__name__
            for e in chain
        ):
            attempts = 1 + min(self.retry_total, self.retry_read)
            return fail(call, f"timed out after {self.ctx.timeout_s:g}s waiting for {where} ({attempts} attempts)")
        if isinstance(exc, HttpResponseError) and status is not None:
            code, detail = _arm_error(exc)
            head = f"HTTP {status}" + (f" {code}" if code else "")
            if status == 429:
                retries = f"{self.retry_total} retr{'y' if self.retry_total == 1 else 'ies'}"
                return fail(
                    call,
                    f"{head}: throttled by Azure Resource Manager, still after {retries} honouring Retry-After "
                    f"({self.scrub(detail, 200)})",
                )
            if status == 403:
                action = call.rpartition("/")[0] + "/read"
                return fail(
                    call,
                    f"{head}: {self.scrub(detail)} (grant {who} the Reader role, or at least {action}, "
                    f"on subscription {self.subscription})",
                )
            if status == 401:
                return fail(call, f"{head}: {self.scrub(detail)} (the token of {who} was refused by {self.endpoint})")
            if status == 404:
                return fail(call, f"{head}: {self.scrub(detail)} (is {self.subscription} the right subscription?)")
            return fail(call, f"{head}: {self.scrub(detail)}")
        unreachable = next((e for e in chain if isinstance(e, (ServiceRequestError, ServiceResponseError))), None)
        if unreachable is not None:
            return fail(call, f"cannot reach {where}: {self.scrub(_message(unreachable), 300)}")
        if isinstance(exc, ClientAuthenticationError):
            return fail(call, f"authentication failed for {who}: {self.scrub(_message(exc))}")
        return fail(call, f"{type(exc).__name__}: {self.scrub(_message(exc))}")


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    return str(message if isinstance(message, str) and message else exc)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (azure-identity wraps transport errors, azure-core
    wraps requests', which wrap urllib3's)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 12:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [getattr(current, "inner_exception", None), current.__cause__, current.__context__]
    return found


def _arm_error(exc: Any) -> tuple[str | None, str]:
    """(ARM error code, message) of an HttpResponseError."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if not code or not message:
        response = getattr(exc, "response", None)
        try:
            body = response.json() if response is not None else None
        except Exception:  # noqa: BLE001 - the body is not JSON
            body = None
        if isinstance(body, dict):
            inner = body.get("error") if isinstance(body.get("error"), dict) else body
            code = code or inner.get("code") or inner.get("error")
            message = message or inner.get("message") or inner.get("error_description")
    if not message:
        message = getattr(exc, "reason", None) or _message(exc)
    return (str(code) if code else None), str(message)


# -- listing ---------------------------------------------------------------------------------


def arm_json(model: Any) -> dict:
    """An SDK model as its REST JSON (camelCase keys, nested `properties`)."""
    if isinstance(model, dict):
        return model
    serialize = getattr(model, "serialize", None)
    if callable(serialize):  # msrest models (older azure-mgmt-* releases)
        return serialize(keep_readonly=True)
    return model.as_dict()


def _collect(pager: Iterable) -> list[dict]:
    items: list[dict] = []
    for page in pager.by_page():  # type: ignore[attr-defined]
        items.extend(arm_json(model) for model in page)
    return items


def _get_json(session: _Session, url: str) -> dict:
    """One ARM GET through the compute client's pipeline (auth, retries, timeouts, counting)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    response = session.compute().send_request(HttpRequest("GET", url, headers={"Accept": "application/json"}))
    if response.status_code != 200:
        error_class = ClientAuthenticationError if response.status_code == 401 else HttpResponseError
        raise error_class(response=response, error_format=ARMErrorFormat)
    return response.json()


def _list_raw(session: _Session, path: str, api_version: str) -> list[dict]:
    """A subscription-level ARM list (REST JSON already), following nextLink."""
    url: str | None = f"{session.endpoint}{path}?api-version={api_version}"
    items: list[dict] = []
    while url:
        body = _get_json(session, url)
        items.extend(body.get("value") or [])
        url = body.get("nextLink") or None
    return items


def _resource_group_and_name(resource_id: str) -> tuple[str, str]:
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index("resourcegroups") + 1], parts[-1]


def _galleries(session: _Session) -> dict[str, list[dict]]:
    client = session.compute()
    galleries = session.guard(GALLERIES, lambda: _collect(client.galleries.list()))
    definitions: list[dict] = []
    versions: list[dict] = []
    for gallery in galleries:
        group, name = _resource_group_and_name(gallery["id"])
        found = session.guard(
            GALLERY_IMAGES, lambda: _collect(client.gallery_images.list_by_gallery(group, name))
        )
        definitions.extend(found)
        for definition in found:
            image = definition["name"]
            versions.extend(
                session.guard(
                    GALLERY_VERSIONS,
                    lambda: _collect(client.gallery_image_versions.list_by_gallery_image(group, name, image)),
                )
            )
    return {"galleryImages": definitions, "galleryImageVersions": versions}


def _jobs(session: _Session) -> list[tuple[str, Callable[[], dict[str, list[dict]]]]]:
    client = session.compute()
    sub = session.subscription
    network = str(session.ctx.site.settings.get("network_api_version", NETWORK_API_VERSION))

    def listing(key: str, call: str, run: Callable[[], list[dict]]):
        return call, lambda: {key: session.guard(call, run)}

    jobs = [
        listing("virtualMachines", VMS, lambda: _collect(client.virtual_machines.list_all(status_only="true"))),
        (GALLERIES, lambda: _galleries(session)),
        listing("images", IMAGES, lambda: _collect(client.images.list())),
        listing(
            "networkInterfaces",
            NICS,
            lambda: _list_raw(session, f"/subscriptions/{sub}/providers/Microsoft.Network/networkInterfaces", network),
        ),
        listing(
            "publicIPAddresses",
            PUBLIC_IPS,
            lambda: _list_raw(session, f"/subscriptions/{sub}/providers/Microsoft.Network/publicIPAddresses", network),
        ),
    ]
    if session.ctx.site.settings.get("include_disks", True):
        jobs.append(listing("disks", DISKS, lambda: _collect(client.disks.list())))
    return jobs


def _run(session: _Session, jobs: list[tuple[str, Callable[[], dict]]]) -> dict[str, list[dict]]:
    """Run the listings concurrently; on failure, raise the error of the first failed listing
    in `jobs` order (so the reported call does not depend on thread timing)."""
    workers = max(1, int(session.ctx.site.settings.get("max_concurrency", 4)))
    results: dict[str, list[dict]] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"qlrf-azure-{session.ctx.site.id}") as pool:
        futures = [pool.submit(run) for _call, run in jobs]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            for future in pending:
                future.cancel()
            wait(futures)
        for (call, _run_job), future in zip(jobs, futures):
            if future.cancelled():
                continue
            error = future.exception()
            if error is not None:
                if isinstance(error, ConnectorError):
                    raise error from None
                raise session.translate(call, error) from None
            results.update(future.result())
    return results


# -- the contract ----------------------------------------------------------------------------


def fetch(ctx: FetchContext) -> dict:
    """Every collection of the subscription, as ARM list responses `{"value": [...]}`."""
    with _Session(ctx) as session:
        session.authenticate()
        results = _run(session, _jobs(session))
    order = (
        "virtualMachines",
        "galleryImages",
        "galleryImageVersions",
        "images",
        "disks",
        "networkInterfaces",
        "publicIPAddresses",
    )
    return {key: {"value": results[key]} for key in order if key in results}


def check(ctx: FetchContext) -> str:
    """One cheap authenticated read: the subscription itself."""
    with _Session(ctx) as session:
        session.authenticate()
        url = f"{session.endpoint}/subscriptions/{session.subscription}?api-version={SUBSCRIPTIONS_API_VERSION}"
        body = session.guard(SUBSCRIPTION_READ, lambda: _get_json(session, url))
    details = ", ".join(str(v) for v in (body.get("displayName"), body.get("state")) if v)
    return f"subscription {ctx.site.account}: reachable" + (f" ({details})" if details else "")
