"""Sample AWS payloads: DescribeInstances / DescribeImages / DescribeVolumes responses and the
KMS aliases per region (the shape `qlrf_pipelines.connectors.aws.normalize` reads).

The estate itself (anchors, image mix, power states, names, tags, launch times) is the
provider-neutral plan of `qlrf_pipelines.sample.common.plan_assets`, shared with the Azure and
GCP generators.

Desired state: every instance carries owner / cost-center / backup-policy tags, runs an instance
type of the m6i / c6i / r6i / t3 families, has EBS volumes encrypted with the AWS managed key
(database instances: the customer managed key `alias/qlrf-ebs`) and no public IP, except the
deliberate drift of DELIBERATE_DRIFT:

    aws-prod-use1  worker-prod-0011  QLRF-TAG-001   no owner tag
                   batch-prod-0024   QLRF-TAG-001   no cost-center tag
                   db-prod-0030      QLRF-SIZE-001  x2iedn.32xlarge
                   batch-prod-0008   QLRF-SIZE-001  p4d.24xlarge
                   worker-prod-0023  QLRF-ENC-001   a data volume restored from an unencrypted snapshot
                   mssql-prod-0042   QLRF-ENC-001   a data volume restored from an unencrypted snapshot
                   api-prod-0039     QLRF-NET-001   public IP
                   web-prod-0057     QLRF-NET-001   public IP
                   cache-prod-0053   QLRF-BAK-001   no backup-policy tag
                   worker-prod-0068  QLRF-BAK-001   no backup-policy tag
    aws-stg-euw1   web-stg-0009, web-stg-0010  public IPs (staging: outside QLRF-NET-001's scope)
                   batch-stg-0033    an unencrypted data volume (staging: outside QLRF-ENC-001's scope)

EC2 reports no OS release (PlatformDetails is "Linux/UNIX"), so QLRF-EOL-001 has nothing to
say here. Synthetic estates larger than the bundled one add about 1% random drift per rule
(common.DriftPlan).
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
from qlrf_pipelines.sample.catalog import MACHINE_IMAGE_VERSIONS, CatalogVersion, aws_ami_id
from qlrf_pipelines.sample.common import (
    BAK_RULE,
    ENC_RULE,
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

_STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
_PLATFORM_DETAILS = {"ubuntu": "Linux/UNIX", "rhel": "Red Hat Enterprise Linux", "windows": "Windows"}

# (instance type, CoreCount, ThreadsPerCore)
_LINUX_TYPES = (
    ("t3.medium", 1, 2),
    ("m6i.large", 1, 2),
    ("m6i.xlarge", 2, 2),
    ("c6i.xlarge", 2, 2),
    ("c6i.2xlarge", 4, 2),
)
_DB_TYPES = (("r6i.large", 1, 2), ("r6i.xlarge", 2, 2), ("r6i.2xlarge", 4, 2))
_WINDOWS_TYPES = (("m6i.xlarge", 2, 2), ("m6i.2xlarge", 4, 2), ("r6i.xlarge", 2, 2))
# What an instance breaking QLRF-SIZE-001 runs: databases a huge memory-optimized type, the
# rest a GPU type someone launched for an experiment.
_OVERSIZED_DB = ("x2iedn.32xlarge", 64, 2)
_OVERSIZED = ("p4d.24xlarge", 48, 2)

DELIBERATE_DRIFT: dict[str, dict[str, tuple[str, ...]]] = {
    "aws-prod-use1": {
        "worker-prod-0011": (TAG_RULE,),
        "batch-prod-0024": (TAG_RULE,),
        "db-prod-0030": (SIZE_RULE,),
        "batch-prod-0008": (SIZE_RULE,),
        "worker-prod-0023": (ENC_RULE,),
        "mssql-prod-0042": (ENC_RULE,),
        "api-prod-0039": (NET_RULE,),
        "web-prod-0057": (NET_RULE,),
        "cache-prod-0053": (BAK_RULE,),
        "worker-prod-0068": (BAK_RULE,),
    },
    "aws-stg-euw1": {
        "web-stg-0009": (NET_RULE,),
        "web-stg-0010": (NET_RULE,),
        "batch-stg-0033": (ENC_RULE,),
    },
}
SYNTHETIC_RULES = (TAG_RULE, SIZE_RULE, ENC_RULE, NET_RULE, BAK_RULE)
CUSTOMER_KEY_ALIAS = "alias/qlrf-ebs"
_DEVICE_SALT = {"/dev/sda1": 0x5A17_0000_0000_0001, "/dev/sdf": 0x5A17_0000_0000_0002, "/dev/sdg": 0x5A17_0000_0000_0003}
_ROOT_GIB = {"linux": 20, "windows": 80}

# Images the sample account owns that are not golden (no qlrf tags).
_NON_GOLDEN = (
    ("legacy-erp-app-2025-03", "linux", "Linux/UNIX", datetime.fromisoformat("2025-03-18T14:02:11+00:00")),
    ("reporting-win2019-imported", "windows", "Windows", datetime.fromisoformat("2025-08-05T09:40:57+00:00")),
)
# Public (marketplace) AMIs the account runs but does not own: absent from DescribeImages(Owners=self).
_PUBLIC = (
    ("099720109477/ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20261015", "linux", "Linux/UNIX"),
    ("309956199498/RHEL-9.4.0_HVM-20261002-x86_64-0-Hourly2-GP3", "linux", "Red Hat Enterprise Linux"),
    ("801119661308/Windows_Server-2022-English-Full-Base-2026.10.08", "windows", "Windows"),
)


def public_ami_id(region: str, index: int = 0) -> str:
    """A marketplace AMI id (not owned by the site, so not in its DescribeImages)."""
    return f"ami-0{stable_hex(f'{region}/{_PUBLIC[index][0]}', 16)}"


def _ts(value: datetime) -> str:
    """EC2 API timestamps: '2026-10-05T07:12:33.000Z' (the input is UTC)."""
    return value.isoformat(timespec="seconds")[:19] + ".000Z"


def _images(site: Site, region: str) -> list[dict]:
    account = site.account or "000000000000"
    images = []
    for version in MACHINE_IMAGE_VERSIONS:
        details = _PLATFORM_DETAILS[os_kind(version)]
        name = f"golden-{version.slug}"
        image = {
            "ImageId": aws_ami_id(region, version),
            "Name": name,
            "Description": f"{version.os} golden image {version.family} {version.version}",
            "CreationDate": _ts(version.created_at),
            "OwnerId": account,
            "ImageLocation": f"{account}/{name}",
            "ImageType": "machine",
            "Public": False,
            "State": "available",
            "Architecture": "x86_64",
            "PlatformDetails": details,
            "UsageOperation": "RunInstances:0002" if version.platform == "windows" else "RunInstances",
            "RootDeviceType": "ebs",
            "RootDeviceName": "/dev/sda1",
            "VirtualizationType": "hvm",
            "Hypervisor": "xen",
            "EnaSupport": True,
            "Tags": [
                {"Key": "Name", "Value": name},
                {"Key": FAMILY_TAG, "Value": version.family},
                {"Key": VERSION_TAG, "Value": version.version},
                {"Key": STATUS_TAG, "Value": version.status},
            ],
        }
        if version.parent:
            # Lineage: the golden image this one was built from (a golden id, not a region's AMI).
            image["Tags"].append({"Key": PARENT_IMAGE_TAG, "Value": version.parent})
            image["Tags"].append({"Key": PARENT_RELATION_TAG, "Value": version.relation or "derived_from"})
        if version.platform == "windows":
            image["Platform"] = "windows"
        if version.status in ("deprecated", "revoked"):
            image["DeprecationTime"] = _ts(version.created_at + timedelta(days=120))
        images.append(image)
    for name, platform, details, created in _NON_GOLDEN:
        image = {
            "ImageId": f"ami-0{stable_hex(f'{region}/{account}/{name}', 16)}",
            "Name": name,
            "Description": f"{name} (not a golden image)",
            "CreationDate": _ts(created),
            "OwnerId": account,
            "ImageType": "machine",
            "Public": False,
            "State": "available",
            "Architecture": "x86_64",
            "PlatformDetails": details,
            "RootDeviceType": "ebs",
            "VirtualizationType": "hvm",
            "Tags": [{"Key": "Name", "Value": name}, {"Key": "team", "Value": "legacy-apps"}],
        }
        if platform == "windows":
            image["Platform"] = "windows"
        images.append(image)
    return images


@functools.cache
def _key_id(account: str, region: str, alias: str) -> str:
    """A stable KMS key id (a UUID) for an alias of the account in a region."""
    h = stable_hex(f"{account}/{region}/{alias}", 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@functools.cache
def _key_arn(account: str, region: str, alias: str) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{_key_id(account, region, alias)}"


def _aliases(account: str, region: str) -> list[dict]:
    """ListAliases of a region: the AWS managed keys services created, and the customer managed key."""
    return [
        {
            "AliasName": alias,
            "AliasArn": f"arn:aws:kms:{region}:{account}:{alias}",
            "TargetKeyId": _key_id(account, region, alias),
        }
        for alias in ("alias/aws/ebs", "alias/aws/rds", "alias/aws/s3", CUSTOMER_KEY_ALIAS)
    ]


def _volumes(account: str, region: str, instance_id: str, asset: PlannedAsset) -> list[dict]:
    """The EBS volumes of an instance: the root volume under the AWS managed key; databases also
    have a data volume, and both under the customer managed key; an instance breaking
    QLRF-ENC-001 has a data volume restored from an unencrypted snapshot."""
    database = asset.role in ("db", "mssql")
    key = _key_arn(account, region, CUSTOMER_KEY_ALIAS if database else "alias/aws/ebs")
    disks = [("/dev/sda1", _ROOT_GIB[asset.platform], key)]
    if database:
        disks.append(("/dev/sdf", 500, key))
    if ENC_RULE in asset.drift:
        disks.append(("/dev/sdg", 100, None))
    volumes = []
    serial = int(instance_id[3:], 16)
    for device, size, kms_key in disks:
        volume_id = f"vol-0{serial ^ _DEVICE_SALT[device]:016x}"  # unique per instance and device
        volume = {
            "VolumeId": volume_id,
            "Size": size,
            "VolumeType": "gp3",
            "State": "in-use",
            "Encrypted": kms_key is not None,
            "Attachments": [
                {
                    "InstanceId": instance_id,
                    "Device": device,
                    "State": "attached",
                    "VolumeId": volume_id,
                    "DeleteOnTermination": device == "/dev/sda1",
                }
            ],
        }
        if kms_key:
            volume["KmsKeyId"] = kms_key
        volumes.append(volume)
    return volumes


def _non_catalog_image(region: str, account: str, asset: PlannedAsset) -> tuple[str, str]:
    """(ImageId, PlatformDetails) of a non-catalog image for an asset of the asset's platform."""
    choice = asset.unknown_choice
    if asset.platform == "windows":
        if choice < 0.6:
            return public_ami_id(region, 2), "Windows"
        name = _NON_GOLDEN[1][0]
        return f"ami-0{stable_hex(f'{region}/{account}/{name}', 16)}", "Windows"
    if choice < 0.7:
        index = 0 if choice < 0.5 else 1
        return public_ami_id(region, index), _PUBLIC[index][2]
    name = _NON_GOLDEN[0][0]
    return f"ami-0{stable_hex(f'{region}/{account}/{name}', 16)}", "Linux/UNIX"


@gc_paused()
def generate_payload(site: Site, n_assets: int, rng: random.Random) -> dict:
    """DescribeInstances / DescribeImages / DescribeVolumes / ListAliases per region: the anchors
    first, then random instances."""
    account = site.account or "000000000000"
    regions = site_regions(site)
    plan = plan_assets(site, n_assets, rng, DriftPlan(site, DELIBERATE_DRIFT, SYNTHETIC_RULES))
    random_ = rng.random
    getrandbits = rng.getrandbits

    payload_regions: dict[str, dict] = {}
    reservations_of: dict[str, list] = {}
    volumes_of: dict[str, list] = {}
    vpcs: dict[str, str] = {}
    pools: dict[tuple[str, int], AddressPool] = {}
    zones: dict[tuple[str, int], dict] = {}
    public_ips = AddressPool(54, 160, rng)
    # Addresses for the instances breaking QLRF-NET-001 that drew none from the pool above (its
    # own rng: the estate's rng must draw what it always drew).
    exposed_ips = AddressPool(54, 161, random.Random(f"{site.id}/public-ips"))
    for region_index, region in enumerate(regions):
        reservations_of[region] = []
        volumes_of[region] = []
        vpcs[region] = f"vpc-0{stable_hex(f'{account}/{region}/vpc', 16)}"
        payload_regions[region] = {
            "DescribeInstances": {"Reservations": reservations_of[region]},
            "DescribeImages": {"Images": _images(site, region)},
            "DescribeVolumes": {"Volumes": volumes_of[region]},
            "ListAliases": {"Aliases": _aliases(account, region)},
        }
        for zone_index in range(3):
            pools[(region, zone_index)] = AddressPool(10, (16 * region_index + 4 * zone_index) % 256, rng)
            zones[(region, zone_index)] = f"{region}{'abc'[zone_index]}"
    subnets: dict[tuple[str, str, int], str] = {}
    image_ids: dict[tuple[str, CatalogVersion], tuple[str, str]] = {}
    seen_ids: set[str] = set()

    for asset in plan:
        region = pick_region(regions, asset.region_choice)
        zone_index = 0 if asset.role == "anchor" else int(random_() * 3)
        version = asset.version
        if version is not None:
            key = (region, version)
            image = image_ids.get(key)
            if image is None:
                image = image_ids[key] = (aws_ami_id(region, version), _PLATFORM_DETAILS[os_kind(version)])
            image_id, details = image
        else:
            image_id, details = _non_catalog_image(region, account, asset)
        types = asset.sizes(_LINUX_TYPES, _DB_TYPES, _WINDOWS_TYPES)
        instance_type, cores, threads = types[int(random_() * len(types))]
        if SIZE_RULE in asset.drift:
            instance_type, cores, threads = _OVERSIZED_DB if types is _DB_TYPES else _OVERSIZED

        instance_id = f"i-0{getrandbits(64):016x}"
        while instance_id in seen_ids:
            instance_id = f"i-0{getrandbits(64):016x}"
        seen_ids.add(instance_id)

        state = asset.state
        if state == "stopped" and random_() < 0.1:
            state = "stopping"
        elif state == "terminated" and random_() < 0.3:
            state = "shutting-down"

        tags = [{"Key": "Name", "Value": asset.name}]
        tags.extend({"Key": key, "Value": value} for key, value in asset.tags.items())
        instance = {
            "InstanceId": instance_id,
            "ImageId": image_id,
            "InstanceType": instance_type,
            "LaunchTime": _ts(asset.launched_at),
            "State": {"Code": _STATE_CODES[state], "Name": state},
            "Placement": {"AvailabilityZone": zones[(region, zone_index)], "Tenancy": "default"},
            "Architecture": "x86_64",
            "PlatformDetails": details,
            "CpuOptions": {"CoreCount": cores, "ThreadsPerCore": threads},
            "Tags": tags,
        }
        if asset.platform == "windows":
            instance["Platform"] = "windows"
        if state != "terminated" and state != "shutting-down":
            # Terminated instances keep neither addresses nor network placement.
            private_ip = pools[(region, zone_index)].take()
            octets = private_ip.split(".")
            subnet_key = (region, octets[1], int(octets[2]) >> 4)  # one /20 subnet per 16 third octets
            subnet = subnets.get(subnet_key)
            if subnet is None:
                subnet = subnets[subnet_key] = f"subnet-0{stable_hex(f'{account}/{subnet_key}', 16)}"
            instance["PrivateIpAddress"] = private_ip
            instance["PrivateDnsName"] = f"ip-{private_ip.replace('.', '-')}.{region}.compute.internal"
            instance["VpcId"] = vpcs[region]
            instance["SubnetId"] = subnet
            # The draw (and address) of the estate's first version, when a third of the web tier
            # had public IPs; now only instances breaking QLRF-NET-001 keep one.
            drawn = None
            if state == "running" and random_() < (0.5 if asset.role in ("web", "api") else 0.04):
                drawn = public_ips.take()
            if state == "running" and NET_RULE in asset.drift:
                instance["PublicIpAddress"] = drawn or exposed_ips.take()
            volumes_of[region].extend(_volumes(account, region, instance_id, asset))
        reservations_of[region].append(
            {
                "ReservationId": f"r-0{getrandbits(64):016x}",
                "OwnerId": account,
                "Groups": [],
                "Instances": [instance],
            }
        )
    return {"regions": payload_regions}
