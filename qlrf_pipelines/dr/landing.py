"""Land the DR pairs of the sites file in the lake (no Dagster here).

DR pairs are configuration, not discovery: they land under site id `config` as entity `dr_pairs`,
one row per pair, and only when the pairs' digest differs from the newest landed snapshot, so the
lake records each version of the DR configuration once, with the time it first applied. Removing
every pair lands an empty snapshot (the warehouse then shows none); a sites file that never
declared a pair lands nothing, and dbt reads the missing entity as an empty table.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from qlrf_pipelines.lake import SnapshotFile, list_snapshots, snapshot_id_for, snapshot_time, write_snapshot
from qlrf_pipelines.models.records import SNAPSHOT_FIELDS
from qlrf_pipelines.sites import SitesFile, load_sites

CONFIG_SITE_ID = "config"
DR_PAIRS_ENTITY = "dr_pairs"

# One row per DR pair per configuration snapshot; `families` is null when the pair covers every
# family running at the primary site.
DR_PAIR_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("config_sha256", pa.string(), nullable=False),
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("primary_site_id", pa.string(), nullable=False),
        pa.field("dr_site_id", pa.string(), nullable=False),
        pa.field("rpo_minutes", pa.int32(), nullable=False),
        pa.field("rto_minutes", pa.int32(), nullable=False),
        pa.field("families", pa.list_(pa.string())),
        pa.field("description", pa.string()),
    ]
)


def dr_pair_rows(sites: SitesFile) -> list[dict[str, Any]]:
    """The pairs as lake rows (snapshot columns not yet set), each with the digest of all of them."""
    pairs = [pair.public_dict() for pair in sites.dr_pairs]
    digest = dr_pairs_sha256(pairs)
    return [dict(pair, config_sha256=digest) for pair in pairs]


def dr_pairs_sha256(pairs: list[dict[str, Any]]) -> str:
    """Digest of the pairs as declared (order included): equal pairs, equal digest."""
    return hashlib.sha256(json.dumps(pairs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


EMPTY_SHA256 = dr_pairs_sha256([])


def landed_dr_pairs_sha256(lake_dir: Path) -> str | None:
    """Digest of the newest landed DR pairs (EMPTY_SHA256 for an empty snapshot); None before the
    first landing, or when that file predates a column of today's schema (it is landed again)."""
    landed = list_snapshots(Path(lake_dir), DR_PAIRS_ENTITY, CONFIG_SITE_ID)
    if not landed:
        return None
    table = pq.read_table(landed[-1].path)
    if set(table.schema.names) != set(DR_PAIR_SCHEMA.names):
        return None
    digests = table.column("config_sha256").to_pylist()
    return digests[0] if digests else EMPTY_SHA256


def dr_pairs_table(rows: list[dict[str, Any]], snapshot_id: str) -> pa.Table:
    at = snapshot_time(snapshot_id)
    return pa.Table.from_pylist([dict(row, snapshot_id=snapshot_id, snapshot_at=at) for row in rows], schema=DR_PAIR_SCHEMA)


def land_dr_pairs(lake_dir: Path, sites_file: str | os.PathLike, now: datetime | None = None) -> list[SnapshotFile]:
    """Land the sites file's DR pairs when they changed; [] when unchanged (or none, never landed).

    Raises SitesFileError (naming the file and the pair) before anything is written when the file
    is invalid, so the lake never holds pairs that name unknown sites."""
    rows = dr_pair_rows(load_sites(sites_file))
    digest = rows[0]["config_sha256"] if rows else EMPTY_SHA256
    landed = landed_dr_pairs_sha256(lake_dir)
    if landed == digest or (landed is None and not rows):
        return []
    moment = now or datetime.now(timezone.utc)
    snapshot_id = snapshot_id_for(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
    return write_snapshot(Path(lake_dir), CONFIG_SITE_ID, snapshot_id, {DR_PAIRS_ENTITY: dr_pairs_table(rows, snapshot_id)})
