"""Read what the planners need from the DuckDB warehouse, read-only, timing every read.

Runs inside a Dagster run (the plan job), never in a sensor: sensors must not hold the warehouse
open. Each read is one short read-only connection (`warehouse.query`), so no handle outlives it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from qlrf_pipelines.planning.inputs import PlanningInputs, ToolInvocation, snapshot_key_of
from qlrf_pipelines.planning.queries import (
    ASSET_REGIONS_TOOL,
    DRIFT_ITEMS_SQL,
    DRIFT_ITEMS_TOOL,
    IMAGE_ARTIFACTS_TOOL,
    SITE_FLEET_TOOL,
    TOOLS,
)
from qlrf_pipelines.warehouse import query

__all__ = ["PlanningInputs", "ToolInvocation", "load_planning_inputs", "run_tool", "snapshot_key_of"]


def run_tool(warehouse_path: Path, tool: str) -> tuple[list[dict[str, Any]], ToolInvocation]:
    """Run one named warehouse read; rows as dicts, and the invocation record."""
    sql = TOOLS[tool]
    started = time.perf_counter()
    result = query(Path(warehouse_path), sql)
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    rows = [dict(zip(result.columns, row)) for row in result.rows]
    return rows, ToolInvocation(tool, {"sql": sql}, len(rows), duration_ms)


def load_planning_inputs(warehouse_path: Path | str) -> PlanningInputs:
    path = Path(warehouse_path)
    invocations: list[ToolInvocation] = []

    def read(tool: str) -> list[dict[str, Any]]:
        rows, invocation = run_tool(path, tool)
        invocations.append(invocation)
        return rows

    drift_items = read(DRIFT_ITEMS_TOOL)
    artifacts = read(IMAGE_ARTIFACTS_TOOL)
    fleet = read(SITE_FLEET_TOOL)
    regions = read(ASSET_REGIONS_TOOL)
    return PlanningInputs(
        drift_items=drift_items,
        artifacts=artifacts,
        fleet_sizes={r["site_id"]: int(r["fleet_size"]) for r in fleet},
        snapshot_ids={r["site_id"]: r["snapshot_id"] for r in fleet if r["snapshot_id"] is not None},
        asset_regions={r["asset_id"]: r["region"] for r in regions},
        invocations=invocations,
        drift_query=DRIFT_ITEMS_SQL,
    )
