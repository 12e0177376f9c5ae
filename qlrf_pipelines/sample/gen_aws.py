"""Sample AWS payloads: DescribeInstances / DescribeImages responses per region (the shape
`qlrf_pipelines.connectors.aws.normalize` reads).

This module also holds the provider-neutral plan of a sample estate (`plan_assets`: anchors,
image mix, power states, names, tags, launch times) that the Azure and GCP generators share, so
every VM site has the same kind of estate in its own provider's shape.
"""

from __future__ import annotations

import gc
import hashlib
import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

from qlrf_pipelines.models.records import FAMILY_TAG, STATUS_TAG, VERSION_TAG
from qlrf_pipelines.sample.catalog import (
    MACHINE_IMAGE_VERSIONS,
    SAMPLE_CLOCK,
    CatalogVersion,
    aws_ami_id,
    current_production,
    machine_families,
)
from qlrf_pipelines.sites import Site

# ---------------------------------------------------------------------------------------------
# Provider-neutral plan of a sample estate
# ---------------------------------------------------------------------------------------------

ANCHOR_CURRENT = "anchor-current-01"
ANCHOR_BEHIND = "anchor-behind-01"
ANCHOR_REVOKED = "anchor-revoked-01"
ANCHOR_UNKNOWN = "anchor-unknown-01"
ANCHOR_NAMES = (ANCHOR_CURRENT, ANCHOR_BEHIND, ANCHOR_REVOKED, ANCHOR_UNKNOWN)

ANCHOR_FAMILY = "ubuntu-22.04-base"


def catalog_version(family: str, version: str) -> CatalogVersion:
    for candidate in MACHINE_IMAGE_VERSIONS:
        if candidate.family == family and candidate.version == version:
            return candidate
    raise KeyError(f"{family} {version} is not in the sample catalog")


# Cumulative weights of the image an asset runs: current production 55%, older production 20%,
# deprecated 10%, revoked 4%, testing 5%, not in the catalog 6%.
_CATEGORY_THRESHOLDS = (
    (0.55, "current"),
    (0.75, "older"),
    (0.85, "deprecated"),
    (0.89, "revoked"),
    (0.94, "testing"),
    (1.00, "unknown"),
)

_LINUX_ROLES = (
    ("web", "frontend", ("storefront", "checkout", "portal")),
    ("api", "platform", ("orders", "payments", "catalog", "search")),
    ("batch", "data", ("reporting", "billing-export", "etl")),
    ("db", "dba", ("orders", "payments", "catalog")),
    ("cache", "platform", ("sessions", "catalog")),
    ("worker", "platform", ("notifications", "orders", "media")),
)
_WINDOWS_ROLES = (
    ("win", "corp-it", ("intranet", "fileshare", "erp")),
    ("mssql", "dba", ("erp", "finance")),
)
_ENVIRONMENT_SHORT = {"production": "prod", "staging": "stg", "development": "dev", "dr": "dr", "test": "test"}


@dataclass(slots=True)
class PlannedAsset:
    """One sample VM before it is written in a provider's shape."""

    index: int
    name: str
    version: CatalogVersion | None  # None: an image that is not in the catalog
    state: str  # running | stopped | pending | terminated
    platform: str  # linux | windows
    role: str
    env: str
    team: str
    app: str
    owner: str | None
    launched_at: datetime
    unknown_choice: float  # which non-catalog image (0..1), for assets with version None
    region_choice: float  # which of the site's regions (0..1)

    @property
    def tags(self) -> dict[str, str]:
        tags = {"env": self.env, "team": self.team, "app": self.app}
        if self.owner:
            tags["owner"] = self.owner
        return tags


def environment_short(site: Site) -> str:
    return _ENVIRONMENT_SHORT.get(site.environment, site.environment[:4] or "env")


def _pools() -> dict[str, list[CatalogVersion]]:
    families = machine_families()
    current = [current_production(f) for f in families]
    current_set = set(current)
    return {
        "current": current,
        "older": [v for v in MACHINE_IMAGE_VERSIONS if v.status == "production" and v not in current_set],
        "deprecated": [v for v in MACHINE_IMAGE_VERSIONS if v.status == "deprecated"],
        "revoked": [v for v in MACHINE_IMAGE_VERSIONS if v.status == "revoked"],
        "testing": [v for v in MACHINE_IMAGE_VERSIONS if v.status == "testing"],
    }


def _launch_time(version: CatalogVersion | None, state: str, rng: random.Random) -> datetime:
    if state == "pending":
        return SAMPLE_CLOCK - timedelta(seconds=rng.uniform(15, 600))
    end = SAMPLE_CLOCK - timedelta(minutes=30)
    if version is None:
        # Non-catalog images are the public images of mid-October 2026 (or older private ones).
        return end - timedelta(seconds=rng.uniform(0, 15 * 86400))
    start = version.created_at + timedelta(hours=2)  # never before the image existed
    return start + timedelta(seconds=rng.random() * max((end - start).total_seconds(), 0))


def plan_assets(site: Site, n_assets: int, rng: random.Random) -> list[PlannedAsset]:
    """The four anchors, then random assets up to n_assets (all derived from rng and SAMPLE_CLOCK)."""
    if n_assets < len(ANCHOR_NAMES):
        raise ValueError(f"n_assets must be at least {len(ANCHOR_NAMES)} (the anchor assets), got {n_assets}")
    env = environment_short(site)
    anchors = (
        (ANCHOR_CURRENT, current_production(ANCHOR_FAMILY)),
        (ANCHOR_BEHIND, catalog_version(ANCHOR_FAMILY, "1.0.0")),
        (ANCHOR_REVOKED, catalog_version("rhel-9-base", "9.2.1")),
        (ANCHOR_UNKNOWN, None),
    )
    plan: list[PlannedAsset] = []
    for index, (name, version) in enumerate(anchors):
        plan.append(
            PlannedAsset(
                index=index,
                name=name,
                version=version,
                state="running",
                platform="linux",
                role="anchor",
                env=env,
                team="sre",
                app="qlrf-anchor",
                owner="sre@example.com",
                launched_at=_launch_time(version, "running", rng),
                unknown_choice=0.0,  # the first non-catalog image: the one the anchor is specified on
                region_choice=0.0,  # the site's own location
            )
        )

    pools = _pools()
    random_ = rng.random
    for index in range(len(ANCHOR_NAMES), n_assets):
        roll = random_()
        version = None
        for threshold, category in _CATEGORY_THRESHOLDS:
            if roll < threshold:
                break
        if category != "unknown":
            pool = pools[category] or pools["current"]
            version = pool[int(random_() * len(pool))]
        roll = random_()
        state = "running" if roll < 0.88 else "stopped" if roll < 0.97 else "pending" if roll < 0.99 else "terminated"
        if version is not None:
            platform = version.platform
        else:
            platform = "windows" if random_() < 0.15 else "linux"
        roles = _WINDOWS_ROLES if platform == "windows" else _LINUX_ROLES
        role, team, apps = roles[int(random_() * len(roles))]
        plan.append(
            PlannedAsset(
                index=index,
                name=f"{role}-{env}-{index:04d}",
                version=version,
                state=state,
                platform=platform,
                role=role,
                env=env,
                team=team,
                app=apps[int(random_() * len(apps))],
                owner=None if random_() < 0.1 else f"{team}@example.com",
                launched_at=_launch_time(version, state, rng),
                unknown_choice=random_(),
                region_choice=random_(),
            )
        )
    return plan


def pick_region(regions: list[str], choice: float) -> str:
    """75% in the site's own location, the rest spread over its extra regions."""
    if len(regions) == 1 or choice < 0.75:
        return regions[0]
    extra = regions[1:]
    return extra[min(int((choice - 0.75) / 0.25 * len(extra)), len(extra) - 1)]


def site_regions(site: Site) -> list[str]:
    regions = [site.location]
    for region in site.regions:
        if region not in regions:
            regions.append(region)
    return regions


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large acyclic payload: with
    hundreds of thousands of new dicts alive, its collections cost more than the work itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def stable_hex(text: str, length: int) -> str:
    """Deterministic hex id fragment that does not depend on the rng (images are the same
    whatever the number of assets)."""
    return hashlib.sha1(text.encode()).hexdigest()[:length]


class AddressPool:
    """Unique, plausible-looking IPv4 addresses from a base address (never .0-.3 or .255)."""

    def __init__(self, first_octet: int, second_octet: int, rng: random.Random):
        self._next = (first_octet << 24) | (second_octet << 16) | 10
        self._random = rng.random

    def take(self) -> str:
        address = self._next
        if (address & 0xFF) < 4 or (address & 0xFF) == 255:
            address = (address | 0xFF) + 5
        self._next = address + 1 + int(self._random() * 3)
        return f"{address >> 24}.{(address >> 16) & 0xFF}.{(address >> 8) & 0xFF}.{address & 0xFF}"


# ---------------------------------------------------------------------------------------------
# AWS payload
# ---------------------------------------------------------------------------------------------

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


def _os_kind(version: CatalogVersion) -> str:
    return "windows" if version.platform == "windows" else "rhel" if version.family.startswith("rhel") else "ubuntu"


def _images(site: Site, region: str) -> list[dict]:
    account = site.account or "000000000000"
    images = []
    for version in MACHINE_IMAGE_VERSIONS:
        details = _PLATFORM_DETAILS[_os_kind(version)]
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


def generate_payload(site: Site, n_assets: int, rng: random.Random) -> dict:
    """DescribeInstances / DescribeImages per region: the anchors first, then random instances."""
    with gc_paused():
        return _generate(site, n_assets, rng)


def _generate(site: Site, n_assets: int, rng: random.Random) -> dict:
    account = site.account or "000000000000"
    regions = site_regions(site)
    plan = plan_assets(site, n_assets, rng)
    random_ = rng.random
    getrandbits = rng.getrandbits

    payload_regions: dict[str, dict] = {}
    reservations_of: dict[str, list] = {}
    vpcs: dict[str, str] = {}
    pools: dict[tuple[str, int], AddressPool] = {}
    zones: dict[tuple[str, int], dict] = {}
    public_ips = AddressPool(54, 160, rng)
    for region_index, region in enumerate(regions):
        reservations_of[region] = []
        vpcs[region] = f"vpc-0{stable_hex(f'{account}/{region}/vpc', 16)}"
        payload_regions[region] = {
            "DescribeInstances": {"Reservations": reservations_of[region]},
            "DescribeImages": {"Images": _images(site, region)},
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
                image = image_ids[key] = (aws_ami_id(region, version), _PLATFORM_DETAILS[_os_kind(version)])
            image_id, details = image
        else:
            image_id, details = _non_catalog_image(region, account, asset)
        if asset.role == "db" or asset.role == "mssql":
            types = _DB_TYPES
        elif asset.platform == "windows":
            types = _WINDOWS_TYPES
        else:
            types = _LINUX_TYPES
        instance_type, cores, threads = types[int(random_() * len(types))]

        instance_id = f"i-0{getrandbits(64):016x}"
        while instance_id in seen_ids:
            instance_id = f"i-0{getrandbits(64):016x}"
        seen_ids.add(instance_id)

        state = asset.state
        if state == "stopped" and random_() < 0.1:
            state = "stopping"
        elif state == "terminated" and random_() < 0.3:
            state = "shutting-down"

        tags = [
            {"Key": "Name", "Value": asset.name},
            {"Key": "env", "Value": asset.env},
            {"Key": "team", "Value": asset.team},
            {"Key": "app", "Value": asset.app},
        ]
        if asset.owner:
            tags.append({"Key": "owner", "Value": asset.owner})
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
            if state == "running" and random_() < (0.5 if asset.role in ("web", "api") else 0.04):
                instance["PublicIpAddress"] = public_ips.take()
        reservations_of[region].append(
            {
                "ReservationId": f"r-0{getrandbits(64):016x}",
                "OwnerId": account,
                "Groups": [],
                "Instances": [instance],
            }
        )
    return {"regions": payload_regions}
