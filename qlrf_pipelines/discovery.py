"""Discover one site and land its snapshot in the lake (no Dagster here).

The Dagster assets, the main job's ops and the CLI all call `discover_site`; a failure raises
ConnectorError naming the site and the call, and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.sample import discover_from_sample
from qlrf_pipelines.lake import SnapshotFile, snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.models import Discovery
from qlrf_pipelines.sites import Site, SitesFile


@dataclass
class SiteSnapshot:
    site_id: str
    provider: str
    snapshot_id: str
    files: list[SnapshotFile]
    asset_count: int
    image_count: int
    assets_by_kind: dict[str, int] = field(default_factory=dict)
    golden_image_count: int = 0


def discover(sites: SitesFile, site: Site, discovered_at: datetime) -> Discovery:
    sample = sites.sample_path(site)
    if sample is None:
        # Live SDK discovery per provider lands with the provider connectors; until then a site
        # must point at stored payloads, and saying so beats silently discovering nothing.
        raise ConnectorError(
            site.id,
            f"discover {site.provider}",
            "live discovery is not available in this release; set `sample:` to a stored payload file",
        )
    return discover_from_sample(site, sample, discovered_at)


def discover_site(sites: SitesFile, site_id: str, lake_dir: Path, now: datetime | None = None) -> SiteSnapshot:
    site = sites.site(site_id)
    now = now or datetime.now(timezone.utc)
    found = discover(sites, site, now)
    snapshot_id = snapshot_id_for(now)
    site_row = site.public_dict() | {"asset_count": len(found.assets), "image_count": len(found.images)}
    tables = {
        "sites": to_table("sites", [site_row], snapshot_id),
        "assets": to_table("assets", found.assets, snapshot_id),
        "images": to_table("images", found.images, snapshot_id),
    }
    files = write_snapshot(lake_dir, site.id, snapshot_id, tables)
    return SiteSnapshot(
        site_id=site.id,
        provider=site.provider,
        snapshot_id=snapshot_id,
        files=files,
        asset_count=len(found.assets),
        image_count=len(found.images),
        assets_by_kind=dict(Counter(a.kind for a in found.assets)),
        golden_image_count=sum(1 for i in found.images if i.family),
    )
