"""The evidence hash chain: intact evidence verifies; editing a field, dropping a row or
re-linking one is named (file, control, evidence id, what broke)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from qlrf_pipelines.compliance.chain import (
    CONTENT_MISMATCH,
    EVIDENCE_COLUMNS,
    MISSING_PREDECESSOR,
    PREV_MISMATCH,
    canonical_row,
    row_sha256,
    seal,
    verify_chain,
)
from qlrf_pipelines.compliance.evidence import latest_hashes, read_evidence, write_evidence

T0 = datetime(2026, 11, 20, 6, 0, 0, 123456, tzinfo=timezone.utc)


def evidence_row(run: int, control_id: str = "CM-8", check_id: str = "inventory_fresh", status: str = "pass") -> dict:
    return {
        "evidence_id": f"ev-{run}-{control_id}-{check_id}",
        "framework_id": "nist-800-53",
        "control_id": control_id,
        "check_id": check_id,
        "check_kind": "sql",
        "check_sha256": "ab" * 32,
        "check_definition": '{"id":"%s"}' % check_id,
        "evaluated_at": T0 + timedelta(days=run),
        "run_id": f"run-{run}",
        "snapshot_ids": '{"aws-prod-use1":"20261120T060000000000Z"}',
        "lake_files": ["raw/sites/site=aws-prod-use1/snapshot=20261120T060000000000Z.parquet"],
        "status": status,
        "checked_count": 7,
        "failing_count": 1 if status != "pass" else 0,
        "waived_count": 0,
        "failing_asset_ids": ["aws-prod-use1"] if status != "pass" else [],
        "waiver_ids": [],
        "error": None,
    }


def three_runs() -> list[dict]:
    previous: dict = {}
    rows = []
    for run in range(3):
        batch = seal([evidence_row(run), evidence_row(run, "CP-4", "dr_drills_recent", "not_assessed")], previous)
        for row in batch:
            previous[(row["framework_id"], row["control_id"], row["check_id"])] = row["sha256"]
            row["_file"] = f"raw/control_evidence/site=compliance/snapshot=run{run}.parquet"
        rows += batch
    return rows


def test_sealed_rows_chain_per_control_and_check():
    rows = three_runs()
    assert verify_chain(rows) == []
    cm8 = [r for r in rows if r["control_id"] == "CM-8"]
    assert cm8[0]["prev_sha256"] == ""
    assert [r["prev_sha256"] for r in cm8[1:]] == [r["sha256"] for r in cm8[:-1]]
    assert set(EVIDENCE_COLUMNS) <= set(rows[0])
    assert row_sha256(rows[0]) == rows[0]["sha256"]
    # The canonical form covers every column but sha256 itself, prev_sha256 included.
    assert '"prev_sha256":""' in canonical_row(rows[0]) and '"sha256"' not in canonical_row(rows[0]).replace("prev_sha256", "")


@pytest.mark.parametrize(
    "column, value",
    [("status", "fail"), ("failing_asset_ids", ["someone-else"]), ("checked_count", 8), ("evaluated_at", T0 + timedelta(hours=1)),
     ("error", "edited"), ("lake_files", []), ("check_definition", "{}")],
)
def test_editing_a_field_is_a_named_content_mismatch(column, value):
    rows = three_runs()
    tampered = rows[2]  # CM-8, second run
    assert tampered["control_id"] == "CM-8" and tampered["run_id"] == "run-1"
    tampered[column] = value
    breaks = verify_chain(rows)
    assert len(breaks) == 1, breaks
    found = breaks[0]
    assert (found.problem, found.evidence_id, found.control_id, found.check_id) == (
        CONTENT_MISMATCH, "ev-1-CM-8-inventory_fresh", "CM-8", "inventory_fresh",
    )
    assert found.file == "raw/control_evidence/site=compliance/snapshot=run1.parquet"
    assert "snapshot=run1.parquet" in str(found) and "CM-8" in str(found) and CONTENT_MISMATCH in str(found)


def test_rehashed_edit_breaks_the_next_link():
    rows = three_runs()
    rows[2]["status"] = "fail"
    rows[2]["sha256"] = row_sha256(rows[2])  # a forger recomputes the row's own hash
    breaks = verify_chain(rows)
    assert [(b.problem, b.evidence_id) for b in breaks] == [(MISSING_PREDECESSOR, "ev-2-CM-8-inventory_fresh")]


def test_dropped_row_is_a_missing_predecessor():
    rows = [r for r in three_runs() if r["evidence_id"] != "ev-1-CP-4-dr_drills_recent"]
    breaks = verify_chain(rows)
    assert [(b.problem, b.evidence_id, b.control_id) for b in breaks] == [
        (MISSING_PREDECESSOR, "ev-2-CP-4-dr_drills_recent", "CP-4")
    ]
    first_dropped = [r for r in three_runs() if r["evidence_id"] != "ev-0-CM-8-inventory_fresh"]
    assert [b.problem for b in verify_chain(first_dropped)] == [MISSING_PREDECESSOR]


def test_relinked_row_is_a_prev_link_mismatch():
    rows = three_runs()
    cm8 = [r for r in rows if r["control_id"] == "CM-8"]
    cm8[2]["prev_sha256"] = cm8[0]["sha256"]  # skips the middle row
    cm8[2]["sha256"] = row_sha256(cm8[2])
    breaks = verify_chain(rows)
    assert [(b.problem, b.evidence_id) for b in breaks] == [(PREV_MISMATCH, "ev-2-CM-8-inventory_fresh")]


def test_round_trip_through_the_lake_verifies(tmp_path):
    lake = tmp_path / "lake"
    previous: dict = {}
    for run in range(2):
        rows = seal([evidence_row(run), evidence_row(run, "CP-4", "dr_drills_recent", "not_assessed")], previous)
        failures = [{"evidence_id": rows[0]["evidence_id"], "asset_id": "x", "site_id": None, "detail": "d", "waiver_id": None}]
        write_evidence(lake, rows, failures, T0 + timedelta(days=run))
        previous = latest_hashes(lake)
    read = read_evidence(lake)
    assert len(read) == 4 and verify_chain(read) == []
    assert read[0]["_file"].startswith("raw/control_evidence/site=compliance/snapshot=")
    assert previous[("nist-800-53", "CM-8", "inventory_fresh")] == read[2]["sha256"]

    # Edit one value inside a lake file: the break names that file and row.
    path = lake / read[2]["_file"]
    table = pq.read_table(path).to_pylist()
    table[0]["checked_count"] = 999
    pq.write_table(pq.read_table(path).from_pylist(table, schema=pq.read_table(path).schema), path)
    breaks = verify_chain(read_evidence(lake))
    assert [(b.file, b.evidence_id, b.problem) for b in breaks] == [
        (read[2]["_file"], read[2]["evidence_id"], CONTENT_MISMATCH)
    ]
