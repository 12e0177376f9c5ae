"""Sample Azure payloads: ARM list responses for one subscription (the shape
`qlrf_pipelines.connectors.azure.normalize` reads).

Golden images are Azure Compute Gallery image versions in gallery `qlrf_golden` (resource
group `rg-golden-images`), one image definition per family. Gallery versions must be
Major.Minor.Patch, so "2026.10" is published as version "2026.10.0" and the tag `qlrf:version`
carries the catalog version. Two untagged managed images stand for non-golden images.

Desired state: every VM carries owner / cost-center / backup-policy tags, runs a size of the
B, D (v5) and E (v5) series, and has managed disks (always encrypted at rest; database VMs
with a customer-managed key through the disk encryption set `des-<env>-cmk`) and no public IP,
except the deliberate drift of DELIBERATE_DRIFT:

    azure-prod-weu  worker-prod-0013  QLRF-TAG-001   no owner tag
                    api-prod-0016     QLRF-TAG-001   no cost-center tag
                    db-prod-0019      QLRF-SIZE-001  Standard_M416ms_v2
                    api-prod-0041     QLRF-NET-001   public IP
                    win-prod-0048     QLRF-NET-001   public IP (RDP exposed)
                    worker-prod-0030  QLRF-BAK-001   no backup-policy tag

Managed disks cannot be unencrypted, so QLRF-ENC-001 holds on every VM here, and every OS the VM
agents report is supported (QLRF-EOL-001). Synthetic estates larger than the bundled one add
about 1% random drift per rule (common.DriftPlan).
"""

from __future__ import annotations

import functools
import random
from datetime import datetime, timedelta

from qlrf_pipelines.connectors.base import gc_paused
from qlrf_pipelines.models.records import (
    FAMILY_TAG,
    PARENT_IMAGE_TAG,
    PARENT_RELATION_TAG,
    STATUS_TAG,
    VERSION_TAG,
)
from qlrf_pipelines.sample.catalog import (
    MACHINE_IMAGE_VERSIONS,
    CatalogVersion,
    current_production,
    machine_families,
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
)
from qlrf_pipelines.sites import Site

GALLERY_RESOURCE_GROUP = "rg-golden-images"
GALLERY_NAME = "qlrf_golden"

# The marketplace image anchor-unknown-01 runs (publisher, offer, sku, version).
ANCHOR_UNKNOWN_IMAGE = ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "latest")
# Marketplace images: (publisher, offer, sku, version), the exactVersion ARM resolved, os kind.
_MARKETPLACE_LINUX = (
    (ANCHOR_UNKNOWN_IMAGE, "22.04.202610150", "ubuntu"),
    (("RedHat", "RHEL", "9-lvm-gen2", "latest"), "9.4.2026100214", "rhel"),
    (("Debian", "debian-12", "12-gen2", "latest"), "0.20261014.1900", "debian"),
)
_MARKETPLACE_WINDOWS = (
    (
        ("MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition", "latest"),
        "20348.2762.261008",
        "windows",
    ),
)
# Managed images in the subscription that are not golden (no qlrf tags): (name, osType).
_MANAGED_IMAGES = (("img-legacy-erp-2025-03", "Linux"), ("img-reporting-win2019", "Windows"))

_DISPLAY_NAMES = {
    "westeurope": "West Europe",
    "northeurope": "North Europe",
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus2": "West US 2",
    "uksouth": "UK South",
    "germanywestcentral": "Germany West Central",
    "francecentral": "France Central",
    "swedencentral": "Sweden Central",
}

_LINUX_SIZES = ("Standard_B2ms", "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D4as_v5", "Standard_D8s_v5")
_DB_SIZES = ("Standard_E4s_v5", "Standard_E8s_v5", "Standard_E16s_v5")
_WINDOWS_SIZES = ("Standard_D4s_v5", "Standard_D8s_v5", "Standard_E4s_v5")
# What a VM breaking QLRF-SIZE-001 runs: databases the largest memory-optimized size, the rest a
# GPU size someone deployed for an experiment.
_OVERSIZED_DB = "Standard_M416ms_v2"
_OVERSIZED = "Standard_ND96asr_v4"

DELIBERATE_DRIFT: dict[str, dict[str, tuple[str, ...]]] = {
    "azure-prod-weu": {
        "worker-prod-0013": (TAG_RULE,),
        "api-prod-0016": (TAG_RULE,),
        "db-prod-0019": (SIZE_RULE,),
        "api-prod-0041": (NET_RULE,),
        "win-prod-0048": (NET_RULE,),
        "worker-prod-0030": (BAK_RULE,),
    },
}
SYNTHETIC_RULES = (TAG_RULE, SIZE_RULE, NET_RULE, BAK_RULE)

_OS_NAMES = {  # instanceView.osName / osVersion reported by the VM agent
    "ubuntu": ("ubuntu", "22.04"),
    "rhel": ("redhat", "9.4"),
    "windows": ("Windows Server 2022 Datacenter", "10.0.20348"),
    "debian": ("debian", "12"),
}
_DISPLAY_STATUS = {
    "running": "VM running",
    "deallocated": "VM deallocated",
    "stopped": "VM stopped",
    "starting": "VM starting",
    "deallocating": "VM deallocating",
}


@functools.cache
def gallery_version_name(version: CatalogVersion) -> str:
    """Gallery image versions are Major.Minor.Patch integers: '1.3.0' stays, '2026.06' -> '2026.6.0'."""
    parts = [str(int(part)) for part in version.version.split(".")]
    return ".".join((parts + ["0", "0"])[:3])


def _gallery_id(subscription: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{GALLERY_RESOURCE_GROUP}"
        f"/providers/Microsoft.Compute/galleries/{GALLERY_NAME}"
    )


def gallery_version_id(subscription: str, version: CatalogVersion) -> str:
    return f"{_gallery_id(subscription)}/images/{version.family}/versions/{gallery_version_name(version)}"


def _managed_image_id(subscription: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/rg-legacy-images/providers/Microsoft.Compute/images/{name}"


def _uuid4(bits: int) -> str:
    """A random (version 4) UUID string from 128 random bits (cheaper than uuid.UUID)."""
    text = f"{(bits & ~(0xF << 76) & ~(0x3 << 62)) | (0x4 << 76) | (0x2 << 62):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _ts(value: datetime) -> str:
    """ARM timestamps: seven fractional digits and an explicit offset."""
    return f"{value.isoformat(timespec='seconds')[:19]}.{value.microsecond * 10:07d}+00:00"


def _gallery(site: Site, subscription: str) -> tuple[list[dict], list[dict]]:
    """(image definitions, image versions) of the golden gallery."""
    location = site.location
    targets = [
        {"name": _DISPLAY_NAMES.get(region, region), "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS"}
        for region in site_regions(site)
    ]
    definitions = []
    for family in machine_families():
        sample = next(v for v in MACHINE_IMAGE_VERSIONS if v.family == family)
        definitions.append(
            {
                "id": f"{_gallery_id(subscription)}/images/{family}",
                "name": family,
                "type": "Microsoft.Compute/galleries/images",
                "location": location,
                "properties": {
                    "osType": "Windows" if sample.platform == "windows" else "Linux",
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "identifier": {"publisher": "qlrf", "offer": family, "sku": "golden"},
                    "description": sample.os,
                    "provisioningState": "Succeeded",
                },
            }
        )
    versions = []
    for version in MACHINE_IMAGE_VERSIONS:
        publishing = {
            "publishedDate": _ts(version.created_at),
            "excludeFromLatest": version.status != "production",
            "targetRegions": targets,
            "replicaCount": 1,
            "storageAccountType": "Standard_LRS",
        }
        if version.status == "revoked":
            publishing["endOfLifeDate"] = _ts(version.created_at + timedelta(days=90))
        elif version.status == "deprecated":
            publishing["endOfLifeDate"] = _ts(version.created_at + timedelta(days=365))
        tags = {FAMILY_TAG: version.family, VERSION_TAG: version.version, STATUS_TAG: version.status}
        if version.parent:
            tags[PARENT_IMAGE_TAG] = version.parent
            tags[PARENT_RELATION_TAG] = version.relation or "derived_from"
        versions.append(
            {
                "id": gallery_version_id(subscription, version),
                "name": gallery_version_name(version),
                "type": "Microsoft.Compute/galleries/images/versions",
                "location": location,
                "tags": tags,
                "properties": {
                    "publishingProfile": publishing,
                    "storageProfile": {
                        "osDiskImage": {"sizeInGB": 30 if version.platform == "linux" else 127, "hostCaching": "ReadWrite"},
                        "source": {
                            "id": f"/subscriptions/{subscription}/resourceGroups/rg-image-builds/providers/"
                            f"Microsoft.Compute/images/build-{version.slug}"
                        },
                    },
                    "safetyProfile": {"allowDeletionOfReplicatedLocations": False},
                    "provisioningState": "Succeeded",
                },
            }
        )
    return definitions, versions


def _managed_images(site: Site, subscription: str) -> list[dict]:
    return [
        {
            "id": _managed_image_id(subscription, name),
            "name": name,
            "type": "Microsoft.Compute/images",
            "location": site.location,
            "tags": {"team": "legacy-apps"},
            "properties": {
                "storageProfile": {
                    "osDisk": {"osType": os_type, "osState": "Generalized", "diskSizeGB": 64, "caching": "ReadWrite"},
                    "dataDisks": [],
                },
                "hyperVGeneration": "V1",
                "provisioningState": "Succeeded",
            },
        }
        for name, os_type in _MANAGED_IMAGES
    ]


def _storage_profile(base: str, subscription: str, name: str, asset: PlannedAsset, reference: dict, os_type: str) -> dict:
    """imageReference and managed disks: the OS disk, plus a data disk on databases, whose disks
    are encrypted with the customer-managed key of the disk encryption set."""
    database = asset.role in ("db", "mssql")
    des = (
        {"id": f"/subscriptions/{subscription}/resourceGroups/rg-keys-{asset.env}/providers"
               f"/Microsoft.Compute/diskEncryptionSets/des-{asset.env}-cmk"}
        if database
        else None
    )

    def managed(disk_name: str) -> dict:
        disk = {"id": f"{base}/Microsoft.Compute/disks/{disk_name}", "storageAccountType": "Premium_LRS"}
        if des:
            disk["diskEncryptionSet"] = des
        return disk

    profile = {
        "imageReference": reference,
        "osDisk": {"osType": os_type, "name": f"{name}_OsDisk_1", "managedDisk": managed(f"{name}_OsDisk_1")},
    }
    if database:
        profile["dataDisks"] = [
            {"lun": 0, "name": f"{name}_DataDisk_0", "createOption": "Empty", "diskSizeGB": 512,
             "managedDisk": managed(f"{name}_DataDisk_0")}
        ]
    return profile


def _non_catalog_reference(subscription: str, asset: PlannedAsset) -> tuple[dict, str]:
    """(imageReference, os kind) of an image that is not golden, for the asset's platform."""
    choice = asset.unknown_choice
    if asset.platform == "windows":
        if choice >= 0.6:
            return {"id": _managed_image_id(subscription, _MANAGED_IMAGES[1][0])}, "windows"
        image = _MARKETPLACE_WINDOWS[0]
    elif choice < 0.7:
        image = _MARKETPLACE_LINUX[0 if choice < 0.4 else 1 if choice < 0.55 else 2]
    else:
        return {"id": _managed_image_id(subscription, _MANAGED_IMAGES[0][0])}, "ubuntu"
    (publisher, offer, sku, version), exact, kind = image
    return {"publisher": publisher, "offer": offer, "sku": sku, "version": version, "exactVersion": exact}, kind


@gc_paused()
def generate_payload(site: Site, n_assets: int, rng: random.Random) -> dict:
    """ARM list responses of one subscription: the anchors first, then random VMs."""
    subscription = site.account or "00000000-0000-0000-0000-000000000000"
    regions = site_regions(site)
    plan = plan_assets(site, n_assets, rng, DriftPlan(site, DELIBERATE_DRIFT, SYNTHETIC_RULES))
    random_ = rng.random
    getrandbits = rng.getrandbits
    definitions, versions = _gallery(site, subscription)
    # ARM often reports resource groups of image references in upper case: ids compare case-insensitively.
    reference_gallery = _gallery_id(subscription).replace(GALLERY_RESOURCE_GROUP, GALLERY_RESOURCE_GROUP.upper())
    current = {current_production(f) for f in machine_families()}

    vms: list[dict] = []
    nics: list[dict] = []
    public_ips: list[dict] = []
    pools = {region: AddressPool(10, (16 * index + 1) % 256, rng) for index, region in enumerate(regions)}
    public_pool = AddressPool(20, 61, rng)
    # Addresses for the VMs breaking QLRF-NET-001 that drew none from the pool above (its own
    # rng: the estate's rng must draw what it always drew).
    exposed_pool = AddressPool(20, 62, random.Random(f"{site.id}/public-ips"))
    subnet_ids: dict[tuple[str, str], str] = {}

    for asset in plan:
        region = pick_region(regions, asset.region_choice)
        name = asset.name
        rg = f"rg-{asset.app}-{asset.env}"
        base = f"/subscriptions/{subscription}/resourceGroups/{rg}/providers"
        version = asset.version
        if version is not None:
            kind = os_kind(version)
            version_name = gallery_version_name(version)
            if version in current and asset.role != "anchor" and random_() < 0.3:
                # Deployed from the image definition ("latest"): ARM reports the version it resolved.
                reference = {
                    "id": f"{reference_gallery}/images/{version.family}",
                    "exactVersion": version_name,
                }
            else:
                reference = {"id": f"{reference_gallery}/images/{version.family}/versions/{version_name}"}
        else:
            reference, kind = _non_catalog_reference(subscription, asset)
        os_type = "Windows" if asset.platform == "windows" else "Linux"
        sizes = asset.sizes(_LINUX_SIZES, _DB_SIZES, _WINDOWS_SIZES)
        oversized = (_OVERSIZED_DB if sizes is _DB_SIZES else _OVERSIZED) if SIZE_RULE in asset.drift else None

        state = asset.state
        provisioning = "Succeeded"
        if state == "running":
            power = "running"
        elif state == "stopped":
            roll = random_()
            power = "deallocated" if roll < 0.8 else "stopped" if roll < 0.95 else "deallocating"
        elif state == "pending":
            power = "starting"
            provisioning = "Updating"
        else:  # being deleted: ARM reports no power state any more
            power = None
            provisioning = "Deleting"
        statuses = [
            {"code": f"ProvisioningState/{provisioning.lower()}", "displayStatus": f"Provisioning {provisioning.lower()}"}
        ]
        if power:
            statuses.append({"code": f"PowerState/{power}", "displayStatus": _DISPLAY_STATUS[power]})
        instance_view: dict = {"statuses": statuses}
        if power == "running":
            os_name, os_version = _OS_NAMES[kind]
            if kind == "rhel" and version is not None:
                os_version = version.version[:3]  # the minor release the image was built from
            instance_view["computerName"] = name[:15] if os_type == "Windows" else name
            instance_view["osName"] = os_name
            instance_view["osVersion"] = os_version

        vm_id = _uuid4(getrandbits(128))
        size = sizes[int(random_() * len(sizes))]  # drawn even when oversized replaces it
        vm_resource_id = f"{base}/Microsoft.Compute/virtualMachines/{name}"
        nic_name = f"{name}-nic01"
        nic_id = f"{base}/Microsoft.Network/networkInterfaces/{nic_name}"
        # Optional fields the connector does not read are left out to keep 100k-VM payloads
        # small; every field present has ARM's own name and shape.
        vm = {
            "id": vm_resource_id,
            "name": name,
            "location": region,
            "tags": asset.tags,
            "properties": {
                "vmId": vm_id,
                "hardwareProfile": {"vmSize": oversized or size},
                "storageProfile": _storage_profile(base, subscription, name, asset, reference, os_type),
                "osProfile": {"computerName": name[:15] if os_type == "Windows" else name},
                "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]},
                "instanceView": instance_view,
                "provisioningState": provisioning,
                "timeCreated": _ts(asset.launched_at),
            },
        }
        if asset.role == "anchor" or random_() < 0.8:
            vm["zones"] = ["1" if asset.role == "anchor" else "123"[int(random_() * 3)]]
        vms.append(vm)

        subnet_key = (region, asset.role)
        subnet_id = subnet_ids.get(subnet_key)
        if subnet_id is None:
            subnet_id = subnet_ids[subnet_key] = (
                f"/subscriptions/{subscription}/resourceGroups/rg-network-{asset.env}/providers/Microsoft.Network"
                f"/virtualNetworks/vnet-{asset.env}-{region}/subnets/snet-{asset.role}"
            )
        ip_config = {"privateIPAddress": pools[region].take(), "primary": True, "subnet": {"id": subnet_id}}
        # The draw (and address) of the estate's first version, when part of the web tier had
        # public IPs; now only VMs breaking QLRF-NET-001 have one.
        drawn = None
        if state == "running" and random_() < (0.3 if asset.role in ("web", "api") else 0.02):
            drawn = public_pool.take()
        if state == "running" and NET_RULE in asset.drift:
            pip_id = f"{base}/Microsoft.Network/publicIPAddresses/{name}-pip"
            ip_config["publicIPAddress"] = {"id": pip_id}
            public_ips.append(
                {"id": pip_id, "name": f"{name}-pip", "properties": {"ipAddress": drawn or exposed_pool.take()}}
            )
        nics.append(
            {
                "id": nic_id,
                "name": nic_name,
                "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}]},
            }
        )

    return {
        "virtualMachines": {"value": vms},
        "galleryImages": {"value": definitions},
        "galleryImageVersions": {"value": versions},
        "images": {"value": _managed_images(site, subscription)},
        "networkInterfaces": {"value": nics},
        "publicIPAddresses": {"value": public_ips},
    }
