"""Kubernetes live discovery: the API server's own list responses, merged across pages, in the
payload shape `connectors.kubernetes.normalize` reads.

Configuration is built per site, never in the client's global default:

* `settings.in_cluster: true` -> the pod's service account (`load_incluster_config`);
* otherwise the kubeconfig file named by the environment variable `credentials.kubeconfig_env`
  (else the client's default, `$KUBECONFIG` or `~/.kube/config`), context `credentials.context`
  (else the file's current-context). This is `kubernetes.config.new_client_from_config`, done in
  its two steps so the site's overrides apply before the connection pool is built.
* `endpoint_url` replaces the server address; `verify_ssl: false` turns off certificate checks
  (`true`, the default, keeps what the kubeconfig says).

Every list is paginated (`limit` = `settings.page_size`, default 500, and the `continue` token
of each page) and called with `_preload_content=False`, so the JSON is the API server's own
camelCase, not the client's snake_case models. Each HTTP request is counted once in
`ctx.api_calls` under its REST path ("GET /apis/apps/v1/deployments"), throttled retries
included. 429 and 503 are retried after `Retry-After` (at most `settings.max_retries`, default
4, and `settings.max_retry_wait_seconds`, default 30, per wait); a `continue` token that expired
(410) restarts that list once. Every other failure is a ConnectorError naming the site and the
call, with the HTTP status and the API server's message, never a credential.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from qlrf_pipelines.connectors.base import ConnectorError, gc_paused
from qlrf_pipelines.connectors.live import FetchContext
from qlrf_pipelines.sites import Site

READ_PERMISSIONS: dict[str, list] = {
    # A ClusterRole (bound with a ClusterRoleBinding: every list is cluster-wide).
    "rbac_rules": [
        {"apiGroups": [""], "resources": ["nodes", "namespaces", "pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["get", "list"]},
        {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "list"]},
    ],
    # /version is readable by any authenticated user (system:public-info-viewer).
    "non_resource_urls": ["/version"],
}

DEFAULT_PAGE_SIZE = 500
DEFAULT_MAX_RETRIES = 4
DEFAULT_MAX_RETRY_WAIT_S = 30.0
RETRY_STATUSES = (429, 503)
VERSION_CALL = "GET /version"

# (payload key, list kind, api version, REST path, API class, method)
LISTS: tuple[tuple[str, str, str, str, type, str], ...] = (
    ("nodes", "NodeList", "v1", "/api/v1/nodes", client.CoreV1Api, "list_node"),
    ("namespaces", "NamespaceList", "v1", "/api/v1/namespaces", client.CoreV1Api, "list_namespace"),
    ("deployments", "DeploymentList", "apps/v1", "/apis/apps/v1/deployments",
     client.AppsV1Api, "list_deployment_for_all_namespaces"),
    ("statefulsets", "StatefulSetList", "apps/v1", "/apis/apps/v1/statefulsets",
     client.AppsV1Api, "list_stateful_set_for_all_namespaces"),
    ("daemonsets", "DaemonSetList", "apps/v1", "/apis/apps/v1/daemonsets",
     client.AppsV1Api, "list_daemon_set_for_all_namespaces"),
    ("cronjobs", "CronJobList", "batch/v1", "/apis/batch/v1/cronjobs",
     client.BatchV1Api, "list_cron_job_for_all_namespaces"),
    ("pods", "PodList", "v1", "/api/v1/pods", client.CoreV1Api, "list_pod_for_all_namespaces"),
)


class _ContinueExpired(Exception):
    """410 Gone on a continued list: the token outlived the server's snapshot."""

    def __init__(self, error: ConnectorError):
        super().__init__(str(error))
        self.error = error


class _Session:
    """One site's API client and the helpers that turn its failures into ConnectorErrors."""

    def __init__(self, ctx: FetchContext):
        self.ctx = ctx
        settings = ctx.site.settings
        self.max_retries = int(settings.get("max_retries", DEFAULT_MAX_RETRIES))
        self.max_wait = float(settings.get("max_retry_wait_seconds", DEFAULT_MAX_RETRY_WAIT_S))
        self.sleep: Callable[[float], None] = time.sleep
        self.configuration = _configuration(ctx)
        self.api_client = client.ApiClient(configuration=self.configuration)

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- one request ------------------------------------------------------------------------

    def get_json(self, call: str, method: Callable[..., Any], **params: Any) -> dict:
        """One API response body as JSON, retrying 429 / 503 as the server asks."""
        attempt = 0
        while True:
            self.ctx.count(call)
            try:
                response = method(**params, _preload_content=False, _request_timeout=self.ctx.timeout_s or None)
                try:
                    body = response.data
                finally:
                    response.release_conn()
            except ApiException as exc:
                if exc.status in RETRY_STATUSES and attempt < self.max_retries:
                    self.sleep(self._retry_wait(exc, attempt))
                    attempt += 1
                    continue
                error = self._http_error(call, exc, attempt)
                if exc.status == 410 and params.get("_continue"):
                    raise _ContinueExpired(error) from None
                raise error from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise self.ctx.fail(call, self._transport_message(exc)) from None
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise self.ctx.fail(call, f"response is not JSON ({len(body)} bytes)") from None
            if not isinstance(data, dict):
                raise self.ctx.fail(call, f"expected a JSON object, got {type(data).__name__}")
            return data

    def _retry_wait(self, exc: ApiException, attempt: int) -> float:
        header = exc.headers.get("Retry-After") if exc.headers is not None else None
        try:
            wait = float(header) if header is not None else None
        except ValueError:
            wait = None  # an HTTP date: rare from an API server; back off instead
        if wait is None or not math.isfinite(wait) or wait < 0:
            wait = min(2.0 ** attempt, 8.0)
        return min(wait, self.max_wait)

    def _http_error(self, call: str, exc: ApiException, retries: int) -> ConnectorError:
        status = exc.status
        reason = (exc.reason or "").strip()
        message = f"HTTP {status} {reason}".rstrip() if status else reason or "request failed"
        detail = _status_message(exc.body)
        if detail and detail != reason:
            message += f": {detail}"
        if status == 401:
            message += " (the credentials were refused: check the token or client certificate of the context)"
        elif status == 403:
            message += " (the credentials lack a permission listed in READ_PERMISSIONS)"
        if status in RETRY_STATUSES:
            message += f" (still throttled after {retries} retries)"
        return self.ctx.fail(call, self._scrub(message))

    def _transport_message(self, exc: BaseException) -> str:
        reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
        host = self._scrub(self.configuration.host or "?")
        # NewConnectionError subclasses ConnectTimeoutError: test it first.
        if isinstance(reason, (urllib3.exceptions.NewConnectionError, ConnectionError)):
            text = str(reason)
            cause = text.split(": ", 1)[1] if ": " in text else text
            cause = cause.replace("Failed to establish a new connection: ", "")
            return f"cannot connect to {host}: {self._scrub(cause)}"
        if isinstance(reason, (urllib3.exceptions.TimeoutError, TimeoutError)):
            return f"timed out after {self.ctx.timeout_s:g}s waiting for {host}"
        if isinstance(reason, urllib3.exceptions.SSLError):
            return f"TLS error talking to {host}: {self._scrub(str(reason))}"
        return f"request to {host} failed: {type(reason).__name__}: {self._scrub(str(reason))}"

    def _scrub(self, text: str) -> str:
        """Remove any credential value the configuration holds (belt and braces: API server
        messages and transport errors do not carry them)."""
        secrets = [v for v in (self.configuration.api_key or {}).values() if v]
        secrets += [v.split(" ", 1)[1] for v in secrets if " " in v]
        secrets += [v for v in (self.configuration.password,) if v]
        for secret in sorted(set(secrets), key=len, reverse=True):
            if len(secret) >= 6:
                text = text.replace(secret, "***")
        return text

    # -- calls ------------------------------------------------------------------------------

    def version(self) -> dict:
        return self.get_json(VERSION_CALL, client.VersionApi(self.api_client).get_code)

    def list_all(self, kind: str, api_version: str, path: str, api_class: type, method_name: str) -> dict:
        """Every page of one list call merged into one List object."""
        call = f"GET {path}"
        method = getattr(api_class(self.api_client), method_name)
        page_size = int(self.ctx.site.settings.get("page_size", DEFAULT_PAGE_SIZE))
        restarts = 0
        while True:
            merged: dict | None = None
            items: list = []
            token: str | None = None
            try:
                while True:
                    params: dict[str, Any] = {"limit": page_size}
                    if token:
                        params["_continue"] = token
                    page = self.get_json(call, method, **params)
                    page_items = page.get("items")
                    if page_items is None:
                        page_items = []
                    if not isinstance(page_items, list):
                        raise self.ctx.fail(call, f"items is a {type(page_items).__name__}, not a list")
                    items.extend(page_items)
                    if merged is None:
                        merged = page
                    metadata = page.get("metadata") if isinstance(page.get("metadata"), dict) else {}
                    next_token = metadata.get("continue")
                    if not next_token:
                        break
                    if next_token == token:
                        raise self.ctx.fail(call, "the server returned the same continue token twice")
                    token = next_token
            except _ContinueExpired as exc:
                # The continue token expired mid-list: start the list again, once.
                if restarts:
                    raise exc.error from None
                restarts += 1
                continue
            assert merged is not None
            metadata = {k: v for k, v in (merged.get("metadata") or {}).items()
                        if k not in ("continue", "remainingItemCount")}
            return {
                "kind": merged.get("kind") or kind,
                "apiVersion": merged.get("apiVersion") or api_version,
                "metadata": metadata,
                "items": items,
            }


def _configuration(ctx: FetchContext) -> client.Configuration:
    """A fresh client Configuration for this site (the client's global default is untouched)."""
    site = ctx.site
    configuration = client.Configuration()
    if site.settings.get("in_cluster"):
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise ctx.fail("load in-cluster config", str(exc)) from None
    else:
        env_name = site.credentials.kubeconfig_env
        path = None
        if env_name:
            path = ctx.secret("kubeconfig_env")
            if not path:
                raise ctx.fail("load kubeconfig", f"environment variable {env_name} is not set")
        where = f"kubeconfig {path}" if path else "the default kubeconfig"
        try:
            # What new_client_from_config does, minus building the ApiClient before the
            # overrides below; persist_config=False: never write refreshed tokens back.
            config.load_kube_config(
                config_file=path,
                context=site.credentials.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except ConfigException as exc:
            raise ctx.fail("load kubeconfig", f"{where}: {exc}") from None
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ctx.fail("load kubeconfig", f"{where}: {type(exc).__name__}: {exc}") from None
    _apply_overrides(configuration, site)
    # Both loaders install a hook, run before every request when the token is read, that copies
    # the kubeconfig's (or the pod's) host and TLS settings into the configuration again and
    # re-installs itself: wrap it, and keep wrapping what it installs, so the site's overrides
    # hold for every request and not only the first.
    if configuration.refresh_api_key_hook is not None:
        inner = [configuration.refresh_api_key_hook]

        def refresh(target: client.Configuration) -> None:
            inner[0](target)
            if target.refresh_api_key_hook is not refresh:
                inner[0] = target.refresh_api_key_hook
                target.refresh_api_key_hook = refresh
            _apply_overrides(target, site)

        configuration.refresh_api_key_hook = refresh
    # No transport retries in urllib3: a hung server must cost one timeout, not four; throttling
    # is retried above, where Retry-After is honoured and every request is counted.
    configuration.retries = urllib3.Retry(total=0, redirect=0, raise_on_status=False)
    return configuration


def _apply_overrides(configuration: client.Configuration, site: Site) -> None:
    if site.endpoint_url:
        configuration.host = site.endpoint_url.rstrip("/")
    if not site.verify_ssl:
        configuration.verify_ssl = False


def _status_message(body: Any) -> str | None:
    """The `message` of a Kubernetes Status response body, else a short excerpt of the body."""
    if not body:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except ValueError:
        text = " ".join(str(body).split())
        return text[:200] or None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:500]
    return None


def fetch(ctx: FetchContext) -> dict:
    """The cluster's version and every list normalize reads, each merged across its pages."""
    include_pods = ctx.site.settings.get("include_pods", True)
    # gc paused: hundreds of thousands of new (acyclic) JSON objects, as in normalize.
    with gc_paused(), _Session(ctx) as session:
        payload: dict[str, Any] = {"version": session.version()}
        for key, kind, api_version, path, api_class, method_name in LISTS:
            if key == "pods" and not include_pods:
                continue
            payload[key] = session.list_all(kind, api_version, path, api_class, method_name)
    return payload


def check(ctx: FetchContext) -> str:
    """One authenticated read: the server version."""
    with _Session(ctx) as session:
        version = session.version()
    git_version = version.get("gitVersion") or f"v{version.get('major', '?')}.{version.get('minor', '?')}"
    return f"Kubernetes {git_version}: reachable"
