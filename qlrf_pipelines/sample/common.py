"""Pieces the sample payload generators share.

* The provider-neutral plan of a VM estate (`plan_assets`: anchors, image mix, power states,
  names, tags, launch times) that the AWS, Azure and GCP generators each write in their own
  provider's shape, so every VM site has the same kind of estate.
* Catalog lookups (`catalog_version`, `image_pools`, `os_kind`) and small deterministic helpers
  (`Picker`, `below`, `stable_hex`, `AddressPool`, `utc_iso`) used by all generators.
* `DriftPlan`: which bundled desired-state rules (qlrf_pipelines/drift/default_rules.yaml) an
  asset breaks on purpose. Every generator names its deliberate failures per site in a
  `DELIBERATE_DRIFT` table (tests/fixtures/sample_drift_expectations.yaml lists them for the
  tests); everything else is written to pass every rule.

Everything is derived from the rng passed in, the catalog and SAMPLE_CLOCK, so a generator
gives the same payload for the same seed. (The GC pause the generators run under is
`qlrf_pipelines.connectors.base.gc_paused`, the one the normalizers use.)
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping
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
# Desired-state drift on purpose
# ---------------------------------------------------------------------------------------------

TAG_RULE = "QLRF-TAG-001"  # production VMs / nodes carry owner and cost-center tags
SIZE_RULE = "QLRF-SIZE-001"  # production instance types from the allowed list
ENC_RULE = "QLRF-ENC-001"  # production VM disks encrypted at rest
NET_RULE = "QLRF-NET-001"  # no public IP on production VMs
K8S_RULE = "QLRF-K8S-001"  # workload images pinned by digest
VSP_RULE = "QLRF-VSP-001"  # VMware Tools running on powered-on vSphere VMs
EOL_RULE = "QLRF-EOL-001"  # OS release not past its end of life
BAK_RULE = "QLRF-BAK-001"  # production VMs carry a backup-policy tag

SYNTHETIC_FROM = 100
"""Assets from this index on exist only in synthetic (benchmark-size) estates: no bundled site has
this many, so they can break rules at random without touching the bundled estate."""
_SYNTHETIC_THRESHOLD = 3  # of 256: about 1.2% of synthetic assets break each rule


class DriftPlan:
    """Which rules each asset of one site breaks on purpose.

    `named` maps site id -> asset name -> rule ids (a generator's DELIBERATE_DRIFT). In estates
    larger than the bundled one, assets from SYNTHETIC_FROM on also break each of `rules` with a
    probability of about 1.2%, chosen from a hash of the site and the asset name rather than the
    generator's rng, so that adding drift leaves every other value of the estate as it was.
    """

    def __init__(self, site: Site, named: Mapping[str, Mapping[str, Iterable[str]]], rules: Iterable[str] = ()):
        self.site_id = site.id
        self.named = {name: frozenset(rule_ids) for name, rule_ids in named.get(site.id, {}).items()}
        self.rules = tuple(rules)
        if len(self.rules) > 16:
            raise ValueError("at most 16 rules per provider (one byte of a 16-byte hash each)")

    def __call__(self, name: str, index: int) -> frozenset[str]:
        breaks = self.named.get(name, frozenset())
        if index >= SYNTHETIC_FROM and self.rules:
            digest = hashlib.blake2b(f"{self.site_id}/{name}".encode(), digest_size=16).digest()
            extra = [rule for rule, byte in zip(self.rules, digest) if byte < _SYNTHETIC_THRESHOLD]
            if extra:
                breaks = breaks.union(extra)
        return breaks


# Cost centers by owning team, and backup policies by role: the tags QLRF-TAG-001 / QLRF-BAK-001 ask for.
COST_CENTERS = {
    "sre": "CC-1010",
    "frontend": "CC-2100",
    "platform": "CC-2200",
    "data": "CC-2300",
    "dba": "CC-2400",
    "corp-it": "CC-3100",
}
BACKUP_POLICIES = {"db": "gold", "mssql": "gold", "web": "bronze", "cache": "bronze"}
DEFAULT_BACKUP_POLICY = "silver"


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
    cost_center: str | None = None
    backup_policy: str | None = None
    drift: frozenset[str] = frozenset()  # the rules this asset breaks on purpose (DriftPlan)

    @property
    def tags(self) -> dict[str, str]:
        """env, team, app, then (when set) owner, cost-center and backup-policy, in that order."""
        tags = {"env": self.env, "team": self.team, "app": self.app}
        if self.owner:
            tags["owner"] = self.owner
        if self.cost_center:
            tags["cost-center"] = self.cost_center
        if self.backup_policy:
            tags["backup-policy"] = self.backup_policy
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


def _governance(asset: PlannedAsset, drift: frozenset[str]) -> None:
    """Owner, cost-center and backup-policy tags, less what the asset's drift takes away: breaking
    QLRF-TAG-001 drops the owner (odd index) or the cost center (even index), breaking
    QLRF-BAK-001 drops the backup policy."""
    asset.drift = drift
    asset.owner = f"{asset.team}@example.com"
    asset.cost_center = COST_CENTERS.get(asset.team)
    asset.backup_policy = BACKUP_POLICIES.get(asset.role, DEFAULT_BACKUP_POLICY)
    if TAG_RULE in drift:
        if asset.index % 2:
            asset.owner = None
        else:
            asset.cost_center = None
    if BAK_RULE in drift:
        asset.backup_policy = None


def plan_assets(
    site: Site, n_assets: int, rng: random.Random, drift: DriftPlan | None = None
) -> list[PlannedAsset]:
    """The four anchors, then random assets up to n_assets (all derived from rng and SAMPLE_CLOCK).

    Every asset carries owner, cost-center and backup-policy tags unless `drift` says it breaks
    QLRF-TAG-001 / QLRF-BAK-001 (see _governance)."""
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
        _governance(plan[-1], drift(name, index) if drift else frozenset())

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
        name = f"{role}-{env}-{index:04d}"
        plan.append(
            PlannedAsset(
                index=index,
                name=name,
                version=version,
                state=state,
                platform=platform,
                role=role,
                env=env,
                team=team,
                app=apps[int(random_() * len(apps))],
                # This draw once left 10% of the assets without an owner; it is kept so the rest
                # of the estate stays what it was, and _governance decides the owner now.
                owner=None if random_() < 0.1 else f"{team}@example.com",
                launched_at=_launch_time(version, state, rng),
                unknown_choice=random_(),
                region_choice=random_(),
            )
        )
        _governance(plan[-1], drift(name, index) if drift else frozenset())
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
