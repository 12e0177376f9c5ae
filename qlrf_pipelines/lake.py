"""The lake: immutable Parquet snapshots, one file per (entity, site, snapshot).

Layout: <lake>/raw/<entity>/site=<site_id>/snapshot=<snapshot_id>.parquet

Each site's discovery writes only its own files, so parallel discovery never contends for a
lock, and nothing is ever overwritten, so history (trends, "the estate on the audit date") comes
from here. A site's snapshot is staged as hidden temporary files and published by rename only
once every entity file of that snapshot is written, so readers (which glob `*.parquet`) never
see half a snapshot, and a failed site leaves its earlier snapshots as they were.

With a remote lake (QLRF_LAKE_URI, see lake_remote.py) the object store is the source of truth
and this folder its local mirror: every staged file is uploaded (conditional create) before
anything is published here, and a failed upload publishes nothing in either place.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from qlrf_pipelines.models.records import ENTITY_SCHEMAS, records_to_rows

if TYPE_CHECKING:  # boto3 is imported only when a remote lake is configured
    from qlrf_pipelines.lake_remote import RemoteLake

_SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}\d{6}Z$")


class LakeError(RuntimeError):
    pass


def snapshot_id_for(moment: datetime) -> str:
    """Sortable, filesystem-safe id with microseconds: 20261126T191200123456Z."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond:06d}Z"


def snapshot_time(snapshot_id: str) -> datetime:
    if not _SNAPSHOT_ID.match(snapshot_id):
        raise LakeError(f"not a snapshot id: {snapshot_id!r}")
    return datetime.strptime(snapshot_id[:15], "%Y%m%dT%H%M%S").replace(
        microsecond=int(snapshot_id[15:21]), tzinfo=timezone.utc
    )


@dataclass(frozen=True)
class SnapshotFile:
    entity: str
    site_id: str
    snapshot_id: str
    path: Path
    rows: int


def entity_dir(lake_dir: Path, entity: str) -> Path:
    return lake_dir / "raw" / entity


def snapshot_path(lake_dir: Path, entity: str, site_id: str, snapshot_id: str) -> Path:
    return entity_dir(lake_dir, entity) / f"site={site_id}" / f"snapshot={snapshot_id}.parquet"


def entity_glob(lake_dir: Path, entity: str) -> str:
    """The glob dbt sources read: every snapshot of every site."""
    return str(entity_dir(lake_dir, entity) / "site=*" / "*.parquet")


def to_table(entity: str, records: Iterable[object], snapshot_id: str) -> pa.Table:
    schema = ENTITY_SCHEMAS[entity]
    snapshot_at = snapshot_time(snapshot_id)
    records = list(records)
    rows = [dict(r) for r in records] if records and isinstance(records[0], dict) else records_to_rows(records)
    for row in rows:
        row["snapshot_id"] = snapshot_id
        row["snapshot_at"] = snapshot_at
    return pa.Table.from_pylist(rows, schema=schema)


FROM_SETTINGS = "from-settings"  # write_snapshot's default: the remote lake_remote.remote_for finds


def write_snapshot(
    lake_dir: Path,
    site_id: str,
    snapshot_id: str,
    tables: Mapping[str, pa.Table],
    remote: "RemoteLake | None | str" = FROM_SETTINGS,
) -> list[SnapshotFile]:
    """Publish one site's snapshot: every entity file or none of them; never overwrite.

    `remote`: the object store to upload to first (None: local only); by default the one set
    for this lake by EstateResource, else QLRF_LAKE_URI's (lake_remote.remote_for).
    """
    if remote == FROM_SETTINGS:
        from qlrf_pipelines.lake_remote import remote_for

        remote = remote_for(lake_dir)
    staged: list[tuple[Path, Path, str, int]] = []
    token = uuid.uuid4().hex[:8]
    try:
        for entity, table in tables.items():
            final = snapshot_path(lake_dir, entity, site_id, snapshot_id)
            if final.exists():
                raise LakeError(f"{final} already exists: lake snapshots are never overwritten")
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.with_name(f".{final.name}.{token}.tmp")
            pq.write_table(table, temp, compression="zstd")
            staged.append((temp, final, entity, table.num_rows))
        if remote is not None:
            from qlrf_pipelines.lake_remote import upload_snapshot

            # The object store is the source of truth: all of it there first, or nothing anywhere.
            upload_snapshot(remote, site_id, snapshot_id, [(entity, temp) for temp, _f, entity, _r in staged])
        written = []
        for temp, final, entity, rows in staged:
            # os.link fails if the target exists, so a concurrent writer can never be clobbered.
            os.link(temp, final)
            os.unlink(temp)
            written.append(SnapshotFile(entity, site_id, snapshot_id, final, rows))
        return written
    except BaseException:
        for temp, _final, _entity, _rows in staged:
            temp.unlink(missing_ok=True)
        raise


def list_snapshots(lake_dir: Path, entity: str, site_id: str | None = None) -> list[SnapshotFile]:
    base = entity_dir(lake_dir, entity)
    pattern = f"site={site_id}/snapshot=*.parquet" if site_id else "site=*/snapshot=*.parquet"
    found = []
    for path in sorted(base.glob(pattern)):
        site = path.parent.name.removeprefix("site=")
        snap = path.stem.removeprefix("snapshot=")
        found.append(SnapshotFile(entity, site, snap, path, pq.ParquetFile(path).metadata.num_rows))
    return found


def read_snapshot(path: Path) -> pa.Table:
    return pq.read_table(path)


def latest_snapshot_ids(lake_dir: Path, entity: str = "sites") -> dict[str, str]:
    """site_id -> its newest snapshot id, from file names only (cheap enough for a sensor)."""
    latest: dict[str, str] = {}
    for path in entity_dir(lake_dir, entity).glob("site=*/snapshot=*.parquet"):
        site = path.parent.name.removeprefix("site=")
        snap = path.stem.removeprefix("snapshot=")
        if snap > latest.get(site, ""):
            latest[site] = snap
    return latest

