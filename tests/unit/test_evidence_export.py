"""Evidence packs from a small hand-made lake: selection as of a moment, byte-identical exports,
refusal (or flagging) of a broken chain, and OSCAL that trestle accepts.

Arrange: the bundled compliance catalog landed at T0, then two evaluation runs written with the
evaluator's own evidence functions (compliance.evidence): at T1 vm_disks_encrypted fails on two
VMs and no_open_high_image_drift on one; at T2 one VM is fixed and the other waived (W-000001,
exported by the control store at T2). Everything else passes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qlrf_pipelines.compliance import waivers
from qlrf_pipelines.compliance.catalog import load_catalog
from qlrf_pipelines.compliance.evidence import DataBasis, build_evidence, latest_hashes, write_evidence
from qlrf_pipelines.compliance.export import EvidenceError, build_pack, export_pack, parse_moment, verify_lake
from qlrf_pipelines.compliance.landing import land_catalog
from qlrf_pipelines.compliance.oscal import token
from qlrf_pipelines.compliance.runner import CheckResult, FailingRow
from qlrf_pipelines.control import ControlStore, Rbac
from qlrf_pipelines.control_export import export_control_store

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
T1 = datetime(2026, 5, 4, 9, 30, tzinfo=timezone.utc)
T2 = datetime(2026, 5, 6, 9, 30, tzinfo=timezone.utc)
VM_A, VM_B, VM_C = "aws:aws-prod-use1:i-a", "aws:aws-prod-use1:i-b", "aws:aws-prod-use1:i-c"
TRESTLE = str(Path(sys.executable).with_name("trestle"))


def results(catalog, failing: dict[str, list[str]]) -> dict[str, CheckResult]:
    return {
        check_id: CheckResult(
            check, "fail" if failing.get(check_id) else "pass", checked_count=10,
            failures=tuple(FailingRow(a, "aws-prod-use1", "disk_encryption = 'none'") for a in failing.get(check_id, [])),
        )
        for check_id, check in catalog.checks.items()
    }


def evaluate(lake: Path, catalog, failing, at: datetime, waiver_list=(), run_id: str = "run") -> list:
    basis = DataBasis({"aws-prod-use1": "20260504T000000000000Z"},
                      ["raw/assets/site=aws-prod-use1/snapshot=20260504T000000000000Z.parquet"])
    evidence, failures = build_evidence(catalog, results(catalog, failing), list(waiver_list), run_id, at, basis,
                                        latest_hashes(lake))
    return write_evidence(lake, evidence, failures, at)


def build_lake(home: Path) -> Path:
    """The scenario of this module's docstring under `home` (lake and control store)."""
    lake = home / "lake"
    catalog = load_catalog(environ={})
    land_catalog(lake, now=T0, catalog=catalog)
    evaluate(lake, catalog, {"vm_disks_encrypted": [VM_A, VM_B], "no_open_high_image_drift": [VM_C]}, T1, run_id="run-1")
    with ControlStore.open(home=home) as store:
        (waiver,) = waivers.add(store, waivers.catalog_controls(catalog), "CC6.1", [VM_B], date(2026, 12, 31), "erin",
                                "vendor appliance, encryption in Q3", Rbac.load(), framework_id="soc2",
                                now=T2 - timedelta(hours=1))
        export_control_store(store, lake, now=T2 - timedelta(minutes=30))
        in_force = store.waivers_in_force(T2)
    assert [w.waiver_id for w in in_force] == [waiver.waiver_id] == ["W-000001"]
    evaluate(lake, catalog, {"vm_disks_encrypted": [VM_B], "no_open_high_image_drift": [VM_C]}, T2, in_force, run_id="run-2")
    return lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return build_lake(tmp_path_factory.mktemp("evidence-lake"))


def tree(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def trestle_validate(directory: Path, document: bytes) -> subprocess.CompletedProcess:
    """`trestle validate -f` on the document inside a fresh trestle workspace (offline)."""
    workspace = directory / "trestle"
    workspace.mkdir(parents=True)
    subprocess.run([TRESTLE, "init"], cwd=workspace, check=True, capture_output=True, timeout=120)
    target = workspace / "assessment-results" / "pack" / "assessment-results.json"
    target.parent.mkdir(parents=True)
    target.write_bytes(document)
    return subprocess.run([TRESTLE, "validate", "-f", str(target)], cwd=workspace, capture_output=True, text=True,
                          timeout=120)


# ---------------------------------------------------------------- --at
def test_at_a_date_means_the_end_of_that_day_utc():
    assert parse_moment("2026-05-04") == datetime(2026, 5, 4, 23, 59, 59, 999999, tzinfo=timezone.utc)
    assert parse_moment("2026-05-04T09:30:00") == T1
    assert parse_moment("2026-05-04T11:30:00+02:00") == T1
    assert parse_moment("now", now=T2) == T2
    with pytest.raises(EvidenceError, match="expected YYYY-MM-DD"):
        parse_moment("last tuesday")


# ---------------------------------------------------------------- selection as of a moment
def test_the_pack_holds_the_latest_evidence_at_or_before_the_moment(lake):
    at_t1 = build_pack(lake, "soc2", parse_moment("2026-05-05"))
    at_t2 = build_pack(lake, "soc2", T2)
    status_t1 = {c.control_id: c.status for c in at_t1.controls}
    status_t2 = {c.control_id: c.status for c in at_t2.controls}
    assert list(status_t1) == ["CC6.1", "CC6.6", "CC6.8", "CC7.1", "CC7.2", "CC8.1"]  # catalog order
    assert status_t1["CC6.1"] == "fail" and status_t2["CC6.1"] == "waived"
    assert all(s == "pass" for c, s in status_t2.items() if c != "CC6.1")
    (check,) = [c for c in at_t2.controls if c.control_id == "CC6.1"][0].checks
    assert (check.evidence["run_id"], check.evidence["failing_count"], check.evidence["waived_count"]) == ("run-2", 1, 1)
    assert [(f["asset_id"], f["waiver_id"]) for f in at_t2.controls[0].failures] == [(VM_B, "W-000001")]
    assert [(w["waiver_id"], w["created_by"], w["control_id"]) for w in at_t2.waivers] == [("W-000001", "erin", "CC6.1")]
    assert at_t1.waivers == []
    # the same check in another framework is not waived: the waiver names soc2
    cis = {c.control_id: c.status for c in build_pack(lake, "cis-qlrf", T2).controls}
    assert cis["QCIS-1.1"] == "fail"


def test_nothing_before_the_first_evaluation_and_unknown_frameworks_are_refused(lake):
    with pytest.raises(EvidenceError, match="at or before 2026-05-03T23:59:59.999999Z: the first evaluation was 2026-05-04T09:30"):
        build_pack(lake, "soc2", parse_moment("2026-05-03"))
    with pytest.raises(EvidenceError, match=r"no evidence for framework 'iso27001'.*nist-800-53, soc2"):
        build_pack(lake, "iso27001", T2)


# ---------------------------------------------------------------- the files
def test_export_writes_reports_per_control_failing_assets_waivers_summary_oscal_and_manifest(lake, tmp_path):
    pack = export_pack(lake, "soc2", T2, tmp_path / "pack")
    files = tree(tmp_path / "pack")
    controls = ["CC6.1", "CC6.6", "CC6.8", "CC7.1", "CC7.2", "CC8.1"]
    assert set(files) == {f"{c}.{ext}" for c in controls for ext in ("json", "csv")} | {
        "failing_assets.csv", "waivers.csv", "summary.json", "assessment-results.json", "MANIFEST.sha256",
    }
    manifest = dict(reversed(line.split("  ")) for line in files["MANIFEST.sha256"].decode().splitlines())
    assert set(manifest) == set(files) - {"MANIFEST.sha256"}
    assert all(hashlib.sha256(files[name]).hexdigest() == digest for name, digest in manifest.items())

    report = json.loads(files["CC6.1.json"])
    (check,) = report["checks"]
    evidence = check["evidence"]
    assert (report["status"], report["integrity"], check["status"]) == ("waived", "ok", "waived")
    assert evidence["evidence_file"].startswith("raw/control_evidence/site=compliance/snapshot=20260506T093000")
    assert evidence["snapshot_ids"] == {"aws-prod-use1": "20260504T000000000000Z"}
    assert len(evidence["sha256"]) == 64 and len(evidence["prev_sha256"]) == 64
    assert report["catalog_files"]["compliance_controls"].startswith("raw/compliance_controls/site=config/snapshot=20260501T08")
    assert files["CC6.1.csv"].decode().splitlines()[1].startswith("soc2,CC6.1,vm_disks_encrypted,gx,waived,10,1,1,")
    assert files["failing_assets.csv"].decode().splitlines()[1:] == [
        f"soc2,CC6.1,vm_disks_encrypted,{evidence['evidence_id']},{VM_B},aws-prod-use1,waived,W-000001,"
        f"disk_encryption = 'none',{evidence['evidence_file'].replace('control_evidence', 'control_evidence_failures')},ok"
    ]
    waiver_line = files["waivers.csv"].decode().splitlines()[1]
    assert waiver_line.startswith(f"W-000001,soc2,CC6.1,{VM_B},\"vendor appliance, encryption in Q3\",erin,")
    summary = json.loads(files["summary.json"])
    assert (summary["as_of"], summary["integrity"], summary["totals"]) == ("2026-05-06T09:30:00.000000Z", "ok",
                                                                          {"pass": 5, "waived": 1})
    assert summary["evaluated_from"] == summary["evaluated_to"] == "2026-05-06T09:30:00.000000Z"
    assert pack.summary["waivers"] == ["W-000001"]


def test_the_same_moment_exports_the_same_bytes_whatever_came_later(lake, tmp_path):
    import shutil

    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    first = export_pack(copy, "nist-800-53", parse_moment("2026-05-05"), tmp_path / "one")
    # later: another evaluation (the drifted asset fixed) and another control store export
    t3 = T2 + timedelta(days=1)
    evaluate(copy, load_catalog(environ={}), {"vm_disks_encrypted": [VM_B]}, t3, run_id="run-3")
    export_pack(copy, "nist-800-53", parse_moment("2026-05-05T23:59:59.999999Z"), tmp_path / "two")
    assert tree(tmp_path / "one") == tree(tmp_path / "two")
    assert json.loads(first.files["summary.json"])["totals"] == {"fail": 1, "pass": 7}  # CM-2 (image drift)
    now = export_pack(copy, "nist-800-53", t3, tmp_path / "three")
    assert json.loads(now.files["summary.json"])["totals"] == {"pass": 8}
    assert tree(tmp_path / "three")["CM-2.json"] != tree(tmp_path / "one")["CM-2.json"]


def test_formats_and_an_existing_directory(lake, tmp_path):
    export_pack(lake, "soc2", T2, tmp_path / "pack", formats=["csv"])
    assert sorted(tree(tmp_path / "pack")) == sorted(
        [f"{c}.csv" for c in ("CC6.1", "CC6.6", "CC6.8", "CC7.1", "CC7.2", "CC8.1")]
        + ["failing_assets.csv", "waivers.csv", "summary.json", "MANIFEST.sha256"]
    )
    with pytest.raises(EvidenceError, match="is not empty"):
        export_pack(lake, "soc2", T2, tmp_path / "pack")
    (tmp_path / "pack" / "notes.txt").write_text("mine")
    export_pack(lake, "soc2", T2, tmp_path / "pack", force=True)
    assert (tmp_path / "pack" / "notes.txt").read_text() == "mine"  # only the old pack's files are replaced
    assert "assessment-results.json" in tree(tmp_path / "pack") and "CC6.1.csv" in tree(tmp_path / "pack")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    with pytest.raises(EvidenceError, match="give an empty or new directory"):
        export_pack(lake, "soc2", T2, tmp_path / "other", force=True)


# ---------------------------------------------------------------- integrity
def tampered_copy(lake: Path, tmp_path: Path, entity: str, edit) -> tuple[Path, str]:
    """A copy of the lake whose newest `entity` file is rewritten through `edit(rows)`."""
    import shutil

    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    path = sorted((copy / "raw" / entity).glob("site=*/*.parquet"))[-1]
    table = pq.read_table(path)
    rows = table.to_pylist()
    edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    return copy, path.relative_to(copy).as_posix()


def test_an_edited_evidence_row_breaks_the_chain_and_refuses_the_export(lake, tmp_path):
    def flip(rows):
        row = next(r for r in rows if r["framework_id"] == "soc2" and r["control_id"] == "CC6.6")
        row["status"] = "pass" if row["status"] != "pass" else "fail"

    copy, file = tampered_copy(lake, tmp_path, "control_evidence", flip)
    report = verify_lake(copy)
    assert not report.ok and len(report.problems) == 1
    assert report.problems[0].startswith(f"{file}: soc2 CC6.6 check no_public_ip_in_production, evidence ")
    assert "content hash mismatch" in report.problems[0]
    assert verify_lake(copy, "nist-800-53").ok
    with pytest.raises(EvidenceError, match=r"(?s)integrity check failed.*soc2 CC6\.6 check no_public_ip_in_production"):
        export_pack(copy, "soc2", T2, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()

    pack = export_pack(copy, "soc2", T2, tmp_path / "flagged", allow_broken_chain=True)
    files = tree(tmp_path / "flagged")
    assert [c.control_id for c in pack.controls if c.integrity == "broken"] == ["CC6.6"]
    assert json.loads(files["CC6.6.json"])["integrity"] == "broken"
    assert json.loads(files["CC6.1.json"])["integrity"] == "ok"
    assert files["CC6.6.csv"].decode().splitlines()[1].endswith(",broken")
    assert json.loads(files["summary.json"])["integrity"] == "broken"
    oscal = json.loads(files["assessment-results.json"])["assessment-results"]
    finding = next(f for f in oscal["results"][0]["findings"] if f["target"]["target-id"] == "CC6.6")
    assert {"name": "integrity", "value": "broken", "ns": "urn:qlrf:oscal"} in finding["props"]
    assert "INTEGRITY BROKEN" in finding["remarks"]


def test_edited_failure_rows_are_caught_against_the_hashed_evidence(lake, tmp_path):
    copy, file = tampered_copy(lake, tmp_path, "control_evidence_failures", lambda rows: rows.pop())
    report = verify_lake(copy, "soc2")
    assert len(report.problems) == 1 and "no rows in control_evidence_failures" in report.problems[0]
    assert "soc2 CC6.1 check vm_disks_encrypted" in report.problems[0]


# ---------------------------------------------------------------- OSCAL
def test_oscal_assessment_results_validate_with_trestle(lake, tmp_path):
    from trestle.oscal.assessment_results import AssessmentResults

    pack = export_pack(lake, "cis-qlrf", T2, tmp_path / "pack")
    path = tmp_path / "pack" / "assessment-results.json"
    model = AssessmentResults.oscal_read(path)  # pydantic validation of the whole document
    (result,) = model.results
    assert len(result.findings) == len(pack.controls) == 5
    assert len(result.observations) == len(pack.evidence_rows())
    encrypted = next(f for f in result.findings if f.target.target_id == "QCIS-1.1")
    assert (encrypted.target.status.state.value, encrypted.target.status.reason) == ("not-satisfied", "fail")
    inventory = {i.description for i in result.local_definitions.inventory_items}
    assert inventory == {f"Asset {VM_B}"}  # VM_C fails CM-2 only, which is not a CIS control
    assert model.metadata.last_modified == T2 and result.start == result.end == T2
    assert model.uuid == json.loads(path.read_bytes())["assessment-results"]["uuid"]

    checked = trestle_validate(tmp_path, path.read_bytes())
    assert checked.returncode == 0 and "VALID" in checked.stdout, checked.stdout + checked.stderr
    broken = json.loads(path.read_bytes())
    del broken["assessment-results"]["results"][0]["reviewed-controls"]
    refused = trestle_validate(tmp_path / "again", json.dumps(broken).encode())
    assert refused.returncode != 0 and "reviewed-controls: required field is missing" in refused.stdout + refused.stderr


def test_oscal_tokens_for_control_ids_that_start_with_a_digit():
    assert token("CM-2") == "CM-2" and token("1.1") == "_1.1" and token("A (1)") == "A__1_"
