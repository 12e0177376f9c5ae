"""The evidence hash chain: each control_evidence row carries a SHA-256 over its own content and
the hash of the previous evidence row of the same (framework_id, control_id, check_id).

Editing any field of a row changes its content hash; deleting or reordering rows breaks the link
of the row after. So evidence cannot be silently edited: `verify_chain` recomputes every hash and
names the file, control and evidence id of each break. (Removing the newest rows of a key leaves
a valid, shorter chain; the Dagster event log and the evaluation runs' materializations keep the
count of rows each run wrote.)

Canonical form: the hashed columns (every evidence column but `sha256`, with `prev_sha256`) as
JSON with sorted keys and no spaces; timestamps as UTC ISO-8601 with microseconds and `Z`, lists
as JSON arrays, nulls as null. Rows read back from Parquet, DuckDB or pandas hash the same.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

EVIDENCE_COLUMNS: tuple[str, ...] = (
    "evidence_id", "framework_id", "control_id", "check_id", "check_kind", "check_sha256", "check_definition",
    "evaluated_at", "run_id", "snapshot_ids", "lake_files", "status", "checked_count", "failing_count",
    "waived_count", "failing_asset_ids", "waiver_ids", "error", "prev_sha256", "sha256",
)
HASHED_COLUMNS: tuple[str, ...] = tuple(c for c in EVIDENCE_COLUMNS if c != "sha256")
FILE_KEY = "_file"  # rows read from the lake carry the relative path of their file under this key

CONTENT_MISMATCH = "content hash mismatch"
PREV_MISMATCH = "prev link mismatch"
MISSING_PREDECESSOR = "missing predecessor"


def _timestamp(value: datetime) -> str:
    moment = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return _plain(value.item())
    if hasattr(value, "tolist"):  # numpy arrays (lists read through pandas)
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_row(row: Mapping[str, Any]) -> str:
    """The text an evidence row's sha256 is taken over."""
    content = {column: _plain(row.get(column)) for column in HASHED_COLUMNS}
    if isinstance(content["evaluated_at"], str) and not content["evaluated_at"].endswith("Z"):
        content["evaluated_at"] = _timestamp(datetime.fromisoformat(content["evaluated_at"]))
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_sha256(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_row(row).encode()).hexdigest()


def chain_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(row.get("framework_id")), str(row.get("control_id")), str(row.get("check_id")))


def seal(rows: Iterable[dict[str, Any]], previous: Mapping[tuple[str, str, str], str]) -> list[dict[str, Any]]:
    """Set prev_sha256 (from `previous`, the latest sha256 per key already in the lake, '' for a
    first row) and sha256 on new rows, in order; rows of one key in one batch chain to each other."""
    latest = dict(previous)
    sealed = []
    for row in rows:
        key = chain_key(row)
        row = dict(row, prev_sha256=latest.get(key, ""))
        row["sha256"] = row_sha256(row)
        latest[key] = row["sha256"]
        sealed.append(row)
    return sealed


@dataclass(frozen=True)
class ChainBreak:
    file: str
    framework_id: str
    control_id: str
    check_id: str
    evidence_id: str
    problem: str  # CONTENT_MISMATCH | PREV_MISMATCH | MISSING_PREDECESSOR
    detail: str

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return (
            f"{where}{self.framework_id} {self.control_id} check {self.check_id}, evidence {self.evidence_id}: "
            f"{self.problem} ({self.detail})"
        )


def _order(row: Mapping[str, Any]) -> tuple[str, str, str]:
    evaluated = _plain(row.get("evaluated_at"))
    return (str(evaluated or ""), str(row.get(FILE_KEY) or ""), str(row.get("evidence_id") or ""))


def verify_chain(rows: Sequence[Mapping[str, Any]]) -> list[ChainBreak]:
    """Recompute every row's hash and every link; [] when the evidence is intact.

    Rows of each (framework, control, check) are taken in evaluated_at order. A row whose stored
    sha256 differs from its content's is a content mismatch; a first row that names a
    predecessor, or a row whose predecessor is not among the rows, is a missing predecessor; a
    row that names a different row of the key than the one before it is a prev link mismatch.
    """
    breaks: list[ChainBreak] = []
    by_key: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(chain_key(row), []).append(row)

    def broke(row: Mapping[str, Any], problem: str, detail: str) -> None:
        framework_id, control_id, check_id = chain_key(row)
        breaks.append(ChainBreak(
            str(row.get(FILE_KEY) or ""), framework_id, control_id, check_id, str(row.get("evidence_id")), problem, detail
        ))

    for key in sorted(by_key):
        chain = sorted(by_key[key], key=_order)
        stored = {str(r.get("sha256")) for r in chain}
        before = ""
        for row in chain:
            recomputed = row_sha256(row)
            if recomputed != row.get("sha256"):
                broke(row, CONTENT_MISMATCH, f"stored {str(row.get('sha256'))[:12]}…, content hashes to {recomputed[:12]}…")
            prev = str(row.get("prev_sha256") or "")
            if prev != before:
                if prev and prev not in stored:
                    broke(row, MISSING_PREDECESSOR, f"prev_sha256 {prev[:12]}… is not the sha256 of any evidence row of this key")
                elif not prev:
                    broke(row, PREV_MISMATCH, f"prev_sha256 is empty, but the row before has sha256 {before[:12]}…")
                else:
                    broke(row, PREV_MISMATCH, f"prev_sha256 {prev[:12]}… is not the row before ({before[:12] or 'none'}…)")
            before = str(row.get("sha256"))
    return breaks
