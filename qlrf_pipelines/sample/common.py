"""Pieces the sample payload generators share.

* The provider-neutral plan of a VM estate (`plan_assets`: anchors, image mix, power states,
  names, tags, launch times) that the AWS, Azure and GCP generators each write in their own
  provider's shape, so every VM site has the same kind of estate.
* Catalog lookups (`catalog_version`, `image_pools`, `os_kind`) and small deterministic helpers
  (`Picker`, `below`, `stable_hex`, `AddressPool`, `utc_iso`) used by all generators.

Everything is derived from the rng passed in, the catalog and SAMPLE_CLOCK, so a generator
gives the same payload for the same seed. (The GC pause the generators run under is
`qlrf_pipelines.connectors.base.gc_paused`, the one the normalizers use.)
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import accumulate

from qlrf_pipelines.sample.catalog import (
    MACHINE_IMAGE_VERSIONS,
    SAMPLE_CLOCK,
    CatalogVersion,
    current_production,
    machine_families,
    versions_of,
)
from qlrf_pipelines.sites import Site

# ---------------------------------------------------------------------------------------------
# Catalog lookups and deterministic helpers
# ---------------------------------------------------------------------------------------------


def catalog_version(family: str, version: str) -> CatalogVersion:
    for candidate in versions_of(family):
        if candidate.version == version:
            return candidate
    raise KeyError(f"{family} {version} is not in the sample catalog")


def image_pools() -> dict[str, list[CatalogVersion]]:
    """Machine-image versions by the kind of image an asset runs: the current production
    version of each family, older production versions, deprecated, revoked and testing ones."""
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


def os_kind(version: CatalogVersion) -> str:
    """'windows', 'rhel' or 'ubuntu': which OS a machine-image version is built on."""
    return "windows" if version.platform == "windows" else "rhel" if version.family.startswith("rhel") else "ubuntu"


def below(rng: random.Random, n: int) -> int:
    """rng.randrange(n) at a fraction of the cost (deterministic all the same)."""
    return int(rng.random() * n)


class Picker:
    """Weighted choice with precomputed cumulative weights (rng.choices recomputes them)."""

    def __init__(self, items, weights):
        self.items = list(items)
        self.cum = list(accumulate(weights))

    def __call__(self, rng: random.Random):
        return self.items[bisect(self.cum, rng.random() * self.cum[-1])]


def stable_hex(text: str, length: int) -> str:
    """Deterministic hex id fragment that does not depend on the rng (images are the same
    whatever the number of assets)."""
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def utc_iso(moment: datetime) -> str:
    """A timestamp as vCenter and the Kubernetes API write it: '2026-10-05T07:12:33Z'."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
# Provider-neutral plan of a sample VM estate
# ---------------------------------------------------------------------------------------------

ANCHOR_CURRENT = "anchor-current-01"
ANCHOR_BEHIND = "anchor-behind-01"
ANCHOR_REVOKED = "anchor-revoked-01"
ANCHOR_UNKNOWN = "anchor-unknown-01"
ANCHOR_NAMES = (ANCHOR_CURRENT, ANCHOR_BEHIND, ANCHOR_REVOKED, ANCHOR_UNKNOWN)

ANCHOR_FAMILY = "ubuntu-22.04-base"


def anchor_versions() -> tuple[tuple[str, CatalogVersion | None], ...]:
    """The anchor VMs the demo and tests rely on, with the catalog version each runs (None: an
    image that is not in the catalog)."""
    return (
        (ANCHOR_CURRENT, current_production(ANCHOR_FAMILY)),
        (ANCHOR_BEHIND, catalog_version(ANCHOR_FAMILY, "1.0.0")),
        (ANCHOR_REVOKED, catalog_version("rhel-9-base", "9.2.1")),
        (ANCHOR_UNKNOWN, None),
    )


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
        """env, team, app and (when there is one) owner, in that order."""
        tags = {"env": self.env, "team": self.team, "app": self.app}
        if self.owner:
            tags["owner"] = self.owner
        return tags

    def sizes(self, linux: tuple, db: tuple, windows: tuple) -> tuple:
        """The machine sizes this asset picks from: database roles first, then by platform."""
        if self.role == "db" or self.role == "mssql":
            return db
        return windows if self.platform == "windows" else linux


def environment_short(site: Site) -> str:
    return _ENVIRONMENT_SHORT.get(site.environment, site.environment[:4] or "env")


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
    plan: list[PlannedAsset] = []
    for index, (name, version) in enumerate(anchor_versions()):
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

    pools = image_pools()
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
