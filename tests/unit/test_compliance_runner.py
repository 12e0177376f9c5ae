"""The compliance runner on a small DuckDB warehouse written here: pass, fail (SQL and GX), error,
not assessed, drift-rule checks, waivers (waived, never passed), the evidence it lands and the
planning gate that reads it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from qlrf_pipelines.compliance.catalog import merge, parse_catalog_file
from qlrf_pipelines.compliance.chain import verify_chain
from qlrf_pipelines.compliance.evaluate import evaluate_and_record, rollup
from qlrf_pipelines.compliance.evidence import read_evidence
from qlrf_pipelines.compliance.gate import blocking_failures
from qlrf_pipelines.compliance.runner import evaluate

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)

CATALOG_YAML = """
version: 1
checks:
  - id: fresh
    title: Fresh
    description: Sites discovered within max_age_hours.
    kind: sql
    asset: sites
    blocking: true
    params: {max_age_hours: 26}
    population: select site_id as asset_id, site_id from sites
    failing: |
      select site_id as asset_id, site_id, 'snapshot ' || last_snapshot_id as detail
      from sites
      where last_snapshot_at < getvariable('evaluated_at') - to_hours(cast(getvariable('max_age_hours') as bigint))
  - id: no_public_ip
    title: No public IP
    description: Production VMs have no public IP.
    kind: gx
    asset: assets
    population: |
      select asset_id, site_id, nullif(trim(public_ip), '') as public_ip
      from assets where environment = 'production' and kind = 'vm'
    expectations:
      - type: expect_column_values_to_be_null
        kwargs: {column: public_ip}
  - id: encrypted
    title: Encrypted
    description: Disks encrypted.
    kind: gx
    asset: assets
    population: select asset_id, site_id, disk_encryption from assets where kind = 'vm'
    expectations:
      - type: expect_column_values_to_be_in_set
        kwargs: {column: disk_encryption, value_set: [platform_managed, customer_managed]}
  - id: broken
    title: Broken
    description: Reads a table that does not exist.
    kind: sql
    asset: assets
    population: select asset_id from no_such_table
    failing: select asset_id from no_such_table
  - id: leaks_nothing
    title: Params do not leak
    description: Reads a param it does not declare (set by `fresh`), which must be null here.
    kind: sql
    asset: sites
    population: select site_id as asset_id from sites
    failing: select site_id as asset_id from sites where getvariable('max_age_hours') is not null
  - id: tags_rule
    title: Tags
    description: No open drift of QLRF-TAG-001.
    kind: drift_rules
    asset: drift_items
    rule_ids: [QLRF-TAG-001]
  - id: off_rule
    title: Disabled rule
    description: A disabled rule.
    kind: drift_rules
    asset: drift_items
    rule_ids: [QLRF-OFF-001]
  - id: drills
    title: Drills
    description: DR drills.
    kind: sql
    asset: dr_drills
    requires: [dr_drills]
    not_assessed_reason: no dr_drills table yet
    population: select 1 as asset_id
    failing: select 1 as asset_id from dr_drills
framework:
  id: test-fw
  title: Test framework
  version: "1"
  description: For tests.
controls:
  - {id: C-1, title: Fresh, description: d, checks: [fresh]}
  - {id: C-2, title: Exposure, description: d, checks: [no_public_ip, encrypted]}
  - {id: C-3, title: Broken, description: d, checks: [broken, leaks_nothing]}
  - {id: C-4, title: Tags, description: d, checks: [tags_rule, off_rule]}
  - {id: C-5, title: Drills, description: d, checks: [drills]}
"""

OTHER_FRAMEWORK = """
framework: {id: other-fw, title: Other, version: "1", description: "Same checks, other control ids"}
controls:
  - {id: C-2, title: Exposure again, description: d, checks: [no_public_ip]}
"""


def catalog():
    return merge([parse_catalog_file(CATALOG_YAML, "test.yaml"), parse_catalog_file(OTHER_FRAMEWORK, "other.yaml")])


def build_warehouse(path: Path, stale_site: bool = False) -> Path:
    fresh = NOW - timedelta(hours=2)
    with duckdb.connect(str(path)) as con:
        con.execute("create table sites (site_id varchar, last_snapshot_id varchar, last_snapshot_at timestamptz)")
        con.execute("insert into sites values ('aws-1', 's1', ?), ('gcp-1', 's2', ?)",
                    [fresh, NOW - timedelta(hours=30) if stale_site else fresh])
        con.execute(
            "create table assets (asset_id varchar, site_id varchar, environment varchar, kind varchar, state varchar,"
            " public_ip varchar, disk_encryption varchar)"
        )
        con.execute("""insert into assets values
            ('vm-ok', 'aws-1', 'production', 'vm', 'running', null, 'platform_managed'),
            ('vm-public', 'aws-1', 'production', 'vm', 'running', '54.1.2.3', 'customer_managed'),
            ('vm-blank-ip', 'gcp-1', 'production', 'vm', 'running', '  ', null),
            ('vm-plain', 'gcp-1', 'production', 'vm', 'running', null, 'none'),
            ('vm-staging', 'gcp-1', 'staging', 'vm', 'running', '34.5.6.7', 'platform_managed'),
            ('pod-1', 'gcp-1', 'production', 'workload', 'running', null, null)""")
        con.execute(
            "create table drift_items (asset_id varchar, site_id varchar, drift_type varchar, severity varchar,"
            " status varchar, rule_id varchar, detail varchar)"
        )
        con.execute("""insert into drift_items values
            ('vm-ok', 'aws-1', 'config', 'medium', 'open', 'QLRF-TAG-001', 'QLRF-TAG-001: missing owner'),
            ('vm-ok', 'aws-1', 'config', 'medium', 'open', 'QLRF-TAG-001', 'QLRF-TAG-001: missing cost-center'),
            ('vm-plain', 'gcp-1', 'config', 'medium', 'closed', 'QLRF-TAG-001', 'fixed since'),
            ('vm-plain', 'gcp-1', 'image_outdated', 'high', 'open', null, 'behind')""")
        con.execute("create schema staging")
        con.execute("create table staging.stg_drift_rules (rule_id varchar, enabled boolean)")
        con.execute("insert into staging.stg_drift_rules values ('QLRF-TAG-001', true), ('QLRF-OFF-001', false)")
    return path


@pytest.fixture()
def warehouse(tmp_path) -> Path:
    return build_warehouse(tmp_path / "warehouse.duckdb")


def test_statuses_and_failing_ids(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        results = evaluate(con, catalog(), NOW)
    status = {k: r.status for k, r in results.items()}
    assert status == {
        "fresh": "pass", "no_public_ip": "fail", "encrypted": "fail", "broken": "error", "leaks_nothing": "pass",
        "tags_rule": "fail", "off_rule": "not_assessed", "drills": "not_assessed",
    }
    public = results["no_public_ip"]
    assert public.checked_count == 4  # production VMs; the blank IP counts as none
    assert [(f.asset_id, f.site_id) for f in public.failures] == [("vm-public", "aws-1")]
    assert public.failures[0].detail == "expect_column_values_to_be_null: public_ip = '54.1.2.3'"
    encrypted = results["encrypted"]
    assert encrypted.failing_asset_ids == ["vm-plain"], "a VM that does not report encryption is not judged"
    assert "no_such_table" in results["broken"].error and results["broken"].checked_count == 0
    tags = results["tags_rule"]
    assert tags.failing_asset_ids == ["vm-ok"], "closed items and image drift are not failures"
    assert tags.failures[0].detail == "QLRF-TAG-001: missing cost-center; QLRF-TAG-001: missing owner"
    assert "QLRF-OFF-001" in results["off_rule"].error
    assert results["drills"].error.startswith("no dr_drills table yet") and "missing: dr_drills" in results["drills"].error


def test_stale_site_fails_the_blocking_check(tmp_path):
    path = build_warehouse(tmp_path / "w.duckdb", stale_site=True)
    with duckdb.connect(str(path), read_only=True) as con:
        fresh = evaluate(con, catalog(), NOW, ["fresh"])["fresh"]
    assert fresh.status == "fail" and fresh.checked_count == 2
    assert [(f.asset_id, f.detail) for f in fresh.failures] == [("gcp-1", "snapshot s2")]


def test_evidence_waivers_and_chain(warehouse, tmp_path):
    lake = tmp_path / "lake"
    waivers = [
        # accepted for control C-2 of test-fw only: other-fw's C-2 still fails
        {"waiver_id": "W-000001", "control_id": "C-2", "framework_id": "test-fw", "asset_id": "vm-public"},
        {"waiver_id": "W-000002", "control_id": "C-4", "framework_id": None, "asset_id": "vm-ok"},
        {"waiver_id": "W-000003", "control_id": "C-9", "framework_id": None, "asset_id": "vm-plain"},  # other control
    ]
    first = evaluate_and_record(warehouse, lake, "run-1", waivers=waivers, catalog=catalog(), now=NOW)
    rows = {(r["framework_id"], r["control_id"], r["check_id"]): r for r in first.evidence}
    assert len(rows) == 9
    waived = rows[("test-fw", "C-2", "no_public_ip")]
    assert (waived["status"], waived["failing_count"], waived["waived_count"], waived["waiver_ids"]) == (
        "waived", 1, 1, ["W-000001"]
    )
    assert waived["failing_asset_ids"] == ["vm-public"]
    assert rows[("other-fw", "C-2", "no_public_ip")]["status"] == "fail"
    assert rows[("test-fw", "C-2", "encrypted")]["status"] == "fail"
    assert rows[("test-fw", "C-4", "tags_rule")]["status"] == "waived"
    assert rows[("test-fw", "C-3", "broken")]["status"] == "error"
    assert rows[("test-fw", "C-1", "fresh")]["status"] == "pass" and rows[("test-fw", "C-1", "fresh")]["checked_count"] == 2
    assert {c["control_id"]: c["status"] for c in first.controls() if c["framework_id"] == "test-fw"} == {
        "C-1": "pass", "C-2": "fail", "C-3": "error", "C-4": "not_assessed", "C-5": "not_assessed",
    }
    failed = {(c["framework_id"], c["control_id"]): c["failing_asset_ids"] for c in first.failed_controls()}
    assert failed == {("test-fw", "C-2"): ["vm-plain"], ("other-fw", "C-2"): ["vm-public"]}
    failures = {(f["evidence_id"], f["asset_id"]): f["waiver_id"] for f in first.failures}
    assert failures[(waived["evidence_id"], "vm-public")] == "W-000001"
    assert failures[(rows[("other-fw", "C-2", "no_public_ip")]["evidence_id"], "vm-public")] is None

    second = evaluate_and_record(warehouse, lake, "run-2", waivers=[], catalog=catalog(), now=NOW + timedelta(hours=1))
    again = {(r["framework_id"], r["control_id"], r["check_id"]): r for r in second.evidence}
    assert again[("test-fw", "C-2", "no_public_ip")]["status"] == "fail", "an expired or revoked waiver no longer applies"
    assert again[("test-fw", "C-2", "no_public_ip")]["prev_sha256"] == waived["sha256"]
    stored = read_evidence(lake)
    assert len(stored) == 18 and verify_chain(stored) == []
    assert {f.entity for f in second.files} == {"control_evidence", "control_evidence_failures"}
    assert len(read_evidence(lake, entity="control_evidence_failures")) == len(first.failures) + len(second.failures)
    assert blocking_failures(lake) == []


def test_gate_refuses_on_a_failed_blocking_check_until_it_passes(tmp_path):
    lake = tmp_path / "lake"
    stale = build_warehouse(tmp_path / "stale.duckdb", stale_site=True)
    evaluate_and_record(stale, lake, "run-stale", catalog=catalog(), now=NOW)
    found = blocking_failures(lake)
    assert [(f.check_id, f.status, f.failing_asset_ids) for f in found] == [("fresh", "fail", ("gcp-1",))]
    assert "test-fw/C-1" in found[0].describe() and "gcp-1" in found[0].describe()

    # A waiver for the stale site makes the blocking check waived, which does not block.
    waiver = {"waiver_id": "W-1", "control_id": "C-1", "framework_id": None, "asset_id": "gcp-1"}
    evaluate_and_record(stale, lake, "run-waived", waivers=[waiver], catalog=catalog(), now=NOW + timedelta(minutes=1))
    assert blocking_failures(lake) == []

    evaluate_and_record(stale, lake, "run-stale-again", catalog=catalog(), now=NOW + timedelta(minutes=2))
    assert [f.check_id for f in blocking_failures(lake)] == ["fresh"]
    fresh = build_warehouse(tmp_path / "fresh.duckdb")
    evaluate_and_record(fresh, lake, "run-fresh", catalog=catalog(), now=NOW + timedelta(minutes=3))
    assert blocking_failures(lake) == []


def test_unreadable_warehouse_is_evidence_of_errors(tmp_path):
    evaluation = evaluate_and_record(tmp_path / "missing.duckdb", tmp_path / "lake", "run-x", catalog=catalog(), now=NOW)
    assert {r["status"] for r in evaluation.evidence} == {"error"}
    assert all("no warehouse yet" in r["error"] for r in evaluation.evidence)
    assert [f.check_id for f in blocking_failures(tmp_path / "lake")] == ["fresh"]


def test_rollup_order():
    assert rollup(["pass", "waived"]) == "waived"
    assert rollup(["pass", "not_assessed"]) == "not_assessed"
    assert rollup(["waived", "error", "pass"]) == "error"
    assert rollup(["error", "fail"]) == "fail"
    assert rollup(["pass", "pass"]) == "pass"
