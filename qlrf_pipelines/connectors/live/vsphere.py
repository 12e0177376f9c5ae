"""Live vSphere discovery: pyvmomi PropertyCollector reads -> the payload `connectors.vsphere.normalize`
reads.

One session per fetch, then for each managed object type one ContainerView over the root folder
and ONE `PropertyCollector.RetrievePropertiesEx` (continued with `ContinueRetrievePropertiesEx`
while vCenter hands back a token, `settings.page_size` objects a page, default 500): the cost is
pages per object type, never a request per VM. Custom field definitions come from the
CustomFieldsManager in one more RetrievePropertiesEx; `about` is part of the ServiceContent.

Connection
----------
`endpoint_url` (e.g. `https://vcenter01.corp.example.com/sdk`, `http://127.0.0.1:8989/sdk` for a
simulator) or else `https://<account>:443/sdk`. TLS certificates are verified against the system
trust store (plus `settings.ca_file` when given); only `verify_ssl: false` on the site turns
verification off. Every request - the API version probe included - has the site's timeout
(`settings.timeout_seconds`).

pyVim's SmartConnect is not used as is: its API-version probe opens an HTTP connection with no
timeout (a vCenter that accepts and never answers hangs discovery for ever), it silently swaps in
an unverified TLS context for 127.0.0.1 / localhost, and it re-raises transport errors as a bare
HostConnectFault. `_connect` does the same three steps (read `<path>/vimServiceVersions.xml`,
pick the newest API version both sides know, RetrieveServiceContent + SessionManager.Login)
with the timeout and the error types kept.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import xml.etree.ElementTree as ElementTree
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import urlsplit

from pyVmomi import SoapStubAdapter, vim, vmodl
from pyVmomi.VmomiSupport import DataObject, Enum, GetServiceVersions, ManagedObject, versionIdMap

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext

READ_PERMISSIONS: dict[str, list[str]] = {
    "vsphere_privileges": ["System.Anonymous", "System.View", "System.Read"],
    "notes": [
        "a Read-only role assigned at the vCenter root folder with 'Propagate to children', so "
        "every datacenter, cluster, host, datastore, network and VM is visible",
        "custom attribute values (qlrf.family, qlrf.version, qlrf.status, qlrf.source-template) "
        "are readable with System.Read; no Global.* privilege is needed",
    ],
}

DEFAULT_PAGE_SIZE = 500

VM_PROPERTIES = [
    "name",
    "config.template",
    "config.instanceUuid",
    "config.guestFullName",
    "config.guestId",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.createDate",
    "config.annotation",
    "config.keyId",  # set on encrypted VMs only (VM Encryption): disk_encryption
    "runtime.powerState",
    "runtime.host",
    "guest.toolsRunningStatus",
    "guest.toolsVersionStatus2",
    "guest.ipAddress",
    "network",
    "datastore",
    "customValue",
]

# Payload key -> (managed object type, property paths). Order: the small inventory first, so a
# permission problem shows up before the long VM pass.
OBJECT_TYPES: list[tuple[str, type, list[str]]] = [
    ("Datacenter", vim.Datacenter, ["name"]),
    ("ClusterComputeResource", vim.ClusterComputeResource, ["name", "host"]),
    ("HostSystem", vim.HostSystem, ["name", "parent", "summary.config.product.fullName"]),
    ("Datastore", vim.Datastore, ["name"]),
    ("Network", vim.Network, ["name"]),
    ("VirtualMachine", vim.VirtualMachine, VM_PROPERTIES),
]

_PC = vmodl.query.PropertyCollector
_SKIP_FIELDS = frozenset({"dynamicType", "dynamicProperty"})


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    user: str
    password: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


# -- values -------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A pyvmomi property value as JSON data: morefs as their id ('vm-1001'), enums as strings,
    datetimes as ISO 8601 (UTC, 'Z'), data objects as dicts of their set fields, arrays as lists."""
    if value is None or type(value) in (str, bool, float):
        return value
    if isinstance(value, ManagedObject):
        return value._moId
    if isinstance(value, (Enum, str)):
        return str(value)
    if isinstance(value, int):
        return int(value)  # pyvmomi's long / short / byte subclasses -> int
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime):
        moment = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, type):  # vmodl.TypeName, e.g. CustomFieldDef.managedObjectType
        return getattr(value, "_wsdlName", value.__name__)
    if isinstance(value, DataObject):
        result = {}
        for info in type(value)._GetPropertyList():
            if info.name in _SKIP_FIELDS:
                continue
            item = plain(getattr(value, info.name, None))
            if item is not None and item != []:
                result[info.name] = item
        return result
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def object_content(content: Any) -> dict:
    """One ObjectContent as {"obj": <moref id>, "propSet": {<path>: <value>}} (unset paths absent)."""
    props = {}
    for prop in content.propSet or ():
        value = plain(prop.val)
        if value is not None:
            props[prop.name] = value
    return {"obj": content.obj._moId, "propSet": props}


# -- connection ---------------------------------------------------------------------------------


def _target(ctx: FetchContext) -> _Target:
    site = ctx.site
    if site.endpoint_url:
        parts = urlsplit(site.endpoint_url)
        scheme = (parts.scheme or "https").lower()
        host = parts.hostname
        port = parts.port
        path = parts.path.rstrip("/") or "/sdk"
    else:
        scheme, host, port, path = "https", site.account, None, "/sdk"
    if scheme not in ("http", "https"):
        raise ctx.fail("connect", f"endpoint_url scheme must be https (or http for a simulator), not {scheme!r}")
    if not host:
        raise ctx.fail("connect", "no vCenter host: set the site's account (vCenter host) or endpoint_url")
    user = ctx.secret("username_env")
    password = ctx.secret("password_env")
    creds = ctx.site.credentials
    if not user or not password:
        missing = [
            f"{field} ({getattr(creds, field) or 'not set in the sites file'})"
            for field, value in (("username_env", user), ("password_env", password))
            if not value
        ]
        raise ctx.fail("credentials", "no value for " + " and ".join(missing) + ": set the environment variables")
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), path, user, password)


def _ssl_context(ctx: FetchContext) -> ssl.SSLContext:
    if not ctx.site.verify_ssl:
        # The explicit per-site opt-out (verify_ssl: false); never a default.
        return ssl._create_unverified_context()  # noqa: S323
    ca_file = ctx.site.settings.get("ca_file")
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ctx.fail("connect", f"cannot load settings.ca_file {ca_file!r}: {exc}") from None


def _error(ctx: FetchContext, target: _Target, call: str, exc: BaseException) -> ConnectorError:
    """A ConnectorError for exc that names the call and says what to do; never the password."""
    if isinstance(exc, vim.fault.InvalidLogin):
        message = f"login refused for user {target.user!r} (check the user name and password variables)"
    elif isinstance(exc, vim.fault.NoPermission):
        privilege = getattr(exc, "privilegeId", None) or "?"
        obj = getattr(exc, "object", None)
        message = (
            f"permission denied: needs {privilege}"
            + (f" on {plain(obj)}" if obj is not None else "")
            + "; grant a Read-only role at the root folder, propagated to children"
        )
    elif isinstance(exc, vim.fault.NotAuthenticated):
        message = "not authenticated (session expired or was closed)"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        message = (
            f"TLS certificate of {target.where} not verified ({reason}); add the vCenter CA to the "
            "system trust store or settings.ca_file, or set verify_ssl: false on this site to opt out"
        )
    elif isinstance(exc, ssl.SSLError):
        message = f"TLS handshake with {target.where} failed ({exc.reason or exc})"
    elif isinstance(exc, (TimeoutError, socket.timeout)):
        message = f"timed out after {ctx.timeout_s:g}s waiting for {target.where} (settings.timeout_seconds)"
    elif isinstance(exc, ConnectionRefusedError):
        message = f"connection refused by {target.where}"
    elif isinstance(exc, socket.gaierror):
        message = f"cannot resolve host {target.host!r}"
    elif isinstance(exc, (ConnectionError, http.client.HTTPException)):
        message = f"connection to {target.where} failed ({type(exc).__name__}: {exc})"
    elif isinstance(exc, vmodl.MethodFault):
        message = f"{type(exc).__name__.rsplit('.', 1)[-1]}: {exc.msg or 'no message'}"
    else:
        message = f"{type(exc).__name__}: {exc}"
    if target.password and target.password in message:
        message = message.replace(target.password, "***")
    return ctx.fail(call, message)


def _negotiate_version(ctx: FetchContext, target: _Target, context: ssl.SSLContext) -> str:
    """The newest vim25 API version pyvmomi and the server both know (SmartConnect's choice)."""
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=ctx.timeout_s, context=context)
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=ctx.timeout_s)
    ctx.count("GET vimServiceVersions.xml")
    try:
        conn.request("GET", f"{target.path}/vimServiceVersions.xml")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise ctx.fail(
            "GET vimServiceVersions.xml",
            f"HTTP {response.status} from {target.scheme}://{target.where}{target.path}: not a vCenter SDK endpoint?",
        )
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise ctx.fail("GET vimServiceVersions.xml", "response is not XML: not a vCenter SDK endpoint?") from None
    offered: set[str] = set()
    for namespace in root.iter("namespace"):
        if (namespace.findtext("name") or "").strip() != "urn:vim25":
            continue
        offered.add((namespace.findtext("version") or "").strip())
        offered.update((v.text or "").strip() for v in namespace.findall("priorVersions/version"))
    for version in GetServiceVersions("vim25"):
        if versionIdMap.get(version) in offered:
            return version
    raise ctx.fail("GET vimServiceVersions.xml", f"no API version in common (server offers {sorted(offered)})")


@contextmanager
def session(ctx: FetchContext) -> Iterator["_Session"]:
    """A logged-in session (its ServiceContent is `.content`); logged out and its connections
    dropped afterwards - without the Logout when the connection itself failed."""
    target = _target(ctx)
    context = _ssl_context(ctx)
    call = "GET vimServiceVersions.xml"
    stub = None
    try:
        version = _negotiate_version(ctx, target, context)
        port = -target.port if target.scheme == "http" else target.port
        stub = SoapStubAdapter(
            host=target.host,
            port=port,
            path=target.path,
            version=version,
            sslContext=context,
            httpConnectionTimeout=ctx.timeout_s,
            connectionPoolTimeout=max(int(ctx.timeout_s), 1),
        )
        instance = vim.ServiceInstance("ServiceInstance", stub)
        call = "ServiceInstance.RetrieveServiceContent"
        ctx.count(call)
        content = instance.RetrieveContent()
        call = "SessionManager.Login"
        ctx.count(call)
        content.sessionManager.Login(target.user, target.password, None)
    except ConnectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a ConnectorError naming the call
        if stub is not None:
            stub.DropConnections()
        raise _error(ctx, target, call, exc) from None
    current = _Session(ctx, target, content)
    try:
        yield current
    finally:
        if not current.broken:  # after a transport failure a Logout would only wait again
            try:
                ctx.count("SessionManager.Logout")
                content.sessionManager.Logout()
            except Exception:  # noqa: BLE001 - best effort; the session expires on its own
                pass
        stub.DropConnections()


class _Session:
    """What a fetch reads through; every request is counted and its failure named."""

    def __init__(self, ctx: FetchContext, target: _Target, content: Any):
        self.ctx = ctx
        self.target = target
        self.content = content
        self.broken = False

    def call(self, name: str, fn, *args, **kwargs):
        self.ctx.count(name)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a ConnectorError naming the call
            self.broken = self.broken or isinstance(exc, (OSError, http.client.HTTPException))
            raise _error(self.ctx, self.target, name, exc) from None

    def retrieve(self, spec: Any, page_size: int) -> list[dict]:
        """All ObjectContents of one FilterSpec: RetrievePropertiesEx, then one
        ContinueRetrievePropertiesEx per further page."""
        collector = self.content.propertyCollector
        options = _PC.RetrieveOptions(maxObjects=page_size)
        result = self.call("PropertyCollector.RetrievePropertiesEx", collector.RetrievePropertiesEx, [spec], options)
        objects: list[dict] = []
        while result is not None:
            objects.extend(object_content(content) for content in result.objects or ())
            if not result.token:
                break
            result = self.call(
                "PropertyCollector.ContinueRetrievePropertiesEx", collector.ContinueRetrievePropertiesEx, result.token
            )
        return objects

    def objects_of_type(self, managed_type: type, paths: list[str], page_size: int) -> list[dict]:
        view = self.call(
            "ViewManager.CreateContainerView",
            self.content.viewManager.CreateContainerView,
            self.content.rootFolder,
            [managed_type],
            True,
        )
        try:
            traverse = _PC.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
            spec = _PC.FilterSpec(
                objectSet=[_PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
                propSet=[_PC.PropertySpec(type=managed_type, all=False, pathSet=paths)],
            )
            return self.retrieve(spec, page_size)
        finally:
            if not self.broken:  # views die with the session anyway; don't wait on a dead one
                try:
                    self.call("ContainerView.DestroyView", view.DestroyView)
                except ConnectorError:
                    pass

    def custom_field_defs(self) -> list[dict]:
        manager = self.content.customFieldsManager
        if manager is None:  # an ESXi host has no CustomFieldsManager
            return []
        spec = _PC.FilterSpec(
            objectSet=[_PC.ObjectSpec(obj=manager, skip=False)],
            propSet=[_PC.PropertySpec(type=vim.CustomFieldsManager, all=False, pathSet=["field"])],
        )
        contents = self.retrieve(spec, DEFAULT_PAGE_SIZE)
        fields = contents[0]["propSet"].get("field", []) if contents else []
        return [f for f in fields if isinstance(f, dict)]


def _page_size(ctx: FetchContext) -> int:
    raw = ctx.site.settings.get("page_size", DEFAULT_PAGE_SIZE)
    try:
        size = int(raw)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise ctx.fail("settings", f"page_size must be a positive integer, got {raw!r}")
    return size


# -- the contract -------------------------------------------------------------------------------


def fetch(ctx: FetchContext) -> dict:
    """The vSphere payload of `connectors.vsphere` (see its docstring), read from vCenter."""
    page_size = _page_size(ctx)
    with session(ctx) as s:
        payload: dict[str, Any] = {"about": plain(s.content.about) or {}}
        payload["customFieldDefs"] = s.custom_field_defs()
        for key, managed_type, paths in OBJECT_TYPES:
            payload[key] = s.objects_of_type(managed_type, paths, page_size)
    return payload


def check(ctx: FetchContext) -> str:
    """Log in and read the product name: proves endpoint, TLS trust and credentials."""
    with session(ctx) as s:
        full_name = s.content.about.fullName if s.content.about else None
    return f"vCenter {full_name or 'unknown product'}: reachable"
