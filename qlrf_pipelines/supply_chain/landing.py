"""Land an imported supply-chain file in the lake (no Dagster here).

One lake snapshot per imported file, under site "supply-chain": the parsed vulnerabilities,
components and builds, plus a `supply_chain_imports` row naming the file, its format and its
content hash. Re-importing the same bytes is a no-op, found by that hash in the lake itself, so
it holds across machines that share the lake.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from qlrf_pipelines.connectors.base import parse_timestamp
from qlrf_pipelines.lake import entity_dir, snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.supply_chain.importer import parse_file
from qlrf_pipelines.supply_chain.records import ImportResult

SUPPLY_CHAIN_SITE = "supply-chain"


@dataclass
class Landed:
    import_id: str
    format: str
    image_ref: str
    duplicate: bool
    vulnerabilities: int = 0
    components: int = 0
    builds: int = 0
    snapshot_id: str | None = None
    warnings: tuple[str, ...] = ()


def imported_ids(lake_dir: Path) -> set[str]:
    """Content hashes of every file already in the lake."""
    found: set[str] = set()
    for path in (entity_dir(lake_dir, "supply_chain_imports") / f"site={SUPPLY_CHAIN_SITE}").glob("*.parquet"):
        found.update(pq.read_table(path, columns=["import_id"]).column("import_id").to_pylist())
    return found


def land_file(lake_dir: Path, path: str | os.PathLike, image_ref: str | None = None, now: datetime | None = None) -> Landed:
    """Parse and land one file; raises ImportRejected (naming the file and why) on bad input."""
    result = parse_file(path, image_ref=image_ref)
    if result.content_sha256 in imported_ids(lake_dir):
        return Landed(result.content_sha256, result.format, result.image_ref, duplicate=True)
    now = now or datetime.now(timezone.utc)
    snapshot_id = snapshot_id_for(now)
    write_snapshot(lake_dir, SUPPLY_CHAIN_SITE, snapshot_id, _tables(result, snapshot_id, now))
    return Landed(
        result.content_sha256, result.format, result.image_ref, False,
        len(result.vulnerabilities), len(result.components), len(result.builds), snapshot_id, tuple(result.warnings),
    )


def _tables(result: ImportResult, snapshot_id: str, now: datetime) -> dict:
    common = {"import_id": result.content_sha256, "imported_at": now}
    vulnerabilities = [
        common | {k: getattr(v, k) for k in (
            "image_ref", "vulnerability_id", "severity", "package_name", "package_type", "installed_version",
            "fixed_version", "fix_state", "purl", "title", "source", "source_version", "target")}
        for v in result.vulnerabilities
    ]
    components = [
        common | {k: getattr(c, k) for k in (
            "image_ref", "name", "version", "purl", "licenses", "supplier", "component_type", "source", "document_name")}
        for c in result.components
    ]
    builds = [
        common | {k: getattr(b, k) for k in (
            "image_ref", "builder_id", "build_type", "source_repo", "source_ref", "source_commit", "invocation_id",
            "predicate_type", "subject_name", "subject_digest")}
        | {
            "materials_json": json.dumps(b.materials, sort_keys=True),
            "started_on": parse_timestamp(b.started_on, "startedOn"),
            "finished_on": parse_timestamp(b.finished_on, "finishedOn"),
        }
        for b in result.builds
    ]
    imports = [common | {
        "image_ref": result.image_ref, "filename": Path(result.filename).name if result.filename else None,
        "format": result.format, "format_version": result.format_version, "image_aliases": list(result.image_aliases),
        "envelope": result.envelope, "vulnerability_count": len(vulnerabilities), "component_count": len(components),
        "build_count": len(builds), "warnings": list(result.warnings),
    }]
    return {
        "image_vulnerabilities": to_table("image_vulnerabilities", vulnerabilities, snapshot_id),
        "image_components": to_table("image_components", components, snapshot_id),
        "image_builds": to_table("image_builds", builds, snapshot_id),
        "supply_chain_imports": to_table("supply_chain_imports", imports, snapshot_id),
    }
