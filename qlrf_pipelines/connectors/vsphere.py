"""vSphere: property-collector results to canonical records.

Payload shape
-------------
A live connector runs one PropertyCollector `RetrievePropertiesEx` pass per managed object type
(pyvmomi `vmodl.query.PropertyCollector.FilterSpec` over a container view) and flattens each
`ObjectContent` into `{"obj": <moref id>, "propSet": {<property path>: <value>}}`. Managed
object references are written as their moref ids (`"host-21"`), data objects as plain dicts,
datetimes as ISO 8601 strings. Properties vCenter does not return (unset values) are absent.

    {
      "about": {"fullName": "VMware vCenter Server 8.0.2 build-22617221", "instanceUuid": "..."},
      "customFieldDefs": [{"key": 101, "name": "qlrf.family", "managedObjectType": "VirtualMachine"}],
      "Datacenter": [{"obj": "datacenter-3", "propSet": {"name": "dc1-frankfurt"}}],
      "ClusterComputeResource": [{"obj": "domain-c7", "propSet": {"name": "cl01", "host": ["host-21"]}}],
      "HostSystem": [{"obj": "host-21", "propSet": {"name": "esx01...", "parent": "domain-c7",
                                                     "summary.config.product.fullName": "VMware ESXi 8.0.2 ..."}}],
      "Datastore": [{"obj": "datastore-11", "propSet": {"name": "vsanDatastore", "summary.type": "vsan"}}],
      "Network": [{"obj": "network-31", "propSet": {"name": "VM Network"}}],
      "VirtualMachine": [{"obj": "vm-1001", "propSet": {
          "name": "app-01", "config.template": false, "config.instanceUuid": "5003...",
          "config.guestFullName": "Ubuntu Linux (64-bit)", "config.guestId": "ubuntu64Guest",
          "config.hardware.numCPU": 4, "config.hardware.memoryMB": 8192,
          "config.createDate": "2026-07-08T09:12:00Z", "config.annotation": "...",
          "config.keyId": {"keyId": "9d1c...", "providerId": {"id": "kms-dc1"}},   # encrypted VMs only
          "runtime.powerState": "poweredOn", "runtime.host": "host-21",
          "guest.toolsRunningStatus": "guestToolsRunning", "guest.toolsVersionStatus2": "guestToolsCurrent",
          "guest.ipAddress": "10.20.1.15", "network": ["network-31"], "datastore": ["datastore-11"],
          "customValue": [{"key": 104, "value": "tpl-ubuntu-22-04-base-1-3-0"}]}}]
    }

Only `VirtualMachine` is required; the other lists resolve morefs to names and may be absent.

Mapping
-------
* Templates (`config.template` true) are ImageRecords keyed by template name; the custom
  attributes `qlrf.family`, `qlrf.version`, `qlrf.status` make a template a golden image;
  `qlrf.parent-image` (or `qlrf.parent-family` + `qlrf.parent-version`) and
  `qlrf.parent-relation` name the template it was built from (see base.image_parent).
* Other VMs are AssetRecords of kind "vm"; the custom attribute `qlrf.source-template` names
  the template a VM was cloned from and becomes `image_ref`. All custom attributes (names
  resolved through `customFieldDefs`) become tags.
* region is the site's location (the datacenter); zone is the cluster of the VM's host.
* disk_encryption: "customer_managed" when the VM is encrypted (vSphere VM Encryption,
  `config.keyId` set: its disks are encrypted with a key from the customer's key provider, whose
  id goes to attributes_json), else "none"; null for a VM without config (inaccessible).
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping

from qlrf_pipelines.connectors.base import (
    ENCRYPTION_CUSTOMER,
    ENCRYPTION_NONE,
    PayloadError,
    compact_json,
    gc_paused,
    get_mapping,
    image_parent,
    parse_timestamp,
    require,
)
from qlrf_pipelines.models.records import (
    IMAGE_STATUSES,
    AssetRecord,
    Discovery,
    ImageRecord,
    tags_from_mapping,
    version_sort_key,
)
from qlrf_pipelines.sites import Site

PROVIDER = "vsphere"

FAMILY_ATTRIBUTE = "qlrf.family"
VERSION_ATTRIBUTE = "qlrf.version"
STATUS_ATTRIBUTE = "qlrf.status"
SOURCE_TEMPLATE_ATTRIBUTE = "qlrf.source-template"

POWER_STATES = {"poweredOn": "running", "poweredOff": "stopped", "suspended": "stopped"}

_OBJECT_TYPES = ("Datacenter", "ClusterComputeResource", "HostSystem", "Datastore", "Network")


def _object_list(payload: Mapping, key: str, required: bool = False) -> list:
    value = payload.get(key)
    if value is None:
        if required:
            raise PayloadError(key, "required list of ObjectContent is missing")
        return []
    if not isinstance(value, list):
        raise PayloadError(key, f"expected a list, got {type(value).__name__}")
    return value


def _contents(payload: Mapping, key: str, required: bool = False):
    """Yield (where of the propSet, moref, propSet) for every ObjectContent of one type."""
    for index, content in enumerate(_object_list(payload, key, required)):
        where = f"{key}[{index}]"
        moref = require(content, "obj", where)
        if type(moref) is not str:
            raise PayloadError(f"{where}.obj", f"expected a moref id string, got {type(moref).__name__}")
        props = get_mapping(require(content, "propSet", where), f"{where}.propSet")
        yield f"{where}.propSet", moref, props


def _str(props: Mapping, key: str, where: str, required: bool = False) -> str | None:
    value = require(props, key, where) if required else props.get(key)
    if value is None or type(value) is str:
        return value
    if not isinstance(value, str):
        raise PayloadError(f"{where}.{key}", f"expected a string, got {type(value).__name__}")
    return value


def _int(props: Mapping, key: str, where: str) -> int | None:
    value = props.get(key)
    if value is None:
        return None
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise PayloadError(f"{where}.{key}", "expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise PayloadError(f"{where}.{key}", f"expected an integer, got {value!r}")


def _moref_list(props: Mapping, key: str, where: str) -> list[str]:
    value = props.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PayloadError(f"{where}.{key}", "expected a list of moref ids")
    return value


def _field_names(payload: Mapping) -> dict[int, str]:
    defs = payload.get("customFieldDefs")
    if defs is None:
        return {}
    if not isinstance(defs, list):
        raise PayloadError("customFieldDefs", f"expected a list, got {type(defs).__name__}")
    names: dict[int, str] = {}
    for index, definition in enumerate(defs):
        where = f"customFieldDefs[{index}]"
        key = require(definition, "key", where)
        name = require(definition, "name", where)
        if isinstance(key, bool) or not isinstance(key, int):
            raise PayloadError(f"{where}.key", f"expected an integer, got {key!r}")
        names[key] = str(name)
    return names


def _custom_values(props: Mapping, where: str, field_names: Mapping[int, str]) -> dict[str, str]:
    values = props.get("customValue")
    if values is None:
        return {}
    if not isinstance(values, list):
        raise PayloadError(f"{where}.customValue", f"expected a list, got {type(values).__name__}")
    result: dict[str, str] = {}
    for index, entry in enumerate(values):
        entry_where = f"{where}.customValue[{index}]"
        key = require(entry, "key", entry_where)
        if type(key) is not int:
            raise PayloadError(f"{entry_where}.key", f"expected an integer, got {key!r}")
        value = entry.get("value")
        # A key without a definition is kept under its number rather than silently dropped.
        result[field_names.get(key, str(key))] = "" if value is None else str(value)
    return result


def _encryption(props: Mapping, where: str) -> tuple[str, str | None]:
    """(disk_encryption, key provider id) of a VM that has a config."""
    key = props.get("config.keyId")
    if key is None:
        return ENCRYPTION_NONE, None
    key = get_mapping(key, f"{where}.config.keyId")
    provider = key.get("providerId")
    provider_id = provider.get("id") if isinstance(provider, Mapping) else None
    if not key.get("keyId") and not provider_id:
        return ENCRYPTION_NONE, None
    return ENCRYPTION_CUSTOMER, str(provider_id) if provider_id else None


def _platform(guest_id: str | None) -> str | None:
    if not guest_id:
        return None
    return "windows" if guest_id.lower().startswith("windows") else "linux"


@gc_paused()
def normalize(payload: Mapping, site: Site, discovered_at: datetime) -> Discovery:
    """Canonical records of one site from its payload; PayloadError names a malformed record."""
    payload = get_mapping(payload, "$")

    field_names = _field_names(payload)

    names: dict[str, dict[str, str | None]] = {}
    for object_type in _OBJECT_TYPES:
        table: dict[str, str | None] = {}
        for where, moref, props in _contents(payload, object_type):
            table[moref] = _str(props, "name", where)
        names[object_type] = table

    host_cluster: dict[str, str] = {}
    for where, moref, props in _contents(payload, "ClusterComputeResource"):
        for host in _moref_list(props, "host", where):
            host_cluster[host] = moref
    for where, moref, props in _contents(payload, "HostSystem"):
        parent = props.get("parent")
        if isinstance(parent, str) and parent in names["ClusterComputeResource"]:
            host_cluster.setdefault(moref, parent)

    # VMs do not name their datacenter directly (that takes a folder walk); with one
    # datacenter per vCenter, which is the common case, it is recorded on every VM.
    datacenters = [n for n in names["Datacenter"].values() if n]
    datacenter = datacenters[0] if len(datacenters) == 1 else None
    hosts = names["HostSystem"]
    clusters = names["ClusterComputeResource"]
    networks = names["Network"]
    datastores = names["Datastore"]

    assets: list[AssetRecord] = []
    images: list[ImageRecord] = []
    for prop_where, moref, props in _contents(payload, "VirtualMachine", required=True):
        name = _str(props, "name", prop_where, required=True)
        is_template = props.get("config.template")
        if is_template not in (True, False, None):
            raise PayloadError(f"{prop_where}.config.template", f"expected a boolean, got {is_template!r}")
        attributes = _custom_values(props, prop_where, field_names)
        guest_id = _str(props, "config.guestId", prop_where)
        guest_name = _str(props, "config.guestFullName", prop_where)
        created = parse_timestamp(props.get("config.createDate"), f"{prop_where}.config.createDate")

        if is_template:
            version = attributes.get(VERSION_ATTRIBUTE) or None
            status = (attributes.get(STATUS_ATTRIBUTE) or "").strip().lower()
            parent_image, parent_relation = image_parent(attributes)
            images.append(
                ImageRecord(
                    provider_image_id=name,
                    site_id=site.id,
                    provider=PROVIDER,
                    name=name,
                    discovered_at=discovered_at,
                    family=attributes.get(FAMILY_ATTRIBUTE) or None,
                    version=version,
                    version_key=version_sort_key(version),
                    status=status if status in IMAGE_STATUSES else None,
                    region=site.location,
                    platform=_platform(guest_id),
                    os=guest_name,
                    created_at=created,
                    tags=tags_from_mapping(attributes),
                    parent_image=parent_image,
                    parent_relation=parent_relation,
                )
            )
            continue

        if not any(key.startswith("config.") for key in props):
            # An inaccessible or orphaned VM (its files are gone or its host is down) has no
            # config at all on a real vCenter: keep it, by moref, rather than fail the site.
            instance_uuid = f"moref-{moref}"
            encryption, key_provider = None, None
        else:
            instance_uuid = _str(props, "config.instanceUuid", prop_where, required=True)
            encryption, key_provider = _encryption(props, prop_where)
        power_state = _str(props, "runtime.powerState", prop_where)
        host = _str(props, "runtime.host", prop_where)
        cluster = host_cluster.get(host) if host else None
        vm_networks = _moref_list(props, "network", prop_where)
        vm_datastores = _moref_list(props, "datastore", prop_where)
        annotation = _str(props, "config.annotation", prop_where)
        assets.append(
            AssetRecord(
                asset_id=f"{PROVIDER}:{site.id}:{instance_uuid}",
                site_id=site.id,
                provider=PROVIDER,
                native_id=instance_uuid,
                kind="vm",
                name=name,
                state=POWER_STATES.get(power_state or "", "unknown"),
                discovered_at=discovered_at,
                image_ref=attributes.get(SOURCE_TEMPLATE_ATTRIBUTE) or None,
                platform=_platform(guest_id),
                os=guest_name,
                cpu_count=_int(props, "config.hardware.numCPU", prop_where),
                memory_mb=_int(props, "config.hardware.memoryMB", prop_where),
                region=site.location,
                zone=(clusters.get(cluster) or cluster) if cluster else None,
                network=(networks.get(vm_networks[0]) or vm_networks[0]) if vm_networks else None,
                private_ip=_str(props, "guest.ipAddress", prop_where),
                disk_encryption=encryption,
                launched_at=None,
                tags=tags_from_mapping(attributes),
                attributes_json=compact_json(
                    {
                        "moref": moref,
                        "datacenter": datacenter,
                        "host": (hosts.get(host) or host) if host else None,
                        "cluster": (clusters.get(cluster) or cluster) if cluster else None,
                        "toolsRunningStatus": props.get("guest.toolsRunningStatus"),
                        "toolsVersionStatus2": props.get("guest.toolsVersionStatus2"),
                        "guestId": guest_id,
                        "createDate": created.isoformat() if created else None,
                        "datastores": [datastores.get(d) or d for d in vm_datastores] or None,
                        "annotation": annotation or None,
                        "keyProvider": key_provider,
                    }
                ),
            )
        )
    images.sort(key=lambda image: image.provider_image_id)
    return Discovery(assets=assets, images=images)
