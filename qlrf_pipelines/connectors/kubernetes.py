"""Kubernetes: API list responses to canonical records.

Payload shape
-------------
One object per list call, exactly as the API server returns it (`kubectl get <kind> -A -o json`,
or the kubernetes client's `ApiClient().sanitize_for_serialization(obj)`, which gives the same
camelCase JSON; note that `to_dict()` gives snake_case keys and must be sanitized instead):

    {
      "version": {"gitVersion": "v1.30.4-eks-a737599"},           # /version
      "nodes": {"kind": "NodeList", "apiVersion": "v1", "items": [...]},
      "namespaces": {"kind": "NamespaceList", "apiVersion": "v1", "items": [...]},
      "deployments": {"kind": "DeploymentList", "apiVersion": "apps/v1", "items": [...]},
      "statefulsets": {"kind": "StatefulSetList", "apiVersion": "apps/v1", "items": [...]},
      "daemonsets": {"kind": "DaemonSetList", "apiVersion": "apps/v1", "items": [...]},
      "cronjobs": {"kind": "CronJobList", "apiVersion": "batch/v1", "items": [...]},
      "pods": {"kind": "PodList", "apiVersion": "v1", "items": [...]}       # optional
    }

`nodes` is required; a missing workload list means "none of that kind". Pods are used only to
find the image digests (`status.containerStatuses[].imageID`) a workload's containers run,
following `metadata.ownerReferences` (ReplicaSet `<deployment>-<hash>`, StatefulSet, DaemonSet,
Job `<cronjob>-<n>`).

Mapping
-------
* Nodes are assets of kind "node". Their image_ref is the machine image they were built from,
  read from the label `eks.amazonaws.com/nodegroup-image` (EKS managed node groups: an AMI id)
  or else `qlrf.io/machine-image`, a label or an annotation set by the node pool's bootstrap
  (an annotation when the id holds '/', like a GCP image path, which label values cannot), so
  node drift is measured against the image ids the VM sites discover.
* Deployments, StatefulSets, DaemonSets and CronJobs are assets of kind "workload" named
  `<namespace>/<name>`; image_ref is the first container's image reference as written, except
  that a reference pinned by tag and digest (`repo:tag@sha256:...`) is named by its tag
  (`repo:tag`): the tag is the image version the catalog knows, the digest pins its content. Every
  container's full reference (and the digest its pods run, when pods are listed) is kept in
  attributes_json `containers` / `initContainers`; disk_encryption is null (not a VM's disks).
* Every distinct container image (named as image_ref names it) under the site's golden registry
  (`settings.golden_registry`, a prefix such as `registry.example.com/golden`, or a list of
  them) becomes an ImageRecord: family = repository path below the prefix, version = tag. The
  API does not know a release status, so status is None; lifecycle comes from the catalog.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, Iterator, Mapping

from qlrf_pipelines.connectors.base import (
    PayloadError,
    compact_json,
    gc_paused,
    get_list,
    get_mapping,
    get_optional_mapping,
    parse_timestamp,
    require,
    require_list,
    to_text,
)
from qlrf_pipelines.models.records import (
    AssetRecord,
    Discovery,
    ImageRecord,
    tags_from_mapping,
    version_sort_key,
)
from qlrf_pipelines.sites import Site

PROVIDER = "kubernetes"

EKS_IMAGE_LABEL = "eks.amazonaws.com/nodegroup-image"
MACHINE_IMAGE_LABEL = "qlrf.io/machine-image"
INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")

# (payload key, workload kind, path from the object to its pod template spec)
WORKLOAD_LISTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("deployments", "Deployment", ("spec", "template", "spec")),
    ("statefulsets", "StatefulSet", ("spec", "template", "spec")),
    ("daemonsets", "DaemonSet", ("spec", "template", "spec")),
    ("cronjobs", "CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
)

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def parse_quantity(value: Any, where: str) -> Decimal | None:
    """A Kubernetes resource quantity ('4', '3920m', '16086712Ki', '1e3') as a number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PayloadError(where, f"not a quantity: {value!r}")
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise PayloadError(where, f"not a quantity: {value!r}")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation:
        raise PayloadError(where, f"not a quantity: {value!r}") from None


def _mapping(obj: Any, key: str, where: str) -> Mapping:
    """obj[key] as an object; an empty one when absent."""
    return get_optional_mapping(get_mapping(obj, where), key, where)


def _string_map(obj: Mapping, key: str, where: str) -> dict[str, str]:
    value = _mapping(obj, key, where)
    return {str(k): to_text(v) for k, v in value.items()}


def _count(obj: Mapping, key: str, where: str, default: int = 0) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if type(value) is not int:
        raise PayloadError(f"{where}.{key}", f"expected an integer, got {value!r}")
    return value


def _items(payload: Mapping, key: str, required: bool = False) -> Iterator[tuple[str, Mapping]]:
    if payload.get(key) is None:
        if required:
            raise PayloadError(key, "required list response is missing")
        return
    items = require_list(payload[key], "items", key)
    for index, item in enumerate(items):
        where = f"{key}.items[{index}]"
        yield where, get_mapping(item, where)


def _first_label(labels: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if labels.get(key):
            return labels[key]
    return None


def _strip_runtime_prefix(image_id: str) -> str:
    # dockershim reported 'docker-pullable://repo@sha256:...'; containerd reports 'repo@sha256:...'.
    return image_id.split("://", 1)[1] if "://" in image_id else image_id


def _pod_digests(payload: Mapping) -> dict[tuple[str, str, str], dict[str, str]]:
    """(namespace, workload kind, workload name) -> {container name: imageID}."""
    digests: dict[tuple[str, str, str], dict[str, str]] = {}
    for where, pod in _items(payload, "pods"):
        metadata = _mapping(pod, "metadata", where)
        namespace = metadata.get("namespace") or ""
        owners = get_list(metadata, "ownerReferences", f"{where}.metadata")
        owner = next((o for o in owners if isinstance(o, Mapping) and o.get("controller")), None)
        if owner is None and owners and isinstance(owners[0], Mapping):
            owner = owners[0]
        if owner is None or not owner.get("kind") or not owner.get("name"):
            continue
        kind, name = str(owner["kind"]), str(owner["name"])
        if kind == "ReplicaSet":
            kind, name = "Deployment", name.rsplit("-", 1)[0]
        elif kind == "Job":
            kind, name = "CronJob", name.rsplit("-", 1)[0]
        status = _mapping(pod, "status", where)
        containers = digests.setdefault((namespace, kind, name), {})
        for index, container_status in enumerate(get_list(status, "containerStatuses", f"{where}.status")):
            status_where = f"{where}.status.containerStatuses[{index}]"
            container_name = require(container_status, "name", status_where)
            image_id = container_status.get("imageID")
            if image_id and container_name not in containers:
                containers[str(container_name)] = _strip_runtime_prefix(str(image_id))
    return digests


def _golden_prefixes(site: Site) -> list[str]:
    setting = site.settings.get("golden_registry")
    if not setting:
        return []
    values = [setting] if isinstance(setting, str) else list(setting)
    return [str(v).rstrip("/") + "/" for v in values if v]


def image_name(reference: str) -> str:
    """The image a reference names: 'repo:tag@sha256:<d>' -> 'repo:tag'. A digest-only reference
    ('repo@sha256:<d>') or a plain one is returned as written."""
    name, at, _digest = reference.partition("@")
    if at and ":" in name.rsplit("/", 1)[-1]:
        return name
    return reference


def golden_image(reference: str, prefixes: list[str]) -> tuple[str, str | None] | None:
    """(family, version) of a container image under one of the golden registry prefixes."""
    for prefix in prefixes:
        if reference.startswith(prefix):
            path = reference[len(prefix):].split("@", 1)[0]
            repository, _, tag = path.rpartition(":")
            if not repository or "/" in tag:  # untagged (a ":" before a "/" would be a port)
                return path, None
            return repository, tag
    return None


def _node(where: str, node: Mapping, site: Site, discovered_at: datetime) -> AssetRecord:
    metadata = require(node, "metadata", where)
    uid = str(require(metadata, "uid", f"{where}.metadata"))
    name = str(require(metadata, "name", f"{where}.metadata"))
    labels = _string_map(metadata, "labels", f"{where}.metadata")
    annotations = _mapping(metadata, "annotations", f"{where}.metadata")
    spec = _mapping(node, "spec", where)
    status = _mapping(node, "status", where)
    info = _mapping(status, "nodeInfo", f"{where}.status")
    capacity = _mapping(status, "capacity", f"{where}.status")

    ready = None
    for index, condition in enumerate(get_list(status, "conditions", f"{where}.status")):
        if require(condition, "type", f"{where}.status.conditions[{index}]") == "Ready":
            ready = condition.get("status")
    # No Ready condition at all means the node was never registered fully: unknown.
    state = "unknown" if ready is None else "running" if ready == "True" else "degraded"

    addresses: dict[str, str] = {}
    for index, address in enumerate(get_list(status, "addresses", f"{where}.status")):
        address_where = f"{where}.status.addresses[{index}]"
        kind = require(address, "type", address_where)
        addresses.setdefault(str(kind), str(require(address, "address", address_where)))

    cpu = parse_quantity(capacity.get("cpu"), f"{where}.status.capacity.cpu")
    memory = parse_quantity(capacity.get("memory"), f"{where}.status.capacity.memory")
    return AssetRecord(
        asset_id=f"{PROVIDER}:{site.id}:{uid}",
        site_id=site.id,
        provider=PROVIDER,
        native_id=uid,
        kind="node",
        name=name,
        state=state,
        discovered_at=discovered_at,
        image_ref=(
            labels.get(EKS_IMAGE_LABEL)
            or labels.get(MACHINE_IMAGE_LABEL)
            or annotations.get(MACHINE_IMAGE_LABEL)
            or None
        ),
        platform=info.get("operatingSystem") or labels.get("kubernetes.io/os"),
        os=info.get("osImage"),
        instance_type=_first_label(labels, INSTANCE_TYPE_LABELS),
        cpu_count=int(cpu.to_integral_value(rounding=ROUND_CEILING)) if cpu is not None else None,
        memory_mb=int(memory // (1024 * 1024)) if memory is not None else None,
        region=_first_label(labels, REGION_LABELS),
        zone=_first_label(labels, ZONE_LABELS),
        network=None,
        private_ip=addresses.get("InternalIP"),
        public_ip=addresses.get("ExternalIP"),
        launched_at=parse_timestamp(metadata.get("creationTimestamp"), f"{where}.metadata.creationTimestamp"),
        tags=tags_from_mapping(labels),
        attributes_json=compact_json(
            {
                "kubeletVersion": info.get("kubeletVersion"),
                "containerRuntimeVersion": info.get("containerRuntimeVersion"),
                "kernelVersion": info.get("kernelVersion"),
                "architecture": info.get("architecture"),
                "providerID": spec.get("providerID"),
                "unschedulable": True if spec.get("unschedulable") else None,
                "ready": ready,
            }
        ),
    )


def _containers(pod_spec: Mapping, key: str, where: str, required: bool) -> list[tuple[str, str]]:
    """[(container name, image)] of a pod spec's containers or initContainers."""
    if required:
        containers = require_list(pod_spec, key, where)
        if not containers:
            raise PayloadError(f"{where}.{key}", "a pod template needs at least one container")
    else:
        containers = get_list(pod_spec, key, where)
    result = []
    for index, container in enumerate(containers):
        container_where = f"{where}.{key}[{index}]"
        image = require(container, "image", container_where)
        if not isinstance(image, str) or not image.strip():
            raise PayloadError(f"{container_where}.image", f"expected an image reference, got {image!r}")
        result.append((str(container.get("name") or f"{key}-{index}"), image.strip()))
    return result


def _workload(
    where: str,
    item: Mapping,
    kind: str,
    template_path: tuple[str, ...],
    site: Site,
    discovered_at: datetime,
    digests: Mapping[tuple[str, str, str], Mapping[str, str]],
) -> tuple[AssetRecord, list[str]]:
    metadata = require(item, "metadata", where)
    uid = str(require(metadata, "uid", f"{where}.metadata"))
    name = str(require(metadata, "name", f"{where}.metadata"))
    namespace = str(require(metadata, "namespace", f"{where}.metadata"))
    labels = _string_map(metadata, "labels", f"{where}.metadata")
    spec = _mapping(item, "spec", where)
    status = _mapping(item, "status", where)

    pod_spec: Any = item
    pod_where = where
    for key in template_path:
        pod_spec = require(pod_spec, key, pod_where)
        pod_where = f"{pod_where}.{key}"
    containers = _containers(pod_spec, "containers", pod_where, required=True)
    init_containers = _containers(pod_spec, "initContainers", pod_where, required=False)

    extra: dict[str, Any] = {}
    if kind == "CronJob":
        desired = ready = None
        state = "stopped" if spec.get("suspend") else "running"
        extra = {
            "schedule": spec.get("schedule"),
            "suspend": bool(spec.get("suspend")),
            "lastScheduleTime": status.get("lastScheduleTime"),
        }
    else:
        if kind == "DaemonSet":
            desired = _count(status, "desiredNumberScheduled", f"{where}.status")
            ready = _count(status, "numberReady", f"{where}.status")
        else:
            desired = _count(spec, "replicas", f"{where}.spec", default=1)  # the API's default
            ready = _count(status, "readyReplicas", f"{where}.status")
        state = "stopped" if desired == 0 else "running" if ready >= desired else "degraded"

    pod_digests = digests.get((namespace, kind, name), {})
    node_selector = _mapping(pod_spec, "nodeSelector", pod_where)
    asset = AssetRecord(
        asset_id=f"{PROVIDER}:{site.id}:{uid}",
        site_id=site.id,
        provider=PROVIDER,
        native_id=uid,
        kind="workload",
        name=f"{namespace}/{name}",
        state=state,
        discovered_at=discovered_at,
        image_ref=image_name(containers[0][1]),
        platform=node_selector.get("kubernetes.io/os"),
        network=namespace,
        launched_at=parse_timestamp(metadata.get("creationTimestamp"), f"{where}.metadata.creationTimestamp"),
        tags=tags_from_mapping(labels),
        attributes_json=compact_json(
            {
                "kind": kind,
                "namespace": namespace,
                "containers": [
                    {"name": c, "image": image, **({"imageID": pod_digests[c]} if c in pod_digests else {})}
                    for c, image in containers
                ],
                "initContainers": [{"name": c, "image": image} for c, image in init_containers] or None,
                "replicas": desired,
                "readyReplicas": ready,
                **extra,
            }
        ),
    )
    return asset, [image_name(image) for _, image in containers + init_containers]


@gc_paused()
def normalize(payload: Mapping, site: Site, discovered_at: datetime) -> Discovery:
    """Canonical records of one site from its payload; PayloadError names a malformed record."""
    payload = get_mapping(payload, "$")
    digests = _pod_digests(payload)
    prefixes = _golden_prefixes(site)

    assets: list[AssetRecord] = []
    referenced: set[str] = set()
    for key, kind, template_path in WORKLOAD_LISTS:
        for where, item in _items(payload, key):
            asset, images = _workload(where, item, kind, template_path, site, discovered_at, digests)
            assets.append(asset)
            referenced.update(images)
    for where, node in _items(payload, "nodes", required=True):
        assets.append(_node(where, node, site, discovered_at))

    images: list[ImageRecord] = []
    for reference in sorted(referenced):
        golden = golden_image(reference, prefixes)
        if golden is None:
            continue
        family, version = golden
        images.append(
            ImageRecord(
                provider_image_id=reference,
                site_id=site.id,
                provider=PROVIDER,
                name=reference,
                discovered_at=discovered_at,
                family=family,
                version=version,
                version_key=version_sort_key(version),
                status=None,
                created_at=None,
            )
        )
    return Discovery(assets=assets, images=images)
