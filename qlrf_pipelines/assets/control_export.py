"""The control store's lake snapshot as assets: the upstream of the ai_* warehouse tables.

Tasks, plans and tool calls live in the control store (SQLite or PostgreSQL); dbt reads the lake
only. `control_store_export` lands one snapshot of all three under site id "control", so the
asset graph shows lake/raw_ai_* feeding ai_tasks, ai_task_plans and ai_tool_invocations. The
refresh job lands the same snapshot with an op (jobs/refresh.py) before it builds the warehouse.
"""

from pathlib import Path
from typing import Iterator

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from qlrf_pipelines.assets.discovery import OWNERS, lake_asset_key
from qlrf_pipelines.control_export import (
    CONTROL_ENTITIES,
    export_control_store,
    sqlite_store_missing,
    write_control_snapshot,
)
from qlrf_pipelines.lake import SnapshotFile
from qlrf_pipelines.resources.control import ControlStoreResource
from qlrf_pipelines.resources.estate import EstateResource

CONTROL_GROUP = "remediation"


def land_control_snapshot(control: ControlStoreResource, lake_dir: Path) -> tuple[list[SnapshotFile], str]:
    """Export the control store into the lake; returns the files and a line for the log.

    A SQLite store that does not exist yet holds no tasks: land an empty snapshot rather than
    create the store (an export only reads). Errors reading the store or writing the lake raise.
    """
    if sqlite_store_missing(control.url, Path(control.home)):
        files = write_control_snapshot(lake_dir, {})
        return files, "no control store yet: landed an empty control snapshot"
    with control.open() as store:
        files = export_control_store(store, lake_dir)
        source = store.url  # password masked
    counts = ", ".join(f"{f.rows} {f.entity}" for f in files)
    return files, f"control store {source}: {counts} -> snapshot {files[0].snapshot_id}"


def export_metadata(file: SnapshotFile) -> dict:
    """Materialization metadata of one control lake file (no store URL: it may carry a password)."""
    return {
        "site_id": file.site_id,
        "snapshot_id": file.snapshot_id,
        "rows": MetadataValue.int(file.rows),
        "path": MetadataValue.path(str(file.path)),
    }


@multi_asset(
    name="control_store_export",
    specs=[
        AssetSpec(
            lake_asset_key(entity),
            description=description,
            group_name=CONTROL_GROUP,
            owners=OWNERS,
            kinds={"python", "parquet"},
            tags={"domain": "remediation"},
        )
        for entity, description in CONTROL_ENTITIES.items()
    ],
    description="Land one snapshot of the control store's tasks, plan versions and tool calls in the lake.",
)
def control_store_export(
    context: AssetExecutionContext, control: ControlStoreResource, estate: EstateResource
) -> Iterator[MaterializeResult]:
    files, summary = land_control_snapshot(control, estate.paths.lake_dir)
    context.log.info(summary)
    for file in files:
        yield MaterializeResult(asset_key=lake_asset_key(file.entity), metadata=export_metadata(file))
