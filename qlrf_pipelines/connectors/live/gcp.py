"""GCP live discovery: Compute Engine list calls through google-cloud-compute (REST transport),
returned in the Compute REST JSON shape that `qlrf_pipelines.connectors.gcp.normalize` reads.

Calls, for the site's project (`site.account`):
  instances.aggregatedList, disks.aggregatedList, images.list, networks.list
and images.list again for each project in `settings.image_projects` (shared golden images; their
images are merged into the one `images.list` response, keyed by selfLink as normalize does).
`networks.list` is stored under its own key; normalize ignores keys it does not read.

Each page is one request: pagination goes through the SDK pagers' `.pages`, and every page is
counted on the FetchContext under the API method name (`compute.instances.aggregatedList`, ...).
Attempts answered 429 / 5xx and retried are counted under `<method>:retry`.

Settings (all optional):
  timeout_seconds          per request, including its retries' waits (FetchContext.timeout_s)
  page_size                maxResults per page (default 500, the API's maximum)
  image_projects           extra projects whose images.list is read (shared golden images)
  retry_deadline_seconds   how long 429 / 503 answers are retried (default 60)
  retry_initial_seconds    first back-off (default 1.0; doubles up to 16 s, with jitter)
  anonymous                true: send no credentials (for a local emulator only)

Credentials: the service-account key file whose path the environment variable
`credentials.service_account_file_env` names, else application-default credentials. `endpoint_url`
overrides the API root (`http://127.0.0.1:8085` works: the REST transport keeps the scheme).

Errors raise ConnectorError(site, "compute.<resource>.<method>", message): the HTTP status and
reason for API errors, "timed out after Ns" for a timeout; never a token, key or key file path.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any, Callable, Iterable

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext

READ_PERMISSIONS: dict[str, list[str]] = {
    # Compute Viewer holds all of these (and no write permission).
    "gcp_role": ["roles/compute.viewer"],
    "oauth_scopes": ["https://www.googleapis.com/auth/compute.readonly"],
    "permissions": [
        "compute.instances.list",
        "compute.disks.list",
        "compute.images.list",
        "compute.networks.list",
        "compute.projects.get",
    ],
}

SCOPES = READ_PERMISSIONS["oauth_scopes"]
DEFAULT_PAGE_SIZE = 500
DEFAULT_RETRY_DEADLINE_S = 60.0
DEFAULT_RETRY_INITIAL_S = 1.0
RETRY_MAXIMUM_S = 16.0

INSTANCES_CALL = "compute.instances.aggregatedList"
DISKS_CALL = "compute.disks.aggregatedList"
IMAGES_CALL = "compute.images.list"
NETWORKS_CALL = "compute.networks.list"
PROJECT_CALL = "compute.projects.get"

_count_lock = threading.Lock()


def _count(ctx: FetchContext, call: str) -> None:
    with _count_lock:  # the list calls run in parallel threads
        ctx.count(call)


# -- setup ------------------------------------------------------------------------------------


def _project(ctx: FetchContext, credentials_project: str | None = None) -> str:
    project = ctx.site.account or credentials_project
    if not project:
        raise ctx.fail("site settings", "no GCP project: set the site's account to the project id")
    return project


def _credentials(ctx: FetchContext) -> tuple[Any, str | None]:
    """(credentials, project id they name) without ever putting a secret in an error."""
    import google.auth
    from google.auth import exceptions as auth_exceptions

    site = ctx.site
    if site.settings.get("anonymous"):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials(), None
    env = site.credentials.service_account_file_env
    if env:
        from google.oauth2 import service_account

        path = ctx.secret("service_account_file_env")
        if not path:
            raise ctx.fail("load credentials", f"environment variable {env} (service-account key file) is not set")
        try:
            credentials = service_account.Credentials.from_service_account_file(path, scopes=SCOPES)
        except FileNotFoundError:
            raise ctx.fail("load credentials", f"the service-account key file {env} names does not exist") from None
        except (OSError, ValueError, KeyError, auth_exceptions.GoogleAuthError) as exc:
            raise ctx.fail(
                "load credentials",
                f"the service-account key file {env} names is not a usable key ({type(exc).__name__})",
            ) from None
        return credentials, getattr(credentials, "project_id", None)
    try:
        credentials, project = google.auth.default(scopes=SCOPES)
    except auth_exceptions.DefaultCredentialsError:
        raise ctx.fail(
            "load credentials",
            "no credentials: set credentials.service_account_file_env, or provide application-default "
            "credentials (gcloud auth application-default login, GOOGLE_APPLICATION_CREDENTIALS, metadata server)",
        ) from None
    return credentials, project


def _retry(ctx: FetchContext, call: str):
    from google.api_core import exceptions as core_exceptions
    from google.api_core.retry import Retry, if_exception_type

    settings = ctx.site.settings
    return Retry(
        predicate=if_exception_type(
            core_exceptions.TooManyRequests,  # 429 rate limit / quota
            core_exceptions.ServiceUnavailable,  # 503
            core_exceptions.BadGateway,  # 502
            core_exceptions.GatewayTimeout,  # 504
        ),
        initial=float(settings.get("retry_initial_seconds", DEFAULT_RETRY_INITIAL_S)),
        maximum=RETRY_MAXIMUM_S,
        multiplier=2.0,
        timeout=float(settings.get("retry_deadline_seconds", DEFAULT_RETRY_DEADLINE_S)),
        on_error=lambda _exc: _count(ctx, f"{call}:retry"),
    )


class _Clients:
    """The Compute clients of one fetch, sharing credentials and endpoint; closed on exit."""

    def __init__(self, ctx: FetchContext, credentials: Any, stack: ExitStack):
        self._ctx = ctx
        self._credentials = credentials
        self._stack = stack

    def __call__(self, client_class: type) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.api_core.gapic_v1.client_info import ClientInfo

        site = self._ctx.site
        options = ClientOptions(api_endpoint=site.endpoint_url) if site.endpoint_url else None
        client = client_class(
            credentials=self._credentials,
            transport="rest",
            client_options=options,
            client_info=ClientInfo(user_agent="qlrf-pipelines"),
        )
        if not site.verify_ssl:
            session = getattr(client.transport, "_session", None)
            if session is not None:
                session.verify = False
        self._stack.callback(client.transport.close)
        return client


# -- errors -----------------------------------------------------------------------------------

_REST_PREFIX = re.compile(r"^[A-Z]+ \S+: ")
_SECRETS = (  # (pattern, replacement): belt and braces over messages that come from servers
    (re.compile(r"(?i)\bbearer\s+\S+"), "Bearer ***"),
    (re.compile(r"ya29\.[\w.-]+"), "***"),  # a Google OAuth access token
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), "***"),  # a JWT (self-signed or id token)
    (re.compile(r"-----BEGIN [A-Z ]+-----.*?(?:-----END [A-Z ]+-----|$)", re.S), "***"),
    (
        re.compile(
            r"(?i)\b(access_token|id_token|refresh_token|assertion|private_key_id|private_key|client_secret)"
            r"([\"']?\s*[:=]\s*[\"']?)[^\"'&,\s}]+"
        ),
        r"\1\2***",
    ),
)


def _scrub(ctx: FetchContext, text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    path = ctx.secret("service_account_file_env")
    if path:
        text = text.replace(path, f"${ctx.site.credentials.service_account_file_env}")
    return text[:500]


def _describe(ctx: FetchContext, exc: BaseException) -> str:
    import requests
    from google.api_core import exceptions as core_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(exc, core_exceptions.RetryError):
        deadline = ctx.site.settings.get("retry_deadline_seconds", DEFAULT_RETRY_DEADLINE_S)
        cause = exc.cause
        inner = _describe(ctx, cause) if cause is not None else str(exc.message)
        return f"{inner} (still failing after retrying for {float(deadline):g}s)"
    if isinstance(exc, requests.exceptions.Timeout) or (
        isinstance(exc, core_exceptions.DeadlineExceeded) and getattr(exc, "response", None) is None
    ):  # our own deadline (a 504 answer is an HTTP error, below)
        return f"timed out after {ctx.timeout_s:g}s"
    if isinstance(exc, core_exceptions.GoogleAPICallError):
        status = exc.grpc_status_code.name if exc.grpc_status_code is not None else type(exc).__name__
        reason = exc.reason
        if not reason and exc.errors and isinstance(exc.errors[0], dict):
            reason = exc.errors[0].get("reason")
        detail = _REST_PREFIX.sub("", str(exc.message or ""))
        text = f"HTTP {exc.code} {status}" + (f" ({reason})" if reason else "") + f": {detail}"
        if exc.code in (401, 403):
            text += " -- check the site's credentials and that they hold roles/compute.viewer on the project"
        return text
    if isinstance(exc, auth_exceptions.InvalidOperation) and ctx.site.settings.get("anonymous"):
        # google-auth answers a 401 by refreshing the credentials, which anonymous ones cannot do.
        return "HTTP 401 Unauthorized: the API refused a request without credentials (settings.anonymous)"
    if isinstance(exc, auth_exceptions.RefreshError):
        return f"could not obtain an access token ({type(exc).__name__}): {exc.args[0] if exc.args else ''}"
    if isinstance(exc, auth_exceptions.TransportError):
        return f"transport error while authenticating: {exc.args[0] if exc.args else type(exc).__name__}"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error talking to the Compute API (certificate not trusted?)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        endpoint = ctx.site.endpoint_url or "compute.googleapis.com"
        return f"cannot connect to {endpoint} ({type(exc).__name__})"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"transport error ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def _guarded(ctx: FetchContext, call: str, work: Callable[[], Any], prefix: str = "") -> Any:
    """work(), with SDK, auth and transport errors turned into ConnectorError(site, call, ...)."""
    import requests
    from google.api_core import exceptions as core_exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        return work()
    except ConnectorError:
        raise
    except (
        core_exceptions.GoogleAPIError,
        auth_exceptions.GoogleAuthError,
        requests.exceptions.RequestException,
    ) as exc:
        raise ctx.fail(call, prefix + _scrub(ctx, _describe(ctx, exc))) from None


# -- pages to REST JSON -----------------------------------------------------------------------


def _rest_dict(message: Any) -> dict:
    """A proto-plus Compute message as the REST API writes it: camelCase json names (natIP,
    creationTimestamp), int64 as strings, enums as their names, unset fields left out."""
    return type(message).to_dict(
        message,
        preserving_proto_field_name=False,
        use_integers_for_enums=False,
        always_print_fields_with_no_presence=False,
    )


def _pages(ctx: FetchContext, call: str, pager: Any) -> Iterable[dict]:
    """Each page of a pager as REST JSON, counted; errors on later pages surface here too."""
    for page in pager.pages:
        _count(ctx, call)
        yield _rest_dict(page)


def _aggregated(ctx: FetchContext, call: str, kind: str, pages: Iterable[dict]) -> dict:
    """Merge aggregatedList pages into one {"items": {"zones/<z>": {kind: [...]}}} response."""
    items: dict[str, dict] = {}
    unreachable: list[str] = []
    for page in pages:
        for scope, scoped in (page.get("items") or {}).items():
            merged = items.setdefault(scope, {})
            resources = scoped.get(kind)
            if resources:
                merged.setdefault(kind, []).extend(resources)
                merged.pop("warning", None)
            elif "warning" in scoped and kind not in merged:
                merged["warning"] = scoped["warning"]
                if scoped["warning"].get("code") == "UNREACHABLE":
                    unreachable.append(scope)
        unreachable.extend(page.get("unreachables") or [])
    if unreachable:
        # A zone that did not answer would make its resources look deleted: refuse the page set.
        raise ctx.fail(call, f"partial result, unreachable: {', '.join(sorted(set(unreachable)))}")
    # Scope order is a proto map's (arbitrary): sort it, so the same estate gives the same payload.
    return {"items": {scope: items[scope] for scope in sorted(items)}}


def _listed(pages: Iterable[dict], seen: set[str] | None = None) -> list[dict]:
    resources: list[dict] = []
    for page in pages:
        for resource in page.get("items") or []:
            link = resource.get("selfLink")
            if seen is not None and link:
                if link in seen:
                    continue
                seen.add(link)
            resources.append(resource)
    return resources


# -- fetch / check ----------------------------------------------------------------------------


def fetch(ctx: FetchContext) -> dict:
    from google.cloud import compute_v1

    credentials, credentials_project = _credentials(ctx)
    project = _project(ctx, credentials_project)
    settings = ctx.site.settings
    page_size = int(settings.get("page_size", DEFAULT_PAGE_SIZE))
    image_projects = [project] + [p for p in settings.get("image_projects") or [] if p != project]
    timeout = ctx.timeout_s

    with ExitStack() as stack:
        client = _Clients(ctx, credentials, stack)
        instances_client = client(compute_v1.InstancesClient)
        disks_client = client(compute_v1.DisksClient)
        images_client = client(compute_v1.ImagesClient)
        networks_client = client(compute_v1.NetworksClient)

        def instances() -> dict:
            pager = instances_client.aggregated_list(
                request=compute_v1.AggregatedListInstancesRequest(project=project, max_results=page_size),
                retry=_retry(ctx, INSTANCES_CALL),
                timeout=timeout,
            )
            return _aggregated(ctx, INSTANCES_CALL, "instances", _pages(ctx, INSTANCES_CALL, pager))

        def disks() -> dict:
            pager = disks_client.aggregated_list(
                request=compute_v1.AggregatedListDisksRequest(project=project, max_results=page_size),
                retry=_retry(ctx, DISKS_CALL),
                timeout=timeout,
            )
            return _aggregated(ctx, DISKS_CALL, "disks", _pages(ctx, DISKS_CALL, pager))

        def images() -> dict:
            seen: set[str] = set()
            merged: list[dict] = []
            for image_project in image_projects:

                def one(image_project: str = image_project) -> list[dict]:
                    pager = images_client.list(
                        request=compute_v1.ListImagesRequest(project=image_project, max_results=page_size),
                        retry=_retry(ctx, IMAGES_CALL),
                        timeout=timeout,
                    )
                    return _listed(_pages(ctx, IMAGES_CALL, pager), seen)

                # Name the project when a shared image project is the one that failed.
                prefix = "" if image_project == project else f"project {image_project}: "
                merged.extend(_guarded(ctx, IMAGES_CALL, one, prefix))
            return {"items": merged}

        def networks() -> dict:
            pager = networks_client.list(
                request=compute_v1.ListNetworksRequest(project=project, max_results=page_size),
                retry=_retry(ctx, NETWORKS_CALL),
                timeout=timeout,
            )
            return {"items": _listed(_pages(ctx, NETWORKS_CALL, pager))}

        calls = (
            ("instances.aggregatedList", INSTANCES_CALL, instances),
            ("disks.aggregatedList", DISKS_CALL, disks),
            ("images.list", IMAGES_CALL, images),
            ("networks.list", NETWORKS_CALL, networks),
        )
        # The four lists are independent: run them side by side; report the first failure in
        # the order above (instances first), after every call has finished or failed.
        with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix=f"gcp-{ctx.site.id}") as pool:
            futures = [(key, call, pool.submit(_guarded, ctx, call, work)) for key, call, work in calls]
            payload: dict[str, Any] = {}
            first_error: BaseException | None = None
            for key, _call, future in futures:
                try:
                    payload[key] = future.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    first_error = first_error or exc
        if first_error is not None:
            raise first_error
    return payload


def check(ctx: FetchContext) -> str:
    from google.cloud import compute_v1

    credentials, credentials_project = _credentials(ctx)
    project = _project(ctx, credentials_project)
    with ExitStack() as stack:
        projects_client = _Clients(ctx, credentials, stack)(compute_v1.ProjectsClient)

        def get() -> Any:
            found = projects_client.get(
                request=compute_v1.GetProjectRequest(project=project),
                retry=_retry(ctx, PROJECT_CALL),
                timeout=ctx.timeout_s,
            )
            _count(ctx, PROJECT_CALL)
            return found

        _guarded(ctx, PROJECT_CALL, get)
    return f"project {project}: reachable"
