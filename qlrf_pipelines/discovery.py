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
    api_calls: dict[str, int] = field(default_factory=dict)


def discover(sites: SitesFile, site: Site, discovered_at: datetime, stats: dict | None = None) -> Discovery:
    """Stored payloads when the site names a `sample:` file, else the provider's live SDK fetch;
    either way the same pure normalize turns the payload into records."""
    sample = sites.sample_path(site)
    if sample is not None:
        return discover_from_sample(site, sample, discovered_at)
    from qlrf_pipelines.connectors import provider_module
    from qlrf_pipelines.connectors.base import PayloadError
    from qlrf_pipelines.connectors.live import FetchContext, live_module

    context = FetchContext.for_site(site)
    payload = live_module(site.provider).fetch(context)
    if stats is not None:
        stats["api_calls"] = dict(context.api_calls)
    try:
        return provider_module(site.provider).normalize(payload, site, discovered_at)
    except PayloadError as exc:
        raise ConnectorError(site.id, f"normalize {site.provider} API response", str(exc)) from None


def discover_site(sites: SitesFile, site_id: str, lake_dir: Path, now: datetime | None = None) -> SiteSnapshot:
    site = sites.site(site_id)
    now = now or datetime.now(timezone.utc)
    stats: dict = {}
    found = discover(sites, site, now, stats)
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
        api_calls=stats.get("api_calls", {}),
    )


def record_failure(lake_dir: Path, site: Site, error: ConnectorError, now: datetime | None = None) -> None:
    """Land a discovery failure (site, API call, message) so the warehouse can show the site's
    last good snapshot as stale. The message comes from ConnectorError, which never holds secrets."""
    now = now or datetime.now(timezone.utc)
    snapshot_id = snapshot_id_for(now)
    row = {"site_id": site.id, "provider": site.provider, "failed_at": now, "call": error.call, "error": str(error)}
    write_snapshot(lake_dir, site.id, snapshot_id, {"discovery_failures": to_table("discovery_failures", [row], snapshot_id)})
