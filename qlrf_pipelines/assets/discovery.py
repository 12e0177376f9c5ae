"""Discovery assets: one partition per site, each landing an immutable lake snapshot."""


from typing import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    multi_asset,
)

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.discovery import SiteSnapshot, discover_site, record_failure
from qlrf_pipelines.resources.estate import EstateResource

OWNERS = ["team:platform"]
LAKE_ENTITIES = {
    "sites": "Site descriptions (no credentials) as discovered, one row per site snapshot.",
    "assets": "Canonical asset records (VMs, Kubernetes nodes and workloads) per site snapshot.",
    "images": "Provider image artifacts (AMIs, gallery versions, GCP images, templates, golden container images).",
}


def lake_asset_key(entity: str) -> AssetKey:
    """Matches the dbt source `lake.raw_<entity>` so dbt models hang off these assets."""
    return AssetKey(["lake", f"raw_{entity}"])


def snapshot_metadata(snapshot: SiteSnapshot, entity: str) -> dict:
    file = next(f for f in snapshot.files if f.entity == entity)
    metadata = {
        "site_id": snapshot.site_id,
        "provider": snapshot.provider,
        "snapshot_id": snapshot.snapshot_id,
        "rows": MetadataValue.int(file.rows),
        "path": MetadataValue.path(str(file.path)),
    }
    if entity == "assets":
        metadata["assets_by_kind"] = MetadataValue.json(snapshot.assets_by_kind)
    if entity == "images":
        metadata["golden_images"] = MetadataValue.int(snapshot.golden_image_count)
    return metadata


def build_discovery_assets(site_ids: list[str]):
    partitions = StaticPartitionsDefinition(site_ids)

    @multi_asset(
        name="site_discovery",
        specs=[
            AssetSpec(
                lake_asset_key(entity),
                description=description,
                group_name="discovery",
                owners=OWNERS,
                kinds={"python", "parquet"},
                partitions_def=partitions,
                tags={"domain": "inventory"},
            )
            for entity, description in LAKE_ENTITIES.items()
        ],
        partitions_def=partitions,
        description="Discover one site through its connector and land a snapshot in the lake.",
    )
    def site_discovery(context: AssetExecutionContext, estate: EstateResource) -> Iterator[MaterializeResult]:
        sites = estate.load_sites()
        try:
            snapshot = discover_site(sites, context.partition_key, estate.paths.lake_dir)
        except ConnectorError as exc:
            # The partition fails (the message names the site and the call); the lake keeps the
            # last good snapshot, now marked stale in the warehouse.
            record_failure(estate.paths.lake_dir, sites.site(context.partition_key), exc)
            raise
        context.log.info(
            f"site {snapshot.site_id}: {snapshot.asset_count} assets, {snapshot.image_count} images "
            f"-> snapshot {snapshot.snapshot_id}"
        )
        for entity in LAKE_ENTITIES:
            yield MaterializeResult(asset_key=lake_asset_key(entity), metadata=snapshot_metadata(snapshot, entity))

    return site_discovery, partitions
