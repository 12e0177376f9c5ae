"""Compliance checks on the bundled sample estate: a known pass and a known fail per bundled
check, evidence chained across the session's two refresh runs, the asset check evaluations in
the runs' events, the warehouse views, and remediation planning refused by a failed blocking
check.

Two estates are judged:
- `sample_runs` (conftest): the bundled estate refreshed twice; each refresh evaluated every
  check and landed its evidence.
- `imported` (this module): a copy of that lake plus the bundled supply-chain files imported ten
  days ago and a control store export with two executed tasks (one approved by its requester),
  rebuilt with dbt and evaluated; then evaluated again three days later, when every site
  snapshot is stale, so the blocking `inventory_fresh` fails and planning is refused.
Known drift-rule passes and failures come from tests/fixtures/sample_drift_expectations.yaml.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType

from qlrf_pipelines.compliance.catalog import load_catalog
from qlrf_pipelines.compliance.chain import verify_chain
from qlrf_pipelines.compliance.evaluate import Evaluation, evaluate_and_record
from qlrf_pipelines.compliance.evidence import latest_evidence, read_evidence
from qlrf_pipelines.compliance.gate import blocking_failures
from qlrf_pipelines.control_export import write_control_snapshot
from qlrf_pipelines.lake import list_snapshots
from qlrf_pipelines.settings import PACKAGE_DIR
from qlrf_pipelines.supply_chain.landing import land_file

from tests.conftest import sql

pytestmark = pytest.mark.integration

EXPECTATIONS = Path(__file__).resolve().parents[1] / "fixtures" / "sample_drift_expectations.yaml"
SUPPLY_CHAIN = PACKAGE_DIR / "sample_data" / "supply_chain"
CATALOG = load_catalog(environ={})
RULE_CHECKS = {
    check.rule_ids[0]: check_id for check_id, check in CATALOG.checks.items() if check.kind == "drift_rules"
}


def drift_expectations() -> dict[str, dict[str, list[tuple[str, str]]]]:
    raw = yaml.safe_load(EXPECTATIONS.read_text())
    return {rule: {k: [tuple(pair) for pair in v or []] for k, v in cases.items()} for rule, cases in raw.items()}


def asset_ids(home: Path, pairs) -> set[str]:
    found = {}
    for site_id, name in pairs:
        rows = sql(home, "SELECT asset_id FROM assets WHERE site_id = ? AND name = ?", [site_id, name])
        assert len(rows) == 1, f"{site_id} {name}: {rows}"
        found[(site_id, name)] = rows[0][0]
    return set(found.values())


def one_asset(home: Path, site_id: str, name: str) -> str:
    return next(iter(asset_ids(home, [(site_id, name)])))


def latest_by_check(lake: Path) -> dict[str, dict]:
    """check id -> its newest evidence row (the check's result is the same under every control)."""
    return {row["check_id"]: row for row in latest_evidence(read_evidence(lake))}


def check_result(evaluation: Evaluation, check_id: str):
    return evaluation.results[check_id]


# -- the session's two refresh runs -------------------------------------------------------------


def test_every_refresh_evaluated_every_check_and_the_chains_verify(sample_runs):
    lake = sample_runs.home / "lake"
    rows = read_evidence(lake)
    runs = [sample_runs.first_result.run_id, sample_runs.second_result.run_id]
    mappings = sum(1 for _ in CATALOG.mappings())
    assert [r["run_id"] for r in rows] == [runs[0]] * mappings + [runs[1]] * mappings
    assert verify_chain(rows) == []
    first = {(r["framework_id"], r["control_id"], r["check_id"]): r for r in rows[:mappings]}
    for row in rows[mappings:]:
        key = (row["framework_id"], row["control_id"], row["check_id"])
        assert row["prev_sha256"] == first[key]["sha256"] and first[key]["prev_sha256"] == ""
    latest = rows[-1]
    snapshots = dict(sql(sample_runs.home, "SELECT site_id, last_snapshot_id FROM sites"))
    basis = json.loads(latest["snapshot_ids"])
    assert {k: v for k, v in basis.items() if k != "control"} == snapshots and "control" in basis
    assert all((lake / path).exists() for path in latest["lake_files"])
    assert f"raw/assets/site=vsphere-dc1/snapshot={snapshots['vsphere-dc1']}.parquet" in latest["lake_files"]
    # The catalog landed once: the second refresh read the same catalog and wrote nothing.
    assert len(list_snapshots(lake, "compliance_checks", "config")) == 1


def test_known_pass_and_fail_of_each_check_on_the_sample(sample_runs):
    home = sample_runs.home
    latest = latest_by_check(home / "lake")
    assert set(latest) == set(CATALOG.checks)
    failing = {check_id: set(row["failing_asset_ids"]) for check_id, row in latest.items()}

    def population(check_id: str) -> set[str]:
        check = CATALOG.checks[check_id]
        return {row[0] for row in sql(home, f"SELECT asset_id FROM ({check.population}) AS p")} if check.population else set()

    assert latest["inventory_fresh"]["status"] == "pass" and latest["inventory_fresh"]["checked_count"] == 7
    behind = one_asset(home, "aws-prod-use1", "anchor-behind-01")
    unknown = one_asset(home, "aws-prod-use1", "anchor-unknown-01")
    current = one_asset(home, "aws-prod-use1", "anchor-current-01")
    assert unknown in failing["assets_traced_to_golden_images"]
    assert current in population("assets_traced_to_golden_images") - failing["assets_traced_to_golden_images"]
    assert behind in failing["no_open_high_image_drift"] and current not in failing["no_open_high_image_drift"]
    assert latest["no_open_high_image_drift"]["status"] == "fail"

    expected = drift_expectations()
    for rule_id, check_id in RULE_CHECKS.items():
        cases = expected[rule_id]
        assert latest[check_id]["status"] == "fail", check_id
        assert asset_ids(home, cases["fail"]) <= failing[check_id], check_id
        assert not asset_ids(home, cases["pass"]) & failing[check_id], check_id
    # The GX checks judge the same columns as QLRF-ENC-001 and QLRF-NET-001: the same failures.
    assert failing["vm_disks_encrypted"] == asset_ids(home, expected["QLRF-ENC-001"]["fail"])
    assert asset_ids(home, expected["QLRF-ENC-001"]["pass"]) <= population("vm_disks_encrypted")
    assert failing["no_public_ip_in_production"] == asset_ids(home, expected["QLRF-NET-001"]["fail"])
    assert asset_ids(home, expected["QLRF-NET-001"]["pass"]) <= population("no_public_ip_in_production")

    # No scan, provenance or SBOM is imported by a refresh: every production image fails those,
    # and no CVE is known, so SI-2 passes. No task ran, so CC8.1's approval check passes on none.
    production = {row[0] for row in sql(home, "SELECT image_id FROM golden_images WHERE status = 'production'")}
    assert failing["production_images_scanned_recently"] == production
    assert failing["production_images_built_with_provenance"] == production
    assert latest["no_fixable_critical_cve_in_production"]["status"] == "pass"
    assert latest["no_fixable_critical_cve_in_production"]["checked_count"] == len(production)
    assert (latest["executed_tasks_were_approved"]["status"], latest["executed_tasks_were_approved"]["checked_count"]) == ("pass", 0)
    drills = latest["dr_drills_recent"]
    assert drills["status"] == "not_assessed" and "dr_drills" in drills["error"]
    assert {r[0] for r in sql(home, "SELECT control_status FROM v_compliance_status WHERE control_id = 'CP-4'")} == {"not_assessed"}


def test_runs_report_one_asset_check_evaluation_per_check(sample_runs):
    for result in (sample_runs.first_result, sample_runs.second_result):
        events = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
        ours = {
            e.event_specific_data.check_name: e.event_specific_data
            for e in events if e.event_specific_data.check_name in CATALOG.checks
        }
        assert set(ours) == set(CATALOG.checks)
        for check_id, data in ours.items():
            assert data.asset_key.path == [CATALOG.checks[check_id].asset]
        assert ours["inventory_fresh"].passed and ours["inventory_fresh"].blocking
        assert not ours["no_public_ip_in_production"].passed
        assert ours["no_public_ip_in_production"].severity.value == "ERROR"
        assert not ours["dr_drills_recent"].passed and ours["dr_drills_recent"].severity.value == "WARN"
        materialized = [
            e.event_specific_data.materialization for e in result.all_events
            if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
            and e.event_specific_data.materialization.asset_key.path == ["control_evidence"]
            and "failed_controls" in e.event_specific_data.materialization.metadata
        ]
        assert len(materialized) == 1
        metadata = materialized[0].metadata
        failed = {(c["framework_id"], c["control_id"]) for c in metadata["failed_controls"].value}
        assert ("soc2", "CC6.6") in failed and ("nist-800-53", "CP-4") not in failed
        assert metadata["controls_not_assessed"].value == 1 and metadata["blocking_failures"].value == []


def test_warehouse_compliance_tables_and_views(sample_runs):
    home = sample_runs.home
    frameworks = dict(sql(home, "SELECT framework_id, control_count FROM compliance_frameworks"))
    assert frameworks == {"cis-qlrf": 5, "nist-800-53": 8, "soc2": 6}
    cm8 = sql(home, "SELECT check_ids, has_blocking_check FROM compliance_controls WHERE control_id = 'CM-8'")
    assert cm8 == [(["inventory_fresh", "assets_traced_to_golden_images"], True)]
    # The views read the lake: the second run's evidence, written after its build, is there.
    mappings = sum(1 for _ in CATALOG.mappings())
    assert sql(home, "SELECT count(*), count(DISTINCT run_id) FROM control_evidence") == [(2 * mappings, 2)]
    status = sql(home, "SELECT DISTINCT run_id FROM v_compliance_status")
    assert status == [(sample_runs.second_result.run_id,)]
    rows = sql(home, "SELECT control_status, check_id, check_status FROM v_compliance_status WHERE control_id = 'CM-8'")
    assert {(c, s) for _, c, s in rows} == {("inventory_fresh", "pass"), ("assets_traced_to_golden_images", "fail")}
    assert {r[0] for r in rows} == {"fail"}
    details = sql(
        home,
        "SELECT f.detail FROM control_evidence_failures f JOIN control_evidence e USING (evidence_id) "
        "WHERE e.run_id = ? AND f.check_id = 'no_public_ip_in_production' AND f.control_id = 'CC6.6'",
        [sample_runs.second_result.run_id],
    )
    assert details and all(d[0].startswith("expect_column_values_to_be_null: public_ip = ") for d in details)
    # Rows read back from the warehouse hash the same as in the lake.
    columns = [r[0] for r in sql(home, "SELECT column_name FROM information_schema.columns WHERE table_name = 'control_evidence' ORDER BY ordinal_position")]
    warehouse_rows = [dict(zip(columns, r)) for r in sql(home, "SELECT * FROM control_evidence")]
    assert verify_chain(warehouse_rows) == []


# -- imported supply chain, executed tasks, a stale estate ---------------------------------------


@dataclass
class Imported:
    home: Path
    now: datetime
    fresh: Evaluation
    stale: Evaluation
    checks_run: object
    plan_run: object


def executed_task(task_id: str, requested_by: str, approved_by: str, at: datetime) -> dict:
    return {
        "task_id": task_id, "title": f"move assets ({task_id})", "status": "succeeded", "requested_by": requested_by,
        "site_id": "aws-prod-use1", "environment": "production", "family": "ubuntu-22.04-base", "risk": "low",
        "plan_version": 1, "plan_hash": "0" * 64, "plan_valid": True, "approved_by": approved_by,
        "approved_at": at.isoformat(), "created_at": at.isoformat(), "updated_at": at.isoformat(),
        "started_at": at.isoformat(), "finished_at": at.isoformat(),
    }


@pytest.fixture(scope="module")
def imported(sample_runs, tmp_path_factory, dagster_instance) -> Imported:
    from tests.integration.test_dbt_models import run_dbt_build

    tmp = tmp_path_factory.mktemp("compliance-imported")
    home = tmp / "home"
    shutil.copytree(sample_runs.home / "lake", home / "lake")
    now = datetime.now(timezone.utc)
    for i, path in enumerate(sorted(SUPPLY_CHAIN.glob("*.json"))):
        land_file(home / "lake", path, now=now - timedelta(days=10, minutes=i))
    write_control_snapshot(home / "lake", {"ai_tasks": [
        executed_task("T-900001", "alice", "bob", now - timedelta(hours=1)),
        executed_task("T-900002", "alice", "alice", now - timedelta(hours=1)),
    ]}, now=now - timedelta(minutes=30))
    run_dbt_build(tmp, home / "lake", home / "warehouse.duckdb")
    fresh = evaluate_and_record(home / "warehouse.duckdb", home / "lake", "imported-now", catalog=CATALOG, now=now)

    from qlrf_pipelines.definitions import build_definitions
    from qlrf_pipelines.resources.control import BUNDLED_RBAC_FILE, ControlStoreResource
    from qlrf_pipelines.resources.estate import EstateResource
    from qlrf_pipelines.resources.llm import LLMResource
    from qlrf_pipelines.settings import BUNDLED_SITES_FILE

    resources = {
        "estate": EstateResource(home=str(home), sites_file=str(BUNDLED_SITES_FILE)),
        "control": ControlStoreResource(home=str(home), url=None, rbac_file=str(BUNDLED_RBAC_FILE)),
        "llm": LLMResource(),
    }
    defs = build_definitions()
    # The asset check on its own (what the UI's "Execute checks" runs), with the real clock.
    checks_run = defs.resolve_job_def("evaluate_compliance_job").execute_in_process(
        instance=dagster_instance, resources=resources, raise_on_error=False,
    )
    later = now + timedelta(days=3)
    stale = evaluate_and_record(home / "warehouse.duckdb", home / "lake", "imported-later", catalog=CATALOG, now=later)
    plan_run = defs.resolve_job_def("plan_remediation_job").execute_in_process(
        instance=dagster_instance, resources=resources, raise_on_error=False,
    )
    return Imported(home, now, fresh, stale, checks_run, plan_run)


def test_image_checks_pass_and_fail_once_scans_sboms_and_provenance_are_imported(imported):
    results = imported.fresh.results
    cve = results["no_fixable_critical_cve_in_production"]
    assert cve.status == "fail" and cve.failing_asset_ids == ["rhel-9-base@9.4.0"]
    assert "CVE-2024-2961" in cve.failures[0].detail and cve.checked_count == 5
    scanned = results["production_images_scanned_recently"]
    assert "rhel-9-base@9.4.0" not in scanned.failing_asset_ids, "scanned 10 days ago, within 30"
    assert "ubuntu-22.04-base@1.3.0" in scanned.failing_asset_ids
    provenance = results["production_images_built_with_provenance"]
    assert "ubuntu-22.04-base@1.3.0" not in provenance.failing_asset_ids, "SLSA provenance and SPDX SBOM imported"
    details = {f.asset_id: f.detail for f in provenance.failures}
    assert details["windows-2022-base@2026.10"] == "no SBOM (SPDX or CycloneDX)"
    assert details["rhel-9-base@9.4.0"] == "no build provenance and no SBOM"


def test_executed_tasks_need_an_approval_by_someone_else(imported):
    approved = imported.fresh.results["executed_tasks_were_approved"]
    assert approved.checked_count == 2 and approved.failing_asset_ids == ["T-900002"]
    assert approved.failures[0].detail == "approved by its requester alice"
    control = next(c for c in imported.fresh.controls() if (c["framework_id"], c["control_id"]) == ("soc2", "CC8.1"))
    assert control["status"] == "fail" and "T-900002" in control["failing_asset_ids"]


def test_compliance_checks_run_on_their_own(imported):
    run = imported.checks_run
    assert run.success
    results = {
        e.event_specific_data.check_name: e.event_specific_data
        for e in run.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert set(results) == set(CATALOG.checks)
    assert results["inventory_fresh"].passed and not results["executed_tasks_were_approved"].passed
    assert results["executed_tasks_were_approved"].metadata["failing_asset_ids"].value == ["T-900002"]
    rows = [r for r in read_evidence(imported.home / "lake") if r["run_id"] == run.run_id]
    assert len(rows) == sum(1 for _ in CATALOG.mappings())


def test_stale_estate_fails_the_blocking_check_and_refuses_planning(imported):
    assert imported.fresh.results["inventory_fresh"].status == "pass"
    stale = imported.stale.results["inventory_fresh"]
    assert stale.status == "fail" and len(stale.failing_asset_ids) == 7
    assert all(" h old (limit 26 h)" in f.detail for f in stale.failures)
    assert imported.stale.blocking_failures() == ["inventory_fresh"]
    assert [f.check_id for f in blocking_failures(imported.home / "lake")] == ["inventory_fresh"]
    assert verify_chain(read_evidence(imported.home / "lake")) == []

    run = imported.plan_run
    assert not run.success
    failures = [e for e in run.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    message = failures[0].event_specific_data.error.message
    assert "remediation planning refused" in message and "inventory_fresh" in message
    assert not (imported.home / "control.sqlite").exists(), "no task was created"


def test_asset_checks_are_declared_from_the_catalog(prepared_manifest):
    import dagster as dg

    from qlrf_pipelines.definitions import build_definitions

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    declared = {key.name: key for key in graph.asset_check_keys if key.name in CATALOG.checks}
    assert set(declared) == set(CATALOG.checks)
    for check_id, key in declared.items():
        assert key.asset_key == dg.AssetKey([CATALOG.checks[check_id].asset])
        assert graph.get(key).blocking == CATALOG.checks[check_id].blocking
    assert graph.get(declared["inventory_fresh"]).blocking
    assert {n for n in defs.resolve_job_def("evaluate_compliance_job").graph.node_names()} == {"compliance_checks"}
    refresh = defs.resolve_job_def("refresh_estate_job").graph.node_names()
    assert {"export_configuration", "evaluate_compliance"} <= set(refresh)
