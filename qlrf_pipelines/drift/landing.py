"""Land the drift rule set in the lake, where the warehouse evaluates it (no Dagster here).

The rule set is configuration, not discovery, so it lands under site id `config` as entity
`drift_rules`, one row per rule, through the same writer discovery uses. A new snapshot is written
only when the merged rules' digest differs from the latest landed one: the lake then records each
version of the desired state once, with the time it first applied, and a build that changed
nothing writes nothing. Past site snapshots are judged once (dbt's drift_observations is
incremental), so a rule change affects the snapshots discovered after it, never the history.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from qlrf_pipelines.drift.rules import RuleSet, load_rule_set, rule_rows
from qlrf_pipelines.lake import SnapshotFile, list_snapshots, snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.models.records import ENTITY_SCHEMAS

CONFIG_SITE_ID = "config"
DRIFT_RULES_ENTITY = "drift_rules"


def latest_rule_set_sha256(lake_dir: Path) -> str | None:
    """Digest of the newest landed rule set, or None before the first landing (or when that file
    predates a column of today's schema, so the rules are landed again with every column)."""
    landed = list_snapshots(Path(lake_dir), DRIFT_RULES_ENTITY, CONFIG_SITE_ID)
    if not landed:
        return None
    table = pq.read_table(landed[-1].path)
    if set(table.schema.names) != set(ENTITY_SCHEMAS[DRIFT_RULES_ENTITY].names):
        return None
    digests = table.column("rule_set_sha256").to_pylist()
    return digests[0] if digests else None


def rule_set_table(rule_set: RuleSet, snapshot_id: str) -> pa.Table:
    return to_table(DRIFT_RULES_ENTITY, rule_rows(rule_set), snapshot_id)


def land_drift_rules(
    lake_dir: Path,
    extra_paths: Sequence[str | os.PathLike] = (),
    now: datetime | None = None,
) -> list[SnapshotFile]:
    """Validate the bundled rules merged with the user's (QLRF_DRIFT_RULES, then `extra_paths`)
    and land them when they changed; [] when the latest landed rule set is the same.

    Raises DriftRulesError (naming the file and the rule) on a bad rule file, before anything is
    written, so the lake never holds a half-valid rule set; the caller decides what a broken file
    means for its run (the refresh job logs it and builds with the rules landed before).
    """
    rule_set = load_rule_set(extra_paths)
    if rule_set.sha256 == latest_rule_set_sha256(lake_dir):
        return []
    moment = now or datetime.now(timezone.utc)
    snapshot_id = snapshot_id_for(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
    return write_snapshot(Path(lake_dir), CONFIG_SITE_ID, snapshot_id, {DRIFT_RULES_ENTITY: rule_set_table(rule_set, snapshot_id)})
