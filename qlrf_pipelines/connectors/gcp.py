"""GCP: Compute Engine API responses to canonical records.

Payload shape
-------------
A live connector calls, for the site's project (`site.account`), `instances.aggregatedList`,
`disks.aggregatedList` and `images.list`, and stores each response under the method name in the
Compute REST JSON shape (camelCase, int64 as strings, resources referenced by full URL), with the
pages' `items` merged. With google-cloud-compute that is
`type(m).to_dict(m, preserving_proto_field_name=False)` of each resource:

    {
      "instances.aggregatedList": {"items": {
          "zones/europe-west1-b": {"instances": [{
              "id": "4817263547162534817", "name": "web-prod-0042",
              "zone": "https://www.googleapis.com/compute/v1/projects/<p>/zones/europe-west1-b",
              "machineType": "https://www.googleapis.com/compute/v1/projects/<p>/zones/europe-west1-b/machineTypes/n2-standard-4",
              "status": "RUNNING", "creationTimestamp": "2026-10-05T00:12:33.123-07:00",
              "labels": {"env": "prod"}, "tags": {"items": ["http-server"]},
              "networkInterfaces": [{"name": "nic0", "network": ".../global/networks/<net>",
                                     "subnetwork": ".../regions/<r>/subnetworks/<sub>", "networkIP": "10.132.0.5",
                                     "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "natIP": "34.76.1.2"}]}],
              "disks": [{"boot": true, "deviceName": "persistent-disk-0",
                         "source": ".../projects/<p>/zones/europe-west1-b/disks/web-prod-0042",
                         "licenses": [".../projects/ubuntu-os-cloud/global/licenses/ubuntu-2204-lts"],
                         "guestOsFeatures": [{"type": "UEFI_COMPATIBLE"}]}]}]},
          "zones/europe-west1-c": {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "..."}}}},
      "disks.aggregatedList": {"items": {
          "zones/europe-west1-b": {"disks": [{
              "name": "web-prod-0042", "selfLink": ".../projects/<p>/zones/europe-west1-b/disks/web-prod-0042",
              "sourceImage": ".../projects/<p>/global/images/golden-ubuntu-22-04-base-1-3-0",
              "sourceImageId": "123...", "sizeGb": "20", "type": ".../diskTypes/pd-balanced",
              "diskEncryptionKey": {"kmsKeyName": "projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>/cryptoKeyVersions/1"}
              }]}}},                                  # diskEncryptionKey only with CMEK ({"sha256": ...} with CSEK)
      "images.list": {"items": [{
          "id": "123...", "name": "golden-ubuntu-22-04-base-1-3-0", "selfLink": ".../projects/<p>/global/images/...",
          "family": "ubuntu-22-04-base", "creationTimestamp": "...", "status": "READY",
          "labels": {"qlrf-family": "ubuntu-22_04-base", "qlrf-version": "1_3_0", "qlrf-status": "production"},
          "deprecated": {"state": "DEPRECATED", "replacement": "..."}}]}   # deprecated is optional
    }

Only `instances.aggregatedList` is required.

GCP label values may hold only lowercase letters, digits, '-' and '_', and image family names
cannot hold '.', so the labels `qlrf-version` and `qlrf-family` write '.' as '_' ("1_3_0",
"ubuntu-22_04-base") and are read back with '_' as '.'; values that already contain '.' are
taken as they are. The lineage labels `qlrf-parent-family` / `qlrf-parent-version` are read the
same way; `qlrf-parent-relation` is read as written (its values, e.g. "patched_from", hold '_'
legitimately).

Mapping
-------
* Instances are AssetRecords of kind "vm": asset_id `gcp:<site>:<id>`, image_ref the boot disk's
  source image as `projects/<project>/global/images/<name>`, region from the zone
  (europe-west1-b -> europe-west1), instance_type the machine type name, network the VPC name.
  Status TERMINATED means stopped in GCP; REPAIRING is "degraded".
* disk_encryption is the weakest of the instance's attached disks. Compute Engine encrypts every
  disk at rest, so a disk is "platform_managed" unless it (its entry in `instances[].disks`, or
  its resource in `disks.aggregatedList`) carries a `diskEncryptionKey` with a Cloud KMS key
  (`kmsKeyName`, CMEK) or a customer-supplied key (`sha256`, CSEK): "customer_managed". Null for
  an instance without disks.
* Images are ImageRecords keyed by `projects/<project>/global/images/<name>`: family from the
  label `qlrf-family` else the `family` field, version from `qlrf-version`, status from
  `qlrf-status`, overridden by `deprecated.state` (DEPRECATED -> deprecated unless already
  revoked, OBSOLETE / DELETED -> revoked). Images are global: region is empty. The labels
  `qlrf-parent-family` + `qlrf-parent-version` (+ `qlrf-parent-relation`) name the golden image
  it was built from as parent_image `family@version` (see base.image_parent).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping as AbcMapping
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from qlrf_pipelines.connectors.base import (
    EMPTY,
    ENCRYPTION_CUSTOMER,
    ENCRYPTION_PLATFORM,
    PayloadError,
    TagCache,
    compact_json,
    gc_paused,
    get_list,
    get_mapping,
    get_str,
    get_str_map,
    image_parent,
    last_segment,
    parse_timestamp,
    weakest_encryption,
)
from qlrf_pipelines.models.records import (
    GCP_FAMILY_LABEL,
    GCP_PARENT_FAMILY_LABEL,
    GCP_PARENT_RELATION_LABEL,
    GCP_PARENT_VERSION_LABEL,
    GCP_STATUS_LABEL,
    GCP_VERSION_LABEL,
    IMAGE_STATUSES,
    PARENT_FAMILY_TAG,
    PARENT_RELATION_TAG,
    PARENT_VERSION_TAG,
    AssetRecord,
    Discovery,
    ImageRecord,
    tags_from_mapping,
    version_sort_key,
)
from qlrf_pipelines.sites import Site

PROVIDER = "gcp"

INSTANCE_STATES = {
    "PROVISIONING": "pending",
    "STAGING": "pending",
    "RUNNING": "running",
    "STOPPING": "stopped",
    "STOPPED": "stopped",
    "SUSPENDING": "stopped",
    "SUSPENDED": "stopped",
    "TERMINATED": "stopped",  # GCP's TERMINATED is a stopped instance; deleted ones disappear
    "REPAIRING": "degraded",
}

_API_PREFIX = re.compile(r"^https?://[^/]+/compute/(?:v1|beta|alpha)/")
_PREDEFINED_TYPE = re.compile(r"^[a-z0-9]+-[a-z]+(?:-[a-z]+)?-(\d+)(?:-[a-z]+)?$")
_CUSTOM_TYPE = re.compile(r"^(?:[a-z0-9]+-)?custom-(\d+)-(\d+)(?:-ext)?$")
_SHARED_CORE_CPUS = {"e2-micro": 2, "e2-small": 2, "e2-medium": 2, "f1-micro": 1, "g1-small": 1}
_V1_PREFIX = "https://www.googleapis.com/compute/v1/"


def resource_path(url: str) -> str:
    """A Compute resource URL without the API prefix: 'projects/p/global/images/x'."""
    if url.startswith(_V1_PREFIX):
        return url[len(_V1_PREFIX):]
    return _API_PREFIX.sub("", url.strip())


def _label_value(value: str | None) -> str | None:
    """Read back a label value written with '_' for '.' (see the module docstring)."""
    if not value:
        return None
    return value if "." in value else value.replace("_", ".")


def _parent(labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(parent image, relation) from the lineage labels: family and version decoded like
    qlrf-family / qlrf-version, the relation as written."""
    family = _label_value(labels.get(GCP_PARENT_FAMILY_LABEL))
    version = _label_value(labels.get(GCP_PARENT_VERSION_LABEL))
    if not family and not version:
        return None, None
    lineage = {PARENT_FAMILY_TAG: family or "", PARENT_VERSION_TAG: version or ""}
    relation = labels.get(GCP_PARENT_RELATION_LABEL)
    if relation:
        lineage[PARENT_RELATION_TAG] = relation
    return image_parent(lineage)


def _utc(value: datetime | None) -> datetime | None:
    """Compute Engine writes timestamps in US Pacific time; records carry UTC."""
    return value.astimezone(timezone.utc) if value is not None else None


def _aggregated(
    payload: Mapping, method: str, kind: str, required: bool = False
) -> Iterator[tuple[str, str, Mapping]]:
    """Yield (where, scope, resource) from an aggregatedList response; scopes with only a
    `warning` (NO_RESULTS_ON_PAGE, UNREACHABLE) hold no resources."""
    response = payload.get(method)
    if response is None:
        if required:
            raise PayloadError(method, "required aggregatedList response is missing")
        return
    response = get_mapping(response, method)
    items = response.get("items")
    if items is None:
        return
    items = get_mapping(items, f"{method}.items")
    for scope, scoped in items.items():
        swhere = f"{method}.items.{scope}"
        for index, resource in enumerate(get_list(get_mapping(scoped, swhere), kind, swhere)):
            where = f"{swhere}.{kind}[{index}]"
            yield where, scope, get_mapping(resource, where)


class _OsFacts:
    """(platform, os) of a disk or image from its guestOsFeatures and licenses, memoised per
    license list (an estate has a handful)."""

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[str | None, str | None]] = {}

    def __call__(self, *records: Mapping) -> tuple[str | None, str | None]:
        for record in records:
            licenses = record.get("licenses")
            features = record.get("guestOsFeatures")
            if not licenses and not features:
                continue
            key = (
                tuple(str(url) for url in licenses) if type(licenses) is list else (),
                tuple([f.get("type") for f in features if isinstance(f, AbcMapping)]) if type(features) is list else (),
            )
            facts = self._cache.get(key)
            if facts is None:
                paths = [resource_path(url) for url in key[0]]
                windows = "WINDOWS" in key[1] or any(p.startswith("projects/windows-cloud/") for p in paths)
                os = last_segment(paths[0]) if paths else None
                facts = self._cache[key] = ("windows" if windows else "linux", os)
            return facts
        return None, None


@functools.lru_cache(maxsize=1024)
def _machine_type_size(machine_type: str | None) -> tuple[int | None, int | None]:
    """(vCPUs, memory MB) that a machine type's name states: n2-standard-4 -> (4, None),
    n2-custom-4-16384 -> (4, 16384), e2-medium -> (2, None) (shared core)."""
    if not machine_type:
        return None, None
    if machine_type in _SHARED_CORE_CPUS:
        return _SHARED_CORE_CPUS[machine_type], None
    custom = _CUSTOM_TYPE.match(machine_type)
    if custom:
        return int(custom.group(1)), int(custom.group(2))
    predefined = _PREDEFINED_TYPE.match(machine_type)
    return (int(predefined.group(1)) if predefined else None), None


def _image_status(labels: Mapping[str, str], deprecated: Any, where: str) -> str | None:
    status = (labels.get(GCP_STATUS_LABEL) or "").strip().lower() or None
    if status not in IMAGE_STATUSES:
        status = None
    if deprecated is not None:
        dwhere = f"{where}.deprecated"
        state = (get_str(get_mapping(deprecated, dwhere), "state", dwhere) or "").upper()
        if state == "DEPRECATED" and status != "revoked":
            status = "deprecated"
        elif state in ("OBSOLETE", "DELETED"):
            status = "revoked"
    return status


def _image(image: Mapping, where: str, site: Site, discovered_at: datetime, os_facts: _OsFacts) -> ImageRecord:
    name = get_str(image, "name", where, required=True)
    path = resource_path(get_str(image, "selfLink", where, required=True))
    labels = get_str_map(image, "labels", where, "label")
    version = _label_value(labels.get(GCP_VERSION_LABEL))
    platform, os = os_facts(image)
    parent_image, parent_relation = _parent(labels)
    return ImageRecord(
        provider_image_id=path,
        site_id=site.id,
        provider=PROVIDER,
        name=name,
        discovered_at=discovered_at,
        family=_label_value(labels.get(GCP_FAMILY_LABEL)) or get_str(image, "family", where) or None,
        version=version,
        version_key=version_sort_key(version),
        status=_image_status(labels, image.get("deprecated"), where),
        region=None,
        platform=platform,
        os=os,
        created_at=_utc(parse_timestamp(image.get("creationTimestamp"), f"{where}.creationTimestamp")),
        tags=tags_from_mapping(labels),
        parent_image=parent_image,
        parent_relation=parent_relation,
    )


def _instance(
    instance: Mapping,
    where: str,
    scope: str,
    site: Site,
    discovered_at: datetime,
    disks: Mapping[str, Mapping],
    image_paths: Mapping[str, str],
    make_tags: TagCache,
    os_facts: _OsFacts,
) -> AssetRecord:
    raw_id = instance.get("id")
    if type(raw_id) is not str and (type(raw_id) is not int):
        if raw_id is None:
            raise PayloadError(f"{where}.id", "required field is missing")
        raise PayloadError(f"{where}.id", f"expected a numeric id string, got {type(raw_id).__name__}")
    instance_id = str(raw_id)
    name = get_str(instance, "name", where, required=True)
    status = get_str(instance, "status", where, required=True)
    zone = last_segment(get_str(instance, "zone", where)) or (scope[6:] if scope.startswith("zones/") else None)
    machine_type = last_segment(get_str(instance, "machineType", where))
    cpu_count, memory_mb = _machine_type_size(machine_type)

    nics = get_list(instance, "networkInterfaces", where)
    nic = get_mapping(nics[0], f"{where}.networkInterfaces[0]") if nics else EMPTY
    public_ip = None
    for config in get_list(nic, "accessConfigs", f"{where}.networkInterfaces[0]"):
        if isinstance(config, AbcMapping) and config.get("natIP"):
            public_ip = config["natIP"]
            break

    boot: Mapping = EMPTY
    disk: Mapping = EMPTY  # the boot disk's resource
    encryption: list[str] = []
    for index, attached in enumerate(get_list(instance, "disks", where)):
        attached = get_mapping(attached, f"{where}.disks[{index}]")
        attached_source = attached.get("source")
        resource = disks.get(resource_path(str(attached_source)), EMPTY) if attached_source else EMPTY
        if boot is EMPTY and attached.get("boot"):
            boot, disk = attached, resource
        encryption.append(
            ENCRYPTION_CUSTOMER if _customer_key(attached) or _customer_key(resource) else ENCRYPTION_PLATFORM
        )
    source = boot.get("source")
    image_ref = _disk_image(disk, image_paths) if source else None
    platform, os = os_facts(boot, disk)

    tags = instance.get("tags")
    network_tags = tags.get("items") if isinstance(tags, AbcMapping) else None
    scheduling = instance.get("scheduling")
    created = instance.get("creationTimestamp")
    launched_at = _utc(parse_timestamp(created, f"{where}.creationTimestamp")) if created is not None else None
    provisioning_model = scheduling.get("provisioningModel") if isinstance(scheduling, AbcMapping) else None
    return AssetRecord(
        asset_id=f"gcp:{site.id}:{instance_id}",
        site_id=site.id,
        provider=PROVIDER,
        native_id=instance_id,
        kind="vm",
        name=name,
        state=INSTANCE_STATES.get(status.upper(), "unknown"),
        discovered_at=discovered_at,
        image_ref=image_ref,
        platform=platform,
        os=os,
        instance_type=machine_type,
        cpu_count=cpu_count,
        memory_mb=memory_mb,
        region=zone.rsplit("-", 1)[0] if zone else None,
        zone=zone,
        network=last_segment(nic.get("network")),
        private_ip=nic.get("networkIP"),
        public_ip=public_ip,
        disk_encryption=weakest_encryption(encryption),
        launched_at=launched_at,
        tags=make_tags(get_str_map(instance, "labels", where, "label")),
        attributes_json=compact_json(
            {
                "bootDisk": disk.get("name") or last_segment(source),
                "bootDiskSizeGb": disk.get("sizeGb"),
                "cpuPlatform": instance.get("cpuPlatform"),
                "networkTags": network_tags or None,
                "provisioningModel": provisioning_model,
                "status": status,
                "subnetwork": last_segment(nic.get("subnetwork")),
            }
        ),
    )


def _customer_key(disk: Mapping) -> bool:
    """Whether an attached disk or disk resource is encrypted with a key the customer holds."""
    key = disk.get("diskEncryptionKey")
    return isinstance(key, AbcMapping) and bool(key.get("kmsKeyName") or key.get("sha256"))


def _disk_image(disk: Mapping, image_paths: Mapping[str, str]) -> str | None:
    source = disk.get("sourceImage")
    path = resource_path(str(source)) if source else None
    if path and "/global/images/family/" not in path:
        return path
    # Created from an image family: the disk names the family; its sourceImageId names the image.
    resolved = image_paths.get(str(disk.get("sourceImageId") or ""))
    return resolved or path


@gc_paused()
def normalize(payload: Mapping, site: Site, discovered_at: datetime) -> Discovery:
    payload = get_mapping(payload, "$")

    found = Discovery()
    os_facts = _OsFacts()
    image_paths: dict[str, str] = {}
    listed = payload.get("images.list")
    if listed is not None:
        for index, image in enumerate(get_list(get_mapping(listed, "images.list"), "items", "images.list")):
            where = f"images.list.items[{index}]"
            record = _image(get_mapping(image, where), where, site, discovered_at, os_facts)
            found.images.append(record)
            if image.get("id") is not None:
                image_paths[str(image["id"])] = record.provider_image_id

    disks: dict[str, Mapping] = {}
    for where, _scope, disk in _aggregated(payload, "disks.aggregatedList", "disks"):
        disks[resource_path(get_str(disk, "selfLink", where, required=True))] = disk

    make_tags = TagCache()
    for where, scope, instance in _aggregated(payload, "instances.aggregatedList", "instances", required=True):
        found.assets.append(
            _instance(instance, where, scope, site, discovered_at, disks, image_paths, make_tags, os_facts)
        )
    return found
