"""What a planner plans from: warehouse rows as plain dicts, plus a record of how they were read.

Pure data, no I/O: `warehouse_inputs.load_planning_inputs` fills it from DuckDB inside a run, and
tests build it by hand.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from qlrf_pipelines.planning.plan import canonical_json
from qlrf_pipelines.planning.queries import DRIFT_ITEMS_SQL


@dataclass(frozen=True)
class ToolInvocation:
    """One warehouse read, as `ai_tool_invocations` records it."""

    tool: str
    arguments: dict[str, Any]
    result_size: int  # rows returned
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def snapshot_key_of(snapshot_ids: Mapping[str, str]) -> str:
    """Digest of the site snapshots a plan was made from (same snapshots -> same key)."""
    return hashlib.sha256(canonical_json(dict(sorted(snapshot_ids.items()))).encode("utf-8")).hexdigest()


@dataclass
class PlanningInputs:
    drift_items: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    fleet_sizes: dict[str, int] = field(default_factory=dict)  # site_id -> in-scope assets
    snapshot_ids: dict[str, str] = field(default_factory=dict)  # site_id -> latest snapshot_id
    asset_regions: dict[str, str | None] = field(default_factory=dict)  # asset_id -> region
    invocations: list[ToolInvocation] = field(default_factory=list)
    drift_query: str = DRIFT_ITEMS_SQL

    @property
    def snapshot_key(self) -> str:
        return snapshot_key_of(self.snapshot_ids)

    @property
    def tools_used(self) -> list[str]:
        return list(dict.fromkeys(i.tool for i in self.invocations))
