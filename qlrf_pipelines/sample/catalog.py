"""The golden image catalog the sample estate is built around.

Each machine-image family exists on every VM provider (an AMI per AWS region, an Azure managed
image, a GCP image, a vSphere template); container families exist in the golden registry used by
the Kubernetes sites. Dates are fixed so the sample estate (and its drift) is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

GOLDEN_REGISTRY = "registry.example.com/golden"
SAMPLE_CLOCK = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)
"""'Now' for the sample estate: launch times and image ages are relative to it."""


@dataclass(frozen=True)
class CatalogVersion:
    family: str
    version: str
    status: str  # testing | production | deprecated | revoked
    created_at: datetime
    platform: str  # linux | windows
    os: str
    parent: str | None = None  # the golden image id (`family@version`) this version was built from
    relation: str | None = None  # how: one of models.records.LINEAGE_RELATIONS, set with parent

    @property
    def image_id(self) -> str:
        """The golden image id: 'ubuntu-22.04-base@1.3.0'."""
        return f"{self.family}@{self.version}"

    @property
    def parent_version(self) -> str | None:
        """The parent's version ('1.2.0' for parent 'ubuntu-22.04-base@1.2.0'), or None."""
        return self.parent.rpartition("@")[2] if self.parent else None

    @property
    def parent_family(self) -> str | None:
        return self.parent.rpartition("@")[0] if self.parent else None

    @property
    def slug(self) -> str:
        """A provider-safe name fragment: 'ubuntu-22-04-base-1-3-0'."""
        return f"{self.family}-{self.version}".replace(".", "-").replace("/", "-").lower()


def _d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


_UBUNTU = ("linux", "Ubuntu 22.04 LTS")
_RHEL = ("linux", "Red Hat Enterprise Linux 9")
_WINDOWS = ("windows", "Windows Server 2022 Datacenter")

# Lineage: each version after a family's first names the version it was built from, patched
# (same base, updated packages) or rebuilt (fresh from the upstream base image).
MACHINE_IMAGE_VERSIONS: tuple[CatalogVersion, ...] = (
    CatalogVersion("ubuntu-22.04-base", "1.0.0", "deprecated", _d("2026-03-02T10:00:00"), *_UBUNTU),
    CatalogVersion(
        "ubuntu-22.04-base", "1.1.0", "deprecated", _d("2026-05-04T10:00:00"), *_UBUNTU,
        parent="ubuntu-22.04-base@1.0.0", relation="patched_from",
    ),
    CatalogVersion(
        "ubuntu-22.04-base", "1.2.0", "production", _d("2026-07-06T10:00:00"), *_UBUNTU,
        parent="ubuntu-22.04-base@1.1.0", relation="patched_from",
    ),
    CatalogVersion(
        "ubuntu-22.04-base", "1.3.0", "production", _d("2026-09-07T10:00:00"), *_UBUNTU,
        parent="ubuntu-22.04-base@1.2.0", relation="rebuilt_from",
    ),
    CatalogVersion(
        "ubuntu-22.04-base", "1.4.0", "testing", _d("2026-10-26T10:00:00"), *_UBUNTU,
        parent="ubuntu-22.04-base@1.3.0", relation="patched_from",
    ),
    CatalogVersion("rhel-9-base", "9.2.1", "revoked", _d("2026-01-10T09:00:00"), *_RHEL),
    CatalogVersion(
        "rhel-9-base", "9.3.0", "deprecated", _d("2026-04-12T09:00:00"), *_RHEL,
        parent="rhel-9-base@9.2.1", relation="patched_from",
    ),
    CatalogVersion(
        "rhel-9-base", "9.4.0", "production", _d("2026-08-15T09:00:00"), *_RHEL,
        parent="rhel-9-base@9.3.0", relation="rebuilt_from",
    ),
    CatalogVersion("windows-2022-base", "2026.06", "deprecated", _d("2026-06-11T12:00:00"), *_WINDOWS),
    CatalogVersion(
        "windows-2022-base", "2026.08", "production", _d("2026-08-13T12:00:00"), *_WINDOWS,
        parent="windows-2022-base@2026.06", relation="patched_from",
    ),
    CatalogVersion(
        "windows-2022-base", "2026.10", "production", _d("2026-10-08T12:00:00"), *_WINDOWS,
        parent="windows-2022-base@2026.08", relation="patched_from",
    ),
)

# Container families: the Kubernetes API shows which tags run, not their release status, so
# these carry no status in the payloads (see the kubernetes connector).
CONTAINER_IMAGE_VERSIONS: tuple[CatalogVersion, ...] = (
    CatalogVersion("python-3.12", "3.12.6-r1", "deprecated", _d("2026-06-01T08:00:00"), "linux", "Debian 12"),
    CatalogVersion("python-3.12", "3.12.7-r1", "production", _d("2026-08-01T08:00:00"), "linux", "Debian 12"),
    CatalogVersion("python-3.12", "3.12.8-r2", "production", _d("2026-10-01T08:00:00"), "linux", "Debian 12"),
    CatalogVersion("nginx-1.27", "1.27.1-r1", "deprecated", _d("2026-05-15T08:00:00"), "linux", "Alpine 3.20"),
    CatalogVersion("nginx-1.27", "1.27.2-r1", "production", _d("2026-09-15T08:00:00"), "linux", "Alpine 3.20"),
)


def versions_of(family: str) -> list[CatalogVersion]:
    return [v for v in MACHINE_IMAGE_VERSIONS + CONTAINER_IMAGE_VERSIONS if v.family == family]


def current_production(family: str) -> CatalogVersion:
    """The newest production version: what image drift measures against."""
    production = [v for v in versions_of(family) if v.status == "production"]
    return max(production, key=lambda v: v.created_at)


def machine_families() -> list[str]:
    return sorted({v.family for v in MACHINE_IMAGE_VERSIONS})


def container_families() -> list[str]:
    return sorted({v.family for v in CONTAINER_IMAGE_VERSIONS})


def aws_ami_id(region: str, version: CatalogVersion) -> str:
    """Deterministic AMI id for a catalog version in a region (AMI ids are per region)."""
    import hashlib

    digest = hashlib.sha1(f"{region}/{version.slug}".encode()).hexdigest()
    return f"ami-{digest[:17]}"
