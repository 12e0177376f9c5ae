"""The control store's export to the lake: how tasks, plans and tool calls reach the warehouse.

The control store (SQLite or PostgreSQL) holds human decisions and workflow state; the warehouse
is rebuilt from the lake only. So each export lands one full snapshot of `ai_tasks`,
`ai_task_plans`, `ai_tool_invocations`, `image_lineage_links`, `image_promotions` and
`compliance_waivers` under site id "control", through the same writer
discovery uses (`raw/<entity>/site=control/snapshot=<id>.parquet`, never overwritten), and dbt
reads the latest one. Every file is written even when empty, so every dbt source always
has a file once the first export ran.

What is exported is exactly what `ControlStore.export_rows` returns, filtered through the Arrow
schemas in models/records.py, which act as an allow-list: these rows hold no credentials, and a
column added to the export does not reach the lake until it is added to a schema on purpose.
No Dagster here: the refresh job's op and the `control_store_export` asset both call it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pyarrow as pa

from qlrf_pipelines.lake import SnapshotFile, snapshot_id_for, snapshot_time, write_snapshot
from qlrf_pipelines.models.records import ENTITY_SCHEMAS

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) is imported by whoever opens one
    from qlrf_pipelines.control.store import ControlStore

CONTROL_SITE_ID = "control"
CONTROL_ENTITIES: dict[str, str] = {
    "ai_tasks": "Remediation tasks from the control store (current status, plan version and hash, approval), "
    "one row per task per control snapshot.",
    "ai_task_plans": "Every plan version of every remediation task (plan JSON, policy verdicts), "
    "one row per version per control snapshot.",
    "ai_tool_invocations": "Every tool call a planner made while building a plan (arguments, result size, "
    "duration), one row per call per control snapshot.",
    "image_lineage_links": "Image lineage people registered with `qlrf images link` (child, parent, relation, "
    "who, why), one row per link per control snapshot.",
    "image_promotions": "Every golden image status change made with `qlrf images promote`, cascaded revokes "
    "included, one row per promotion per control snapshot.",
    "compliance_waivers": "Compliance waivers made with `qlrf waivers add` (control, asset, expiry, who, why) and "
    "their revocations, one row per waiver per control snapshot.",
}


def _parse_time(value: Any) -> datetime | None:
    """ISO-8601 text (the export's form) to an aware UTC datetime; datetimes pass through."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _parse_date(value: Any) -> date | None:
    """YYYY-MM-DD text (the export's form) to a date; dates pass through."""
    if value is None or value == "":
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def control_table(entity: str, rows: list[Mapping[str, Any]], snapshot_id: str) -> pa.Table:
    """Export rows of one entity as a typed lake table: timestamps and dates parsed, snapshot
    columns added, and only the schema's columns kept."""
    schema = ENTITY_SCHEMAS[entity]
    stamps = {f.name for f in schema if pa.types.is_timestamp(f.type)}
    days = {f.name for f in schema if pa.types.is_date(f.type)}
    snapshot_at = snapshot_time(snapshot_id)
    typed = []
    for row in rows:
        record = {name: row.get(name) for name in schema.names}
        for name in stamps:
            record[name] = _parse_time(record[name])
        for name in days:
            record[name] = _parse_date(record[name])
        record["snapshot_id"] = snapshot_id
        record["snapshot_at"] = snapshot_at
        typed.append(record)
    return pa.Table.from_pylist(typed, schema=schema)


def write_control_snapshot(
    lake_dir: Path, rows: Mapping[str, list[Mapping[str, Any]]], now: datetime | None = None
) -> list[SnapshotFile]:
    """Land one control snapshot: a file per entity (an empty file for an entity with no rows)."""
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    snapshot_id = snapshot_id_for(moment)
    tables = {entity: control_table(entity, list(rows.get(entity) or []), snapshot_id) for entity in CONTROL_ENTITIES}
    return write_snapshot(Path(lake_dir), CONTROL_SITE_ID, snapshot_id, tables)


def export_control_store(store: "ControlStore", lake_dir: Path, now: datetime | None = None) -> list[SnapshotFile]:
    """Read the whole control store (one consistent read) and land it as one lake snapshot."""
    return write_control_snapshot(lake_dir, store.export_rows(), now)


def sqlite_store_missing(url: str | None = None, home: Path | None = None) -> bool:
    """True when the store would be a SQLite file that does not exist yet: nothing was ever decided.

    Opening the store creates it, and an export is a read, so callers use this to land an empty
    snapshot instead of creating a control store as a side effect.
    """
    from sqlalchemy.engine import make_url

    from qlrf_pipelines.control.db import resolve_url

    resolved = make_url(resolve_url(url, home))
    if resolved.get_backend_name() != "sqlite":
        return False
    database = resolved.database
    return bool(database) and database != ":memory:" and not Path(database).expanduser().exists()
