"""The action catalogue: for each provider, what `replace_image` and `restore_image` call and which
permissions they need (the cloud-custodian rule: every action declares its permissions and can be
shown as a dry run before anything changes).

An action is rendered for one target as the exact API call(s) a real backend would make, so the
dry run a person approves is the change that would happen. `restore_image` is `replace_image`
towards the asset's original image (`from_image_ref`).

The plan's TargetAsset does not carry every coordinate a call needs (Azure resource id, GCP
project / zone, a Kubernetes workload's kind and container name); those come as *hints*
(`action_hints` in `qlrf_pipelines.execution.lake_view` reads them from the latest lake snapshot).
A coordinate that is still unknown is rendered as `<placeholder>` and listed in
`PlannedAction.unresolved`: fine for a dry run, and a real backend must refuse such an action.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Mapping

from qlrf_pipelines.planning.plan import TargetAsset

ActionName = Literal["replace_image", "restore_image"]
ACTIONS: tuple[str, ...] = ("replace_image", "restore_image")
AZURE_API_VERSION = "2024-07-01"


class UnsupportedAction(ValueError):
    """This action cannot be planned for this target (unknown provider or action, no image to move
    to, a Kubernetes node rather than a workload)."""


@dataclass(frozen=True)
class PlannedAction:
    provider: str
    action: str
    asset_id: str
    call: str  # the exact API call(s), in order, separated by "; "
    permissions: list[str]
    from_ref: str | None  # the image the asset runs before the action
    to_ref: str | None  # the image it runs after the action
    context: dict[str, str] = field(default_factory=dict)  # region, project, zone, content type ...
    unresolved: list[str] = field(default_factory=list)  # coordinates rendered as placeholders

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ActionSpec:
    """One catalogue entry: what an action does at a provider and the permissions it needs."""

    provider: str
    action: str
    description: str
    permissions: tuple[str, ...]


_REPLACE: dict[str, tuple[str, tuple[str, ...]]] = {
    "aws": (
        "Replace the root volume from the target AMI (EC2 replace-root-volume task; the instance "
        "reboots, keeps its id, IPs and data volumes; the old root volume is kept).",
        ("ec2:CreateReplaceRootVolumeTask", "ec2:DescribeReplaceRootVolumeTasks", "ec2:DescribeInstances"),
    ),
    "azure": (
        "Point the VM's storageProfile.imageReference at the target image (old OS disk kept: "
        "deleteOption Detach), then reimage the OS disk.",
        (
            "Microsoft.Compute/virtualMachines/read",
            "Microsoft.Compute/virtualMachines/write",
            "Microsoft.Compute/virtualMachines/reimage/action",
        ),
    ),
    "gcp": (
        "Stop the instance, create a boot disk from the target image, swap it in as the boot disk "
        "(the old disk is detached, not deleted), start the instance.",
        (
            "compute.instances.get",
            "compute.instances.stop",
            "compute.disks.create",
            "compute.images.useReadOnly",
            "compute.instances.detachDisk",
            "compute.instances.attachDisk",
            "compute.disks.use",
            "compute.instances.start",
        ),
    ),
    "vsphere": (
        "Power off and rename the VM (kept for rollback), clone a VM of the same name from the "
        "target template into the same pool and host, tag its source template, power it on.",
        (
            "VirtualMachine.Interact.PowerOff",
            "VirtualMachine.Config.Rename",
            "VirtualMachine.Provisioning.DeployTemplate",
            "VirtualMachine.Inventory.CreateFromExisting",
            "Resource.AssignVMToPool",
            "Datastore.AllocateSpace",
            "Global.SetCustomField",
            "VirtualMachine.Interact.PowerOn",
        ),
    ),
    "kubernetes": (
        "Strategic-merge PATCH of the workload's pod template container image (a rolling update).",
        (
            "apps/deployments: get, patch",
            "apps/statefulsets: get, patch",
            "apps/daemonsets: get, patch",
            "batch/cronjobs: get, patch",
        ),
    ),
}

CATALOGUE: dict[tuple[str, str], ActionSpec] = {}
for _provider, (_description, _permissions) in _REPLACE.items():
    CATALOGUE[(_provider, "replace_image")] = ActionSpec(_provider, "replace_image", _description, _permissions)
    CATALOGUE[(_provider, "restore_image")] = ActionSpec(
        _provider, "restore_image", "The same calls towards the asset's original image.", _permissions
    )
PROVIDERS: tuple[str, ...] = tuple(_REPLACE)


def action_spec(provider: str, action: str) -> ActionSpec:
    try:
        return CATALOGUE[(provider, action)]
    except KeyError:
        raise UnsupportedAction(f"no action {action!r} for provider {provider!r}") from None


def permissions_for(provider: str) -> list[str]:
    """Every permission a provider's remediation (replace and restore) needs, for docs and roles."""
    if provider not in _REPLACE:
        raise UnsupportedAction(f"no actions for provider {provider!r}")
    seen: dict[str, None] = {}
    for action in ACTIONS:
        seen.update(dict.fromkeys(CATALOGUE[(provider, action)].permissions))
    return list(seen)


class _Coords:
    """Hint lookup that renders a placeholder (and remembers it) when a coordinate is unknown."""

    def __init__(self, hints: Mapping[str, str] | None):
        self.hints = dict(hints or {})
        self.unresolved: list[str] = []

    def get(self, key: str, default: str | None = None) -> str:
        value = self.hints.get(key) or default
        if value:
            return str(value)
        if key not in self.unresolved:
            self.unresolved.append(key)
        return f"<{key}>"


def _native_id(target: TargetAsset) -> str:
    """asset_id is '<provider>:<site>:<native id>' (see the connectors)."""
    parts = target.asset_id.split(":", 2)
    return parts[2] if len(parts) == 3 else target.asset_id


def _aws(target: TargetAsset, image: str, coords: _Coords) -> tuple[str, dict[str, str]]:
    call = (
        f"ec2.create_replace_root_volume_task(InstanceId={_native_id(target)!r}, "
        f"ImageId={image!r}, DeleteReplacedRootVolume=False)"
    )
    # The region picks the client, not the call: without a hint the site's own region is used.
    return call, {"region": coords.hints.get("region") or ""}


def _azure_image_reference(image: str) -> dict[str, str]:
    if image.startswith("/"):
        return {"id": image}
    parts = image.split(":")
    if len(parts) == 4:  # marketplace publisher:offer:sku:version, as the connector writes it
        return dict(zip(("publisher", "offer", "sku", "version"), parts))
    return {"id": image}


def _azure(target: TargetAsset, image: str, coords: _Coords) -> tuple[str, dict[str, str]]:
    resource_id = coords.hints.get("resource_id")
    if not resource_id:
        resource_id = (
            f"/subscriptions/{coords.get('subscription')}/resourceGroups/{coords.get('resource_group')}"
            f"/providers/Microsoft.Compute/virtualMachines/{target.name}"
        )
    # deleteOption Detach keeps the old OS disk after the reimage, for a manual recovery.
    storage = {"imageReference": _azure_image_reference(image), "osDisk": {"deleteOption": "Detach"}}
    body = {"properties": {"storageProfile": storage}}
    base = f"https://management.azure.com{resource_id}"
    call = (
        f"PATCH {base}?api-version={AZURE_API_VERSION} {_json(body)}; "
        f"POST {base}/reimage?api-version={AZURE_API_VERSION} {{}}"
    )
    return call, {}


_GCP_DISK_NAME = re.compile(r"[^a-z0-9-]")


def _gcp_disk_name(instance: str, image: str) -> str:
    name = _GCP_DISK_NAME.sub("-", f"{instance}-{image.rsplit('/', 1)[-1]}".lower())
    return name[:63].rstrip("-")


def _gcp(target: TargetAsset, image: str, coords: _Coords) -> tuple[str, dict[str, str]]:
    project, zone, name = coords.get("project"), coords.get("zone"), target.name
    where = f"project={project!r}, zone={zone!r}"
    disk = _gcp_disk_name(name, image)
    calls = [
        f"instances.get({where}, instance={name!r})",
        f"instances.stop({where}, instance={name!r})",
        f"disks.insert({where}, disk_resource={{'name': {disk!r}, 'source_image': {image!r}}})",
        f"instances.detach_disk({where}, instance={name!r}, device_name=<boot disk deviceName from instances.get>)",
        f"instances.attach_disk({where}, instance={name!r}, attached_disk_resource="
        f"{{'source': {f'projects/{project}/zones/{zone}/disks/{disk}'!r}, 'boot': True}})",
        f"instances.start({where}, instance={name!r})",
    ]
    return "; ".join(calls), {"project": project, "zone": zone}


def _vsphere(target: TargetAsset, image: str, coords: _Coords) -> tuple[str, dict[str, str]]:
    uuid, name = _native_id(target), target.name
    calls = [
        f"vm = content.searchIndex.FindByUuid(uuid={uuid!r}, vmSearch=True, instanceUuid=True)",
        "vm.PowerOffVM_Task()",
        f"vm.Rename_Task(newName={name + '.qlrf-replaced'!r})",
        f"new_vm = <template {image!r}>.CloneVM_Task(folder=vm.parent, name={name!r}, "
        "spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=vm.resourcePool, host=vm.runtime.host), "
        "powerOn=False))",
        f"new_vm.setCustomValue(key='qlrf.source-template', value={image!r})",
        "new_vm.PowerOnVM_Task()",
    ]
    return "; ".join(calls), {}


_K8S_PATHS = {  # plural -> (api group path, path to the pod spec)
    "deployments": ("/apis/apps/v1", ("spec", "template", "spec")),
    "statefulsets": ("/apis/apps/v1", ("spec", "template", "spec")),
    "daemonsets": ("/apis/apps/v1", ("spec", "template", "spec")),
    "cronjobs": ("/apis/batch/v1", ("spec", "jobTemplate", "spec", "template", "spec")),
}


def _kubernetes(target: TargetAsset, image: str, coords: _Coords) -> tuple[str, dict[str, str]]:
    if "/" not in target.name:
        raise UnsupportedAction(
            f"{target.asset_id} ({target.name}) is a Kubernetes node: its machine image is changed "
            "through its node pool at the cloud site, not through the Kubernetes API"
        )
    namespace, name = target.name.split("/", 1)
    kind = coords.get("workload_kind")
    if kind not in _K8S_PATHS and kind != "<workload_kind>":
        raise UnsupportedAction(f"{target.asset_id}: unknown workload kind {kind!r}")
    group, pod_path = _K8S_PATHS.get(kind, ("/apis/apps/v1", ("spec", "template", "spec")))
    body: dict = {"containers": [{"name": coords.get("container"), "image": image}]}
    for key in reversed(pod_path):
        body = {key: body}
    call = f"PATCH {group}/namespaces/{namespace}/{kind}/{name} {_json(body)}"
    return call, {"content_type": "application/strategic-merge-patch+json"}


def _json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


_RENDERERS: dict[str, Callable[[TargetAsset, str, _Coords], tuple[str, dict[str, str]]]] = {
    "aws": _aws,
    "azure": _azure,
    "gcp": _gcp,
    "vsphere": _vsphere,
    "kubernetes": _kubernetes,
}


def planned_action(target: TargetAsset, action: str, hints: Mapping[str, str] | None = None) -> PlannedAction:
    """The exact call `action` makes for `target`; raises UnsupportedAction when it cannot be made."""
    spec = action_spec(target.provider, action)
    renderer = _RENDERERS[target.provider]
    if action == "replace_image":
        from_ref, to_ref = target.from_image_ref, target.to_image_ref
        if not to_ref:
            raise UnsupportedAction(
                f"{target.asset_id}: {target.to_image_id} is not published at site {target.site_id}"
            )
    else:
        from_ref, to_ref = target.to_image_ref, target.from_image_ref
        if not to_ref:
            raise UnsupportedAction(f"{target.asset_id}: its original image is unknown, so it cannot be restored")
    coords = _Coords(hints)
    call, context = renderer(target, to_ref, coords)
    return PlannedAction(
        provider=target.provider,
        action=action,
        asset_id=target.asset_id,
        call=call,
        permissions=list(spec.permissions),
        from_ref=from_ref,
        to_ref=to_ref,
        context={k: v for k, v in context.items() if v and not v.startswith("<")},
        unresolved=coords.unresolved,
    )
