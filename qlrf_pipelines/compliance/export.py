"""Evidence packs: what an auditor takes away for one framework as of one moment.

Everything comes from the lake, never the warehouse: the evidence rows (`control_evidence`, one
file per evaluation run), the failing assets behind them (`control_evidence_failures`), the
catalog snapshots (`compliance_*` under site `config`) and the control store's waiver exports.
The lake is append-only, so "as of T" is a filter on history: for each control of the framework
the latest evidence evaluated at or before T, and the catalog snapshot in force at T. Later runs
only add files after T, so a pack for T is the same bytes whenever it is exported.

Before anything is written every evidence hash chain of the framework is recomputed (C1's
chain.verify_chain) and each evidence row's failing asset ids are compared with its failure rows.
A broken chain refuses the export, naming the lake file, control and evidence id, unless
`allow_broken_chain`, which exports and marks the affected controls `integrity: broken` in every
output. Outputs are deterministic: sorted rows, sorted JSON keys, no clock (uuids in the OSCAL
file are uuid5 of evidence hashes).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

EVIDENCE = "control_evidence"
FAILURES = "control_evidence_failures"
WAIVERS = "compliance_waivers"
CATALOG_ENTITIES = ("compliance_frameworks", "compliance_controls", "compliance_checks")
FORMATS = ("json", "csv", "oscal")
MANIFEST = "MANIFEST.sha256"
RESERVED = {"summary", "failing_assets", "waivers", "assessment-results", "MANIFEST"}


class EvidenceError(RuntimeError):
    """The pack cannot be exported (or the lake's evidence does not verify); the message says why."""


# ----------------------------------------------------------------- time
def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """--at: YYYY-MM-DD is the end of that day (UTC); an ISO-8601 timestamp (naive = UTC); `now`."""
    value = text.strip()
    if value.lower() == "now":
        return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return datetime.combine(date.fromisoformat(value), time.max, tzinfo=timezone.utc)
        except ValueError:
            raise EvidenceError(f"--at {text!r}: not a valid date") from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EvidenceError(f"--at {text!r}: expected YYYY-MM-DD, an ISO-8601 timestamp or `now`") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    """One text form for every timestamp in a pack: UTC, microseconds, Z."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# ----------------------------------------------------------------- reading the lake
def _snapshot_files(lake_dir: Path, entity: str) -> list[Path]:
    return sorted((lake_dir / "raw" / entity).glob("site=*/snapshot=*.parquet"))


def read_entity(lake_dir: Path, entity: str) -> list[dict[str, Any]]:
    """Every row of every snapshot of `entity`, each with `_file` (its path relative to the lake)."""
    import pyarrow.parquet as pq

    rows = []
    for path in _snapshot_files(lake_dir, entity):
        relative = path.relative_to(lake_dir).as_posix()
        for row in pq.read_table(path).to_pylist():
            row["_file"] = relative
            rows.append(row)
    return rows


def _snapshot_of(path: str) -> str:
    return path.rsplit("snapshot=", 1)[1].removesuffix(".parquet")


def _files_in_force(lake_dir: Path, entity: str, moment: datetime) -> dict[str, Path]:
    """site id -> the newest snapshot file of `entity` written at or before `moment`."""
    from qlrf_pipelines.lake import snapshot_time

    chosen: dict[str, Path] = {}
    for path in _snapshot_files(lake_dir, entity):
        site = path.parent.name.removeprefix("site=")
        if snapshot_time(_snapshot_of(path.name)) <= moment:
            chosen[site] = path  # sorted: the last one kept is the newest
    return chosen


def _rows_of(lake_dir: Path, path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    relative = path.relative_to(lake_dir).as_posix()
    return [row | {"_file": relative} for row in pq.read_table(path).to_pylist()]


# ----------------------------------------------------------------- integrity
@dataclass
class Verification:
    rows: int
    chains: int
    files: int
    problems: list[str] = field(default_factory=list)
    broken: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (framework, control) -> problems

    @property
    def ok(self) -> bool:
        return not self.problems


def _chain_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (row["framework_id"], row["control_id"], row["check_id"])


def verify_rows(evidence: Sequence[dict[str, Any]], failures: Sequence[dict[str, Any]] = ()) -> Verification:
    """Recompute every chain (chain.verify_chain) and compare each evidence row's failing asset ids
    with its rows in control_evidence_failures. Problems name the lake file, framework, control,
    check and evidence id."""
    from qlrf_pipelines.compliance.chain import verify_chain

    by_id = {row["evidence_id"]: row for row in evidence}
    result = Verification(
        rows=len(evidence), chains=len({_chain_key(r) for r in evidence}), files=len({r["_file"] for r in evidence})
    )

    def add(framework_id: str, control_id: str, text: str) -> None:
        result.problems.append(text)
        result.broken.setdefault((framework_id, control_id), []).append(text)

    def note(row: Mapping[str, Any], message: str) -> None:
        add(row["framework_id"], row["control_id"],
            f"{row['_file']}: {row['framework_id']} {row['control_id']} check {row['check_id']}, "
            f"evidence {row['evidence_id']}: {message}")

    for brk in verify_chain(evidence):  # rows carry `_file`, so each break names its lake file
        add(brk.framework_id, brk.control_id, str(brk))
    listed: dict[str, set[str]] = defaultdict(set)
    failure_files: dict[str, str] = {}
    for failure in failures:
        listed[failure["evidence_id"]].add(failure["asset_id"])
        failure_files[failure["evidence_id"]] = failure["_file"]
    for evidence_id, assets in sorted(listed.items()):
        row = by_id.get(evidence_id)
        if row is None:
            continue  # another framework's failures (or an evidence file filtered out)
        expected = set(row.get("failing_asset_ids") or [])
        if assets != expected:
            note(row, f"{failure_files[evidence_id]} lists {len(assets)} failing assets, the hashed evidence "
                      f"{len(expected)} (failure rows edited, added or deleted)")
    for evidence_id, row in sorted(by_id.items()):
        if row.get("failing_asset_ids") and evidence_id not in listed:
            note(row, f"no rows in {FAILURES} for its {len(row['failing_asset_ids'])} failing assets (deleted)")
    return result


def verify_lake(lake_dir: Path, framework_id: str | None = None) -> Verification:
    """Verify the evidence in the lake (all of it, or one framework's)."""
    lake_dir = Path(lake_dir)
    evidence = read_entity(lake_dir, EVIDENCE)
    if framework_id is not None:
        evidence = [r for r in evidence if r["framework_id"] == framework_id]
        if not evidence:
            raise EvidenceError(f"no evidence for framework {framework_id!r} in {lake_dir}")
    ids = {r["evidence_id"] for r in evidence}
    failures = [f for f in read_entity(lake_dir, FAILURES) if f["evidence_id"] in ids]
    return verify_rows(evidence, failures)


# ----------------------------------------------------------------- the pack
@dataclass
class CheckReport:
    check_id: str
    status: str
    evidence: dict[str, Any] | None  # the evidence row (lake columns + _file); None: never evaluated by then
    catalog: dict[str, Any] | None  # the check's row in the catalog snapshot in force


@dataclass
class ControlReport:
    framework_id: str
    control_id: str
    title: str
    description: str
    status: str
    checks: list[CheckReport]
    failures: list[dict[str, Any]]
    integrity: str = "ok"
    problems: list[str] = field(default_factory=list)

    @property
    def file_stem(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", self.control_id)
        return f"control-{stem}" if stem in RESERVED or stem.startswith(".") else stem


@dataclass
class Pack:
    framework_id: str
    framework: dict[str, Any]
    as_of: datetime
    controls: list[ControlReport]
    waivers: list[dict[str, Any]]
    catalog_files: dict[str, str]
    summary: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def evidence_rows(self) -> list[dict[str, Any]]:
        return [c.evidence for control in self.controls for c in control.checks if c.evidence is not None]


def control_status(statuses: Iterable[str]) -> str:
    """A control is as bad as its worst check (the evaluator's rollup: fail, error, not_assessed,
    waived, pass); with no check it is not_assessed."""
    from qlrf_pipelines.compliance.evaluate import rollup

    return rollup(list(statuses))


def _catalog_in_force(lake_dir: Path, moment: datetime) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    files: dict[str, str] = {}
    for entity in CATALOG_ENTITIES:
        chosen = _files_in_force(lake_dir, entity, moment)
        rows[entity] = [r for path in sorted(chosen.values()) for r in _rows_of(lake_dir, path)]
        for path in sorted(chosen.values()):
            files[entity] = path.relative_to(lake_dir).as_posix()
    return rows, files


def _control_checks(control_row: Mapping[str, Any] | None) -> list[str] | None:
    if not control_row:
        return None
    for name in ("check_ids", "checks"):
        value = control_row.get(name)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = [value]
        if value:
            return list(value)
    return None


def _latest_before(rows: Iterable[dict[str, Any]], moment: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """(control_id, check_id) -> the latest evidence row evaluated at or before `moment`."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        evaluated = _aware(row["evaluated_at"])
        if evaluated is None or evaluated > moment:
            continue
        key = (row["control_id"], row["check_id"])
        current = latest.get(key)
        if current is None or (evaluated, row["evidence_id"]) > (_aware(current["evaluated_at"]), current["evidence_id"]):
            latest[key] = row
    return latest


def _waiver_details(lake_dir: Path, waiver_ids: set[str], moment: datetime) -> list[dict[str, Any]]:
    """Each waiver as the newest control store export at or before `moment` recorded it (else the
    first export that has it): so a revoke after `moment` never changes a pack for `moment`."""
    if not waiver_ids:
        return []
    from qlrf_pipelines.lake import snapshot_time

    found: dict[str, dict[str, Any]] = {}
    for path in _snapshot_files(lake_dir, WAIVERS):  # oldest first
        in_force = snapshot_time(_snapshot_of(path.name)) <= moment
        for row in _rows_of(lake_dir, path):
            if row["waiver_id"] in waiver_ids and (in_force or row["waiver_id"] not in found):
                found[row["waiver_id"]] = row
    return [found.get(waiver_id, {"waiver_id": waiver_id, "_file": None}) for waiver_id in sorted(waiver_ids)]


def build_pack(lake_dir: Path, framework_id: str, moment: datetime, allow_broken_chain: bool = False) -> Pack:
    """Select and verify the evidence of `framework_id` as of `moment` (nothing written)."""
    lake_dir = Path(lake_dir)
    moment = moment.astimezone(timezone.utc)
    evidence = [r for r in read_entity(lake_dir, EVIDENCE) if r["framework_id"] == framework_id]
    catalog, catalog_files = _catalog_in_force(lake_dir, moment)
    frameworks = {r["framework_id"]: r for r in catalog["compliance_frameworks"]}
    if not evidence:
        known = sorted({r["framework_id"] for r in read_entity(lake_dir, EVIDENCE)})
        raise EvidenceError(
            f"no evidence for framework {framework_id!r} in {lake_dir} "
            f"(frameworks with evidence: {', '.join(known) or 'none yet: run the refresh job first'})"
        )
    latest = _latest_before(evidence, moment)
    if not latest:
        first = min(_aware(r["evaluated_at"]) for r in evidence)
        raise EvidenceError(
            f"no evidence for framework {framework_id!r} at or before {iso(moment)}: the first evaluation was {iso(first)}"
        )
    ids = {r["evidence_id"] for r in evidence}
    failures = [f for f in read_entity(lake_dir, FAILURES) if f["evidence_id"] in ids]
    verification = verify_rows(evidence, failures)
    if not verification.ok and not allow_broken_chain:
        raise EvidenceError(
            "evidence integrity check failed; nothing was exported (--allow-broken-chain exports and marks the "
            "affected controls):\n  " + "\n  ".join(verification.problems)
        )
    controls_rows = sorted(
        (r for r in catalog["compliance_controls"] if r.get("framework_id") == framework_id),
        key=lambda r: r.get("position") or 0,
    )
    checks_rows = {r["check_id"]: r for r in catalog["compliance_checks"] if "check_id" in r}
    if controls_rows:
        order = [r["control_id"] for r in controls_rows]
        control_rows = {r["control_id"]: r for r in controls_rows}
    else:  # no catalog snapshot yet at that moment: the controls the evidence names
        order = sorted({control for control, _check in latest})
        control_rows = {}
    selected_ids = {row["evidence_id"] for row in latest.values()}
    failures_by_evidence: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for failure in failures:
        if failure["evidence_id"] in selected_ids:
            failures_by_evidence[failure["evidence_id"]].append(failure)
    reports = []
    for control_id in sorted(dict.fromkeys(order), key=order.index):
        row = control_rows.get(control_id)
        mapped = _control_checks(row)
        check_ids = mapped if mapped is not None else sorted(c for k, c in latest if k == control_id)
        checks = []
        for check_id in check_ids:
            ev = latest.get((control_id, check_id))
            checks.append(CheckReport(check_id, ev["status"] if ev else "not_assessed", ev, checks_rows.get(check_id)))
        failed = sorted(
            (f for c in checks if c.evidence for f in failures_by_evidence.get(c.evidence["evidence_id"], [])),
            key=lambda f: (f["evidence_id"], f["asset_id"]),
        )
        problems = verification.broken.get((framework_id, control_id), [])
        reports.append(
            ControlReport(
                framework_id, control_id, (row or {}).get("title") or control_id, (row or {}).get("description") or "",
                control_status(c.status for c in checks), checks, failed,
                "broken" if problems else "ok", list(problems),
            )
        )
    waiver_ids = {w for r in latest.values() for w in (r.get("waiver_ids") or [])}
    waiver_ids |= {f["waiver_id"] for fs in failures_by_evidence.values() for f in fs if f.get("waiver_id")}
    return Pack(
        framework_id=framework_id,
        framework=dict(frameworks.get(framework_id) or {"framework_id": framework_id}),
        as_of=moment,
        controls=reports,
        waivers=_waiver_details(lake_dir, waiver_ids, moment),
        catalog_files=catalog_files,
    )


# ----------------------------------------------------------------- rendering
def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(_plain(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else _plain(v))
                         for v in row])
    return buffer.getvalue().encode("utf-8")


def _snapshot_ids(row: Mapping[str, Any]) -> Any:
    value = row.get("snapshot_ids")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _check_json(check: CheckReport, integrity: str) -> dict[str, Any]:
    ev = check.evidence or {}
    data: dict[str, Any] = {"check_id": check.check_id, "status": check.status, "integrity": integrity}
    if check.catalog:
        data["catalog"] = {k: v for k, v in check.catalog.items() if k not in ("snapshot_id", "snapshot_at", "_file")}
    if not ev:
        data["evidence"] = None
        return data
    data["evidence"] = {k: v for k, v in ev.items() if k != "_file"} | {
        "snapshot_ids": _snapshot_ids(ev),
        "evidence_file": ev["_file"],
    }
    return data


CHECK_CSV = [
    "framework_id", "control_id", "check_id", "check_kind", "status", "checked_count", "failing_count",
    "waived_count", "evaluated_at", "run_id", "evidence_id", "sha256", "prev_sha256", "check_sha256",
    "snapshot_ids", "lake_files", "evidence_file", "waiver_ids", "error", "integrity",
]
FAILING_CSV = [
    "framework_id", "control_id", "check_id", "evidence_id", "asset_id", "site_id", "status", "waiver_id",
    "detail", "failures_file", "integrity",
]
WAIVER_CSV = [
    "waiver_id", "framework_id", "control_id", "asset_id", "reason", "created_by", "created_at", "expires_on",
    "revoked_at", "revoked_by", "revoke_reason", "applied_in_evidence", "control_snapshot_file",
]


def _control_files(control: ControlReport, pack: Pack) -> dict[str, bytes]:
    data = {
        "framework_id": control.framework_id,
        "control_id": control.control_id,
        "title": control.title,
        "description": control.description,
        "as_of": pack.as_of,
        "status": control.status,
        "integrity": control.integrity,
        "integrity_problems": control.problems,
        "catalog_files": pack.catalog_files,
        "checks": [_check_json(c, control.integrity) for c in control.checks],
        "failing_assets": [{k: v for k, v in f.items()} for f in control.failures],
    }
    rows = []
    for c in control.checks:
        ev = c.evidence or {}
        rows.append([
            control.framework_id, control.control_id, c.check_id, ev.get("check_kind"), c.status,
            ev.get("checked_count"), ev.get("failing_count"), ev.get("waived_count"), ev.get("evaluated_at"),
            ev.get("run_id"), ev.get("evidence_id"), ev.get("sha256"), ev.get("prev_sha256"), ev.get("check_sha256"),
            _snapshot_ids(ev) if ev else None, ";".join(ev.get("lake_files") or []), ev.get("_file"),
            ";".join(ev.get("waiver_ids") or []), ev.get("error"), control.integrity,
        ])
    return {f"{control.file_stem}.json": _json_bytes(data), f"{control.file_stem}.csv": _csv_bytes(CHECK_CSV, rows)}


def _failing_rows(pack: Pack) -> list[list[Any]]:
    rows = []
    for control in pack.controls:
        by_evidence = {c.evidence["evidence_id"]: c.check_id for c in control.checks if c.evidence}
        for f in control.failures:
            rows.append([
                control.framework_id, control.control_id, by_evidence.get(f["evidence_id"]), f["evidence_id"],
                f["asset_id"], f.get("site_id"), "waived" if f.get("waiver_id") else "fail", f.get("waiver_id"),
                f.get("detail"), f.get("_file"), control.integrity,
            ])
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def _waiver_rows(pack: Pack) -> list[list[Any]]:
    applied: dict[str, set[str]] = defaultdict(set)
    for ev in pack.evidence_rows():
        for waiver_id in ev.get("waiver_ids") or []:
            applied[waiver_id].add(ev["evidence_id"])
    for control in pack.controls:
        for f in control.failures:
            if f.get("waiver_id"):
                applied[f["waiver_id"]].add(f["evidence_id"])
    return [
        [w["waiver_id"], w.get("framework_id"), w.get("control_id"), w.get("asset_id"), w.get("reason"),
         w.get("created_by"), w.get("created_at"), w.get("expires_on"), w.get("revoked_at"), w.get("revoked_by"),
         w.get("revoke_reason"), ";".join(sorted(applied.get(w["waiver_id"], ()))), w.get("_file")]
        for w in pack.waivers
    ]


def summarize(pack: Pack) -> dict[str, Any]:
    totals: dict[str, int] = defaultdict(int)
    for control in pack.controls:
        totals[control.status] += 1
    evidence = pack.evidence_rows()
    return {
        "framework_id": pack.framework_id,
        "framework": {k: v for k, v in pack.framework.items() if k not in ("snapshot_id", "snapshot_at", "_file")},
        "as_of": pack.as_of,
        "integrity": "broken" if any(c.integrity != "ok" for c in pack.controls) else "ok",
        "totals": dict(totals),
        "controls": [
            {
                "control_id": c.control_id, "title": c.title, "status": c.status, "integrity": c.integrity,
                "checks": {k.check_id: k.status for k in c.checks},
                "failing_assets": len({f["asset_id"] for f in c.failures if not f.get("waiver_id")}),
                "waived_assets": len({f["asset_id"] for f in c.failures if f.get("waiver_id")}),
                "file": f"{c.file_stem}.json",
            }
            for c in pack.controls
        ],
        "catalog_files": pack.catalog_files,
        "evidence_files": sorted({ev["_file"] for ev in evidence}),
        "evidence_count": len(evidence),
        "evaluated_from": min((ev["evaluated_at"] for ev in evidence), default=None),
        "evaluated_to": max((ev["evaluated_at"] for ev in evidence), default=None),
        "waivers": [w["waiver_id"] for w in pack.waivers],
    }


def render(pack: Pack, formats: Iterable[str] | None = None) -> dict[str, bytes]:
    """File name -> bytes of the whole pack (the manifest included)."""
    from qlrf_pipelines.compliance.oscal import assessment_results_json

    wanted = set(formats or FORMATS)
    unknown = wanted - set(FORMATS)
    if unknown:
        raise EvidenceError(f"unknown format(s) {', '.join(sorted(unknown))} (known: {', '.join(FORMATS)})")
    files: dict[str, bytes] = {}
    for control in pack.controls:
        for name, content in _control_files(control, pack).items():
            if name.rsplit(".", 1)[1] in wanted:
                files[name] = content
    if "csv" in wanted:
        files["failing_assets.csv"] = _csv_bytes(FAILING_CSV, _failing_rows(pack))
        files["waivers.csv"] = _csv_bytes(WAIVER_CSV, _waiver_rows(pack))
    if "oscal" in wanted:
        files["assessment-results.json"] = assessment_results_json(pack)
    pack.summary = summarize(pack)
    files["summary.json"] = _json_bytes(pack.summary | {"files": sorted([*files, "summary.json"])})
    files[MANIFEST] = "".join(
        f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in sorted(files.items())
    ).encode()
    return files


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise EvidenceError(f"{out} exists and is not a directory")
    existing = [p for p in out.iterdir()] if out.exists() else []
    if not existing:
        out.mkdir(parents=True, exist_ok=True)
        return
    manifest = out / MANIFEST
    if not force or not manifest.exists():
        raise EvidenceError(
            f"{out} is not empty" + (" (--force replaces a pack that has a MANIFEST.sha256)" if manifest.exists()
                                     else "; give an empty or new directory")
        )
    for line in manifest.read_text().splitlines():
        name = line.split("  ", 1)[1] if "  " in line else ""
        if name and "/" not in name and name != MANIFEST:
            (out / name).unlink(missing_ok=True)
    manifest.unlink()


def export_pack(
    lake_dir: Path,
    framework_id: str,
    moment: datetime,
    out: Path,
    formats: Iterable[str] | None = None,
    allow_broken_chain: bool = False,
    force: bool = False,
) -> Pack:
    """Build, verify and write the pack for `framework_id` as of `moment` into `out`."""
    pack = build_pack(lake_dir, framework_id, moment, allow_broken_chain=allow_broken_chain)
    files = render(pack, formats)
    out = Path(out)
    _prepare_out(out, force)
    for name, content in files.items():
        (out / name).write_bytes(content)
    pack.files = files
    return pack
