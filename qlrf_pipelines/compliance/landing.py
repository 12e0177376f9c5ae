"""Configuration into the lake before each warehouse build: the compliance catalog (and, through
qlrf_pipelines.drift.landing, the desired-state drift rules, and through qlrf_pipelines.dr.landing
the sites file's DR pairs), so dbt builds compliance_frameworks, compliance_controls and dr_pairs
from data, like everything else.

The catalog lands as `compliance_frameworks`, `compliance_controls` and `compliance_checks` under
site id "config", one snapshot per distinct catalog digest: reading the same catalog again
writes nothing, so the lake keeps exactly one snapshot per catalog version (what an auditor asks
for: "which control mapping was in force on that date").

The evidence entities get an empty file the first time (`ensure_evidence_files`): the warehouse
views over them are created by dbt, and a view over a glob that matches no file would fail.
No Dagster here: the refresh job's op and the warehouse asset both call `land_configuration`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from qlrf_pipelines.compliance.catalog import Catalog, canonical_json, load_catalog
from qlrf_pipelines.lake import SnapshotFile, list_snapshots, snapshot_id_for, snapshot_time, write_snapshot
from qlrf_pipelines.models.records import ENTITY_SCHEMAS

CONFIG_SITE_ID = "config"
EVIDENCE_SITE_ID = "compliance"
CATALOG_ENTITIES = ("compliance_frameworks", "compliance_controls", "compliance_checks")
EVIDENCE_ENTITIES = ("control_evidence", "control_evidence_failures")


def _moment(now: datetime | None) -> datetime:
    moment = now or datetime.now(timezone.utc)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def catalog_rows(catalog: Catalog) -> dict[str, list[dict[str, Any]]]:
    """The catalog as the rows of the three lake entities (snapshot columns not yet set)."""
    digest = catalog.sha256
    frameworks, controls = [], []
    for framework in catalog.frameworks.values():
        frameworks.append({
            "catalog_sha256": digest, "framework_id": framework.id, "title": framework.title,
            "version": framework.version, "description": framework.description, "url": framework.url,
            "source": catalog.source("framework", framework.id),
        })
        for position, control in enumerate(framework.controls.values(), start=1):
            controls.append({
                "catalog_sha256": digest, "framework_id": framework.id, "control_id": control.id,
                "title": control.title, "description": control.description, "check_ids": list(control.checks),
                "position": position, "source": catalog.source("control", f"{framework.id}/{control.id}"),
            })
    checks = []
    for check in catalog.checks.values():
        definition = canonical_json(check.document())
        checks.append({
            "catalog_sha256": digest, "check_id": check.id, "title": check.title, "description": check.description,
            "kind": check.kind, "asset": check.asset, "blocking": check.blocking,
            "check_sha256": hashlib.sha256(definition.encode()).hexdigest(), "check_definition": definition,
            "source": catalog.source("check", check.id),
        })
    return {"compliance_frameworks": frameworks, "compliance_controls": controls, "compliance_checks": checks}


def _table(entity: str, rows: list[dict[str, Any]], snapshot_id: str) -> pa.Table:
    at = snapshot_time(snapshot_id)
    return pa.Table.from_pylist(
        [dict(row, snapshot_id=snapshot_id, snapshot_at=at) for row in rows], schema=ENTITY_SCHEMAS[entity]
    )


def landed_catalog_sha256(lake_dir: Path) -> str | None:
    """Digest of the newest catalog snapshot in the lake (None before the first landing)."""
    files = list_snapshots(Path(lake_dir), "compliance_checks", CONFIG_SITE_ID)
    if not files:
        return None
    digests = pq.read_table(max(files, key=lambda f: f.snapshot_id).path, columns=["catalog_sha256"]).column(0)
    return digests[0].as_py() if len(digests) else None


def land_catalog(
    lake_dir: Path, extra_paths: Sequence[str] = (), now: datetime | None = None, catalog: Catalog | None = None
) -> list[SnapshotFile]:
    """Land the merged catalog when its digest differs from the newest landed one; [] otherwise.
    Raises CatalogError (naming the file and id) for an invalid user file."""
    catalog = catalog or load_catalog(extra_paths)
    if landed_catalog_sha256(lake_dir) == catalog.sha256:
        return []
    snapshot_id = snapshot_id_for(_moment(now))
    rows = catalog_rows(catalog)
    return write_snapshot(Path(lake_dir), CONFIG_SITE_ID, snapshot_id, {e: _table(e, rows[e], snapshot_id) for e in CATALOG_ENTITIES})


def ensure_evidence_files(lake_dir: Path, now: datetime | None = None) -> list[SnapshotFile]:
    """An empty file per evidence entity that has none yet, so the warehouse views have a file."""
    missing = [e for e in EVIDENCE_ENTITIES if not list_snapshots(Path(lake_dir), e)]
    if not missing:
        return []
    snapshot_id = snapshot_id_for(_moment(now))
    return write_snapshot(Path(lake_dir), EVIDENCE_SITE_ID, snapshot_id, {e: _table(e, [], snapshot_id) for e in missing})


def land_configuration(
    lake_dir: Path, log, drift_rules_paths: Sequence[str] = (), catalog_paths: Sequence[str] = (),
    sites_file: str | Path | None = None,
) -> list[SnapshotFile]:
    """Drift rules, compliance catalog, empty evidence files, DR pairs: each step on its own, a
    failure logged (the warehouse then builds from the configuration landed before), never raised.
    The paths are the user's files beyond the environment variables (EstateResource fields);
    `sites_file` (the DR pairs) defaults to QLRF_SITES, else the bundled sample."""
    steps = []

    def drift_rules():
        from qlrf_pipelines.drift.landing import land_drift_rules

        return land_drift_rules(Path(lake_dir), extra_paths=drift_rules_paths)

    steps.append(("desired-state drift rules", drift_rules))
    steps.append(("compliance catalog", lambda: land_catalog(Path(lake_dir), extra_paths=catalog_paths)))
    steps.append(("empty compliance evidence files", lambda: ensure_evidence_files(Path(lake_dir))))

    def dr_pairs():
        from qlrf_pipelines import settings
        from qlrf_pipelines.dr.landing import land_dr_pairs

        return land_dr_pairs(Path(lake_dir), sites_file or settings.sites_file())

    steps.append(("DR pairs", dr_pairs))
    landed: list[SnapshotFile] = []
    for what, step in steps:
        try:
            result = step()
            files = [result] if isinstance(result, SnapshotFile) else list(result or [])
        except Exception as exc:  # noqa: BLE001 - configuration must not stop the warehouse build
            log.error(f"landing the {what} failed, the warehouse keeps the previous one: {type(exc).__name__}: {exc}")
            continue
        if files:
            log.info(f"{what}: landed {', '.join(f'{f.entity} ({f.rows} rows)' for f in files)} -> snapshot {files[0].snapshot_id}")
        else:
            log.info(f"{what}: unchanged, nothing landed")
        landed.extend(files)
    return landed
