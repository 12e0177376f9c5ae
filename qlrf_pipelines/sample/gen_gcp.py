"""Sample GCP payloads: Compute Engine `instances.aggregatedList`, `disks.aggregatedList` and
`images.list` responses for one project (the shape `qlrf_pipelines.connectors.gcp.normalize`
reads).

Golden images live in the site's project as `golden-<family>-<version>` with the image family
set. GCP family names and label values cannot hold '.', so the family field is the catalog
family with '.' as '-' and the labels carry the exact family and version with '.' as '_'
(`qlrf-family: ubuntu-22_04-base`, `qlrf-version: 1_3_0`), which the connector reads back.
Lineage is written the same way: `qlrf-parent-family` / `qlrf-parent-version` name the parent
golden image, `qlrf-parent-relation` how it was built from it (`patched_from`, as is).
Deprecated and revoked versions also carry the image's own `deprecated` state.

Desired state: every instance carries owner / cost-center / backup-policy labels (lower case,
'-' for '.' and '@'), runs an e2 / n2 / c3 machine type and has no external IP; Compute Engine
encrypts every disk (database boot disks with the Cloud KMS key `disk-cmek`, CMEK). The deliberate
drift of DELIBERATE_DRIFT:

    gcp-prod-euw1  api-prod-0025     QLRF-TAG-001   no owner label
                   cache-prod-0022   QLRF-TAG-001   no cost-center label
                   db-prod-0019      QLRF-SIZE-001  m2-ultramem-416
                   web-prod-0029     QLRF-NET-001   external IP
                   worker-prod-0036  QLRF-BAK-001   no backup-policy label

Every disk is encrypted (QLRF-ENC-001 holds) and every licensed OS is supported (QLRF-EOL-001).
Synthetic estates larger than the bundled one add about 1% random drift per rule
(common.DriftPlan).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from qlrf_pipelines.connectors.base import gc_paused
from qlrf_pipelines.models.records import (
    GCP_FAMILY_LABEL,
    GCP_PARENT_FAMILY_LABEL,
    GCP_PARENT_RELATION_LABEL,
    GCP_PARENT_VERSION_LABEL,
    GCP_STATUS_LABEL,
    GCP_VERSION_LABEL,
)
from qlrf_pipelines.sample.catalog import (
    MACHINE_IMAGE_VERSIONS,
    CatalogVersion,
    current_production,
)
from qlrf_pipelines.sample.common import (
    BAK_RULE,
    NET_RULE,
    SIZE_RULE,
    TAG_RULE,
    AddressPool,
    DriftPlan,
    PlannedAsset,
    os_kind,
    pick_region,
    plan_assets,
    site_regions,
    stable_hex,
)
from qlrf_pipelines.sites import Site

API = "https://www.googleapis.com/compute/v1"
PACIFIC = timezone(timedelta(hours=-7))  # Compute Engine reports timestamps in US Pacific time

# The public image anchor-unknown-01 runs.
ANCHOR_UNKNOWN_IMAGE = "projects/ubuntu-os-cloud/global/images/ubuntu-2204-jammy-v20261015"

_LICENSES = {
    "ubuntu": f"{API}/projects/ubuntu-os-cloud/global/licenses/ubuntu-2204-lts",
    "rhel": f"{API}/projects/rhel-cloud/global/licenses/rhel-9-server",
    "windows": f"{API}/projects/windows-cloud/global/licenses/windows-server-2022-dc",
    "debian": f"{API}/projects/debian-cloud/global/licenses/debian-12-bookworm",
    "windows-2019": f"{API}/projects/windows-cloud/global/licenses/windows-server-2019-dc",
}
_LINUX_FEATURES = [{"type": "UEFI_COMPATIBLE"}, {"type": "VIRTIO_SCSI_MULTIQUEUE"}, {"type": "GVNIC"}]
_WINDOWS_FEATURES = [
    {"type": "UEFI_COMPATIBLE"},
    {"type": "VIRTIO_SCSI_MULTIQUEUE"},
    {"type": "WINDOWS"},
    {"type": "GVNIC"},
]

# Public images (other projects, so not in this project's images.list): (path, os kind).
_PUBLIC_LINUX = (
    (ANCHOR_UNKNOWN_IMAGE, "ubuntu"),
    ("projects/debian-cloud/global/images/debian-12-bookworm-v20261014", "debian"),
    ("projects/rhel-cloud/global/images/rhel-9-v20261010", "rhel"),
)
_PUBLIC_WINDOWS = (("projects/windows-cloud/global/images/windows-server-2022-dc-v20261008", "windows"),)
# Images in the project that are not golden (no qlrf labels, no family): (name, os kind, created).
_NON_GOLDEN = (
    ("legacy-erp-app-2025-03", "ubuntu", datetime(2025, 3, 18, 14, 2, 11, tzinfo=timezone.utc)),
    ("reporting-win2019-imported", "windows-2019", datetime(2025, 8, 5, 9, 40, 57, tzinfo=timezone.utc)),
)

_LINUX_TYPES = ("e2-medium", "e2-standard-2", "n2-standard-2", "n2-standard-4", "c3-standard-8")
_DB_TYPES = ("n2-highmem-4", "n2-highmem-8", "n2-highmem-16")
_WINDOWS_TYPES = ("n2-standard-4", "n2-standard-8", "n2-highmem-4")
_CPU_PLATFORMS = {
    "e2": "Intel Broadwell",
    "n2": "Intel Cascade Lake",
    "c3": "Intel Sapphire Rapids",
    "m1": "Intel Broadwell",
    "m2": "Intel Cascade Lake",
}
# What an instance breaking QLRF-SIZE-001 runs: memory-optimized types far beyond what the
# workload needs (the largest one for databases).
_OVERSIZED_DB = "m2-ultramem-416"
_OVERSIZED = "m1-ultramem-160"

DELIBERATE_DRIFT: dict[str, dict[str, tuple[str, ...]]] = {
    "gcp-prod-euw1": {
        "api-prod-0025": (TAG_RULE,),
        "cache-prod-0022": (TAG_RULE,),
        "db-prod-0019": (SIZE_RULE,),
        "web-prod-0029": (NET_RULE,),
        "worker-prod-0036": (BAK_RULE,),
    },
}
SYNTHETIC_RULES = (TAG_RULE, SIZE_RULE, NET_RULE, BAK_RULE)


def image_name(version: CatalogVersion) -> str:
    return f"golden-{version.slug}"


def image_family(family: str) -> str:
    """A valid GCP image family name for a catalog family: 'ubuntu-22.04-base' -> 'ubuntu-22-04-base'."""
    return family.replace(".", "-").lower()


def label_value(text: str) -> str:
    """A valid GCP label value: '.' written as '_' ('1.3.0' -> '1_3_0')."""
    return text.replace(".", "_").lower()


def _ts(value: datetime) -> str:
    return value.astimezone(PACIFIC).isoformat(timespec="milliseconds")


def _numeric_id(text: str) -> str:
    """A stable 19-digit resource id (GCP ids are uint64, written as strings)."""
    return str(1_000_000_000_000_000_000 + int(stable_hex(text, 15), 16) % 8_000_000_000_000_000_000)


def _images(project: str) -> list[dict]:
    base = f"{API}/projects/{project}/global/images"
    images = []
    for version in MACHINE_IMAGE_VERSIONS:
        kind = os_kind(version)
        name = image_name(version)
        image = {
            "kind": "compute#image",
            "id": _numeric_id(f"{project}/{name}"),
            "creationTimestamp": _ts(version.created_at),
            "name": name,
            "description": f"{version.os} golden image {version.family} {version.version}",
            "family": image_family(version.family),
            "sourceType": "RAW",
            "status": "READY",
            "archiveSizeBytes": "4812345600" if kind != "windows" else "21474836480",
            "diskSizeGb": "20" if kind != "windows" else "50",
            "licenses": [_LICENSES[kind]],
            "guestOsFeatures": _WINDOWS_FEATURES if kind == "windows" else _LINUX_FEATURES,
            "labels": {
                GCP_FAMILY_LABEL: label_value(version.family),
                GCP_VERSION_LABEL: label_value(version.version),
                GCP_STATUS_LABEL: version.status,
            },
            "storageLocations": ["eu"],
            "architecture": "X86_64",
            "selfLink": f"{base}/{name}",
        }
        if version.parent_family and version.parent_version:
            image["labels"][GCP_PARENT_FAMILY_LABEL] = label_value(version.parent_family)
            image["labels"][GCP_PARENT_VERSION_LABEL] = label_value(version.parent_version)
            image["labels"][GCP_PARENT_RELATION_LABEL] = version.relation or "derived_from"
        if version.status in ("deprecated", "revoked"):
            replacement = current_production(version.family)
            image["deprecated"] = {
                "state": "DEPRECATED" if version.status == "deprecated" else "OBSOLETE",
                "replacement": f"{base}/{image_name(replacement)}",
            }
        images.append(image)
    for name, kind, created in _NON_GOLDEN:
        images.append(
            {
                "kind": "compute#image",
                "id": _numeric_id(f"{project}/{name}"),
                "creationTimestamp": _ts(created),
                "name": name,
                "description": f"{name} (not a golden image)",
                "sourceType": "RAW",
                "status": "READY",
                "diskSizeGb": "50",
                "licenses": [_LICENSES[kind]],
                "guestOsFeatures": _WINDOWS_FEATURES if kind.startswith("windows") else _LINUX_FEATURES,
                "labels": {"team": "legacy-apps"},
                "storageLocations": ["eu"],
                "architecture": "X86_64",
                "selfLink": f"{base}/{name}",
            }
        )
    return images


def _non_catalog_image(project: str, asset: PlannedAsset) -> tuple[str, str]:
    """(image path, os kind) of an image that is not golden, for the asset's platform."""
    choice = asset.unknown_choice
    if asset.platform == "windows":
        if choice < 0.6:
            return _PUBLIC_WINDOWS[0]
        return f"projects/{project}/global/images/{_NON_GOLDEN[1][0]}", _NON_GOLDEN[1][1]
    if choice < 0.7:
        return _PUBLIC_LINUX[0 if choice < 0.4 else 1 if choice < 0.55 else 2]
    return f"projects/{project}/global/images/{_NON_GOLDEN[0][0]}", _NON_GOLDEN[0][1]


@gc_paused()
def generate_payload(site: Site, n_assets: int, rng: random.Random) -> dict:
    """Compute API responses of one project: the anchors first, then random instances."""
    project = site.account or site.id
    project_url = f"{API}/projects/{project}"
    regions = site_regions(site)
    plan = plan_assets(site, n_assets, rng, DriftPlan(site, DELIBERATE_DRIFT, SYNTHETIC_RULES))
    random_ = rng.random
    images = _images(project)
    cmek = f"projects/{project}/locations/{site.location}/keyRings/kr-disks/cryptoKeys/disk-cmek"
    image_ids = {f"projects/{project}/global/images/{image['name']}": image["id"] for image in images}

    network_name = f"vpc-{plan[0].env}"
    network = f"{project_url}/global/networks/{network_name}"
    zone_names = {region: [f"{region}-{suffix}" for suffix in "bcd"] for region in regions}
    instance_items: dict[str, dict] = {}
    disk_items: dict[str, dict] = {}
    for region in regions:
        for zone in zone_names[region]:
            instance_items[f"zones/{zone}"] = {"instances": []}
            disk_items[f"zones/{zone}"] = {"disks": []}
    zone_urls = {zone: f"{project_url}/zones/{zone}" for zones in zone_names.values() for zone in zones}
    disk_type_urls = {zone: f"{url}/diskTypes/pd-balanced" for zone, url in zone_urls.items()}
    subnetworks = {region: f"{project_url}/regions/{region}/subnetworks/snet-{region}" for region in regions}
    pools = {region: AddressPool(10, (16 * index + 132) % 256, rng) for index, region in enumerate(regions)}
    public_pool = AddressPool(34, 76, rng)
    # Addresses for the instances breaking QLRF-NET-001 that drew none from the pool above (its
    # own rng: the estate's rng must draw what it always drew).
    exposed_pool = AddressPool(34, 77, random.Random(f"{site.id}/public-ips"))
    machine_types: dict[tuple[str, str], str] = {}
    public_sources: dict[str, str] = {}
    seen_ids: set[str] = set()

    for asset in plan:
        region = pick_region(regions, asset.region_choice)
        zone = zone_names[region][0 if asset.role == "anchor" else int(random_() * 3)]
        zone_url = zone_urls[zone]
        version = asset.version
        if version is not None:
            path = f"projects/{project}/global/images/{image_name(version)}"
            kind = os_kind(version)
            source_image_id = image_ids[path]
        else:
            path, kind = _non_catalog_image(project, asset)
            source_image_id = image_ids.get(path) or public_sources.get(path)
            if source_image_id is None:
                source_image_id = public_sources[path] = _numeric_id(path)
        windows = asset.platform == "windows"
        types = asset.sizes(_LINUX_TYPES, _DB_TYPES, _WINDOWS_TYPES)
        machine_type = types[int(random_() * len(types))]
        if SIZE_RULE in asset.drift:
            machine_type = _OVERSIZED_DB if types is _DB_TYPES else _OVERSIZED
        type_key = (zone, machine_type)
        machine_type_url = machine_types.get(type_key)
        if machine_type_url is None:
            machine_type_url = machine_types[type_key] = f"{zone_url}/machineTypes/{machine_type}"

        instance_id = str(rng.randrange(1_000_000_000_000_000_000, 9_223_372_036_854_775_807))
        while instance_id in seen_ids:
            instance_id = str(rng.randrange(1_000_000_000_000_000_000, 9_223_372_036_854_775_807))
        seen_ids.add(instance_id)

        state = asset.state
        if state == "running":
            status = "RUNNING"
        elif state == "stopped":
            roll = random_()
            status = "TERMINATED" if roll < 0.85 else "SUSPENDED" if roll < 0.95 else "STOPPING"
        elif state == "pending":
            status = "PROVISIONING" if random_() < 0.3 else "STAGING"
        else:  # GCP keeps no deleted instances; the rest are being stopped
            status = "STOPPING"

        name = asset.name
        disk_url = f"{zone_url}/disks/{name}"
        license_url = _LICENSES[kind]
        features = _WINDOWS_FEATURES if windows else _LINUX_FEATURES
        size_gb = "50" if windows else "20"
        labels = asset.tags
        # Label values are lower case and cannot hold '@'.
        if asset.owner:
            labels["owner"] = asset.owner.split("@", 1)[0]
        if asset.cost_center:
            labels["cost-center"] = asset.cost_center.lower()
        # Optional fields the connector does not read are left out to keep 100k-instance
        # payloads small; every field present has the Compute API's own name and shape.
        nic = {
            "name": "nic0",
            "network": network,
            "subnetwork": subnetworks[region],
            "networkIP": pools[region].take(),
        }
        # The draw (and address) of the estate's first version, when part of the web tier had
        # external IPs; now only instances breaking QLRF-NET-001 have one.
        drawn = None
        if status == "RUNNING" and random_() < (0.4 if asset.role in ("web", "api") else 0.03):
            drawn = public_pool.take()
        if status == "RUNNING" and NET_RULE in asset.drift:
            nic["accessConfigs"] = [
                {"type": "ONE_TO_ONE_NAT", "name": "External NAT", "natIP": drawn or exposed_pool.take()}
            ]
        instance = {
            "id": instance_id,
            "creationTimestamp": _ts(asset.launched_at),
            "name": name,
            "tags": {"items": [asset.role, asset.env]},
            "machineType": machine_type_url,
            "status": status,
            "zone": zone_url,
            "networkInterfaces": [nic],
            "disks": [
                {
                    "source": disk_url,
                    "deviceName": "persistent-disk-0",
                    "boot": True,
                    "licenses": [license_url],
                    "guestOsFeatures": features,
                }
            ],
            "scheduling": {"provisioningModel": "STANDARD"},
            "labels": labels,
        }
        if status == "RUNNING":
            instance["cpuPlatform"] = _CPU_PLATFORMS[machine_type[:2]]
        instance_items[f"zones/{zone}"]["instances"].append(instance)
        disk = {
            "id": str(rng.getrandbits(63)),
            "name": name,
            "sizeGb": size_gb,
            "status": "READY",
            "selfLink": disk_url,
            "sourceImage": f"{API}/{path}",
            "sourceImageId": source_image_id,
            "type": disk_type_urls[zone],
        }
        if asset.role in ("db", "mssql"):
            disk["diskEncryptionKey"] = {"kmsKeyName": f"{cmek}/cryptoKeyVersions/1"}
        disk_items[f"zones/{zone}"]["disks"].append(disk)

    # Zones without instances answer with a warning, as aggregatedList does; so do the zones
    # of a region the project does not use.
    for items, kind in ((instance_items, "instances"), (disk_items, "disks")):
        for scope in [scope for scope, scoped in items.items() if not scoped[kind]]:
            items[scope] = _no_results(scope)
        for scope in ("zones/us-central1-a", "zones/asia-east1-b"):
            items.setdefault(scope, _no_results(scope))
    return {
        "instances.aggregatedList": {"kind": "compute#instanceAggregatedList", "items": instance_items},
        "disks.aggregatedList": {"kind": "compute#diskAggregatedList", "items": disk_items},
        "images.list": {"kind": "compute#imageList", "items": images},
    }


def _no_results(scope: str) -> dict:
    return {
        "warning": {
            "code": "NO_RESULTS_ON_PAGE",
            "message": "There are no results for scope '" + scope + "' on this page.",
            "data": [{"key": "scope", "value": scope}],
        }
    }
