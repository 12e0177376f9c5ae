"""The change tools on the sample estate: drafted plans equal the rule-based planner's, blast radius
matches direct SQL, a control evaluated now matches its known status, the runbook covers every
target, and nothing under QLRF_HOME (warehouse, control store, lake) changes.

Known facts of the sample: ubuntu-22.04-base is current at 1.3.0 (1.4.0 testing); aws-prod-use1 is
a production site; nist-800-53 CM-8 = inventory_fresh (pass) + assets_traced_to_golden_images
(fail); CP-4 is not assessed (no DR drills recorded); k8s-prod-eks has no ubuntu-22.04-base@1.3.0
image published, so its ubuntu plan is denied by safety.target_image_published.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from qlrf_pipelines.planning.inputs import PlanningInputs
from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.plan import Plan
from qlrf_pipelines.planning.queries import FIXABLE_DRIFT_TYPES, SITE_FLEET_SQL
from qlrf_pipelines.planning.rule_based import plan_from_inputs
from qlrf_pipelines.planning.tools import ToolContext, ToolError, call_tool
from qlrf_pipelines.planning.warehouse_inputs import load_planning_inputs
from qlrf_pipelines.policy.validate import validate_plan
from qlrf_pipelines.settings import Paths
from tests.conftest import sql

pytestmark = pytest.mark.integration

SITE, FAMILY = "aws-prod-use1", "ubuntu-22.04-base"


@pytest.fixture(scope="module")
def ctx(sample_runs) -> ToolContext:
    paths = Paths(sample_runs.home)
    return ToolContext(warehouse_path=paths.warehouse_path, lake_dir=paths.lake_dir)


@pytest.fixture(scope="module")
def drafted(ctx) -> dict:
    return call_tool(ctx, "generate_patch_plan", {"site_id": SITE, "family": FAMILY}).rows


def group_drift(inputs: PlanningInputs, site: str, family: str) -> PlanningInputs:
    return PlanningInputs(
        drift_items=[r for r in inputs.drift_items if r["site_id"] == site and r["family"] == family],
        artifacts=inputs.artifacts, fleet_sizes=inputs.fleet_sizes, snapshot_ids=inputs.snapshot_ids,
        asset_regions=inputs.asset_regions, invocations=inputs.invocations, drift_query=inputs.drift_query,
    )


def fixable_asset_ids(home: Path, site: str, family: str) -> set[str]:
    rows = sql(
        home,
        "SELECT DISTINCT asset_id FROM drift_items WHERE status = 'open' AND site_id = ? AND family = ? "
        "AND list_contains(?::VARCHAR[], drift_type) AND image_id IS DISTINCT FROM current_image_id "
        "AND asset_id IN (SELECT asset_id FROM assets WHERE state = 'running')",
        [site, family, list(FIXABLE_DRIFT_TYPES)],
    )
    return {r[0] for r in rows}


# -- generate_patch_plan -------------------------------------------------------------------------

def test_patch_plan_is_the_rule_based_planners(ctx, sample_runs, drafted):
    inputs = load_planning_inputs(ctx.warehouse_path)
    expected = plan_from_inputs(group_drift(inputs, SITE, FAMILY))
    # the same plans the plan job makes for this group from the whole estate
    whole = [p for p in plan_from_inputs(inputs) if p.site_id == SITE and p.family == FAMILY]
    assert [p.plan_hash() for p in whole] == [p.plan_hash() for p in expected]
    assert len(expected) == 1
    plan = expected[0]

    assert drafted["plan_count"] == 1 and drafted["all_allowed"] is True
    got = drafted["plans"][0]
    assert got["plan"] == plan.model_dump(mode="json")
    assert got["plan_hash"] == plan.plan_hash() == Plan.model_validate(got["plan"]).plan_hash()
    assert {t.asset_id for t in plan.targets} == fixable_asset_ids(sample_runs.home, SITE, FAMILY)
    assert got["targets"] == drafted["target_count"] == len(plan.targets) > 0
    assert (got["to_image_id"], got["environment"], got["risk"], got["change"]) == (
        "ubuntu-22.04-base@1.3.0", "production", plan.task.risk, plan.change)
    assert got["phases"] == [{"name": p.name, "kind": p.kind, "size": len(p.asset_ids)} for p in plan.phases]
    assert got["phases"][0]["kind"] == "canary" and sum(p["size"] for p in got["phases"]) == got["targets"]
    fleet = dict(sql(sample_runs.home, f"SELECT site_id, fleet_size FROM ({SITE_FLEET_SQL})"))
    assert got["fleet_size"] == fleet[SITE]

    known = {r["asset_id"] for r in inputs.drift_items}
    _, verdicts = validate_plan(plan, known_asset_ids=known)
    assert got["verdicts"] == [{"rule": v.rule, "allowed": v.allowed, "message": v.message} for v in verdicts]
    assert got["allowed"] and {"schema.plan", "remediation.fleet_share_capped", "safety.targets_known"} <= {
        v["rule"] for v in got["verdicts"]}

    # the 1.4.0 (testing) assets drift but are not moved back by the planner
    testing = {r[0] for r in sql(
        sample_runs.home,
        "SELECT DISTINCT asset_id FROM drift_items WHERE status = 'open' AND site_id = ? AND family = ? "
        "AND drift_type = 'image_testing_in_production'", [SITE, FAMILY])}
    unplanned = {u["asset_id"]: u for u in drafted["unplanned"]}
    assert testing and testing <= set(unplanned)
    assert all(unplanned[a]["image_id"] == "ubuntu-22.04-base@1.4.0" for a in testing)
    assert drafted["unknown_asset_ids"] == [] and drafted["planning_blocked_by"] == []


def test_patch_plan_reports_a_denied_plan(ctx):
    result = call_tool(ctx, "generate_patch_plan", {"site_id": "k8s-prod-eks", "family": FAMILY}).rows
    assert result["plan_count"] == 1 and result["all_allowed"] is False
    denied = [v for v in result["plans"][0]["verdicts"] if not v["allowed"]]
    assert [v["rule"] for v in denied] == ["safety.target_image_published"]


def test_patch_plan_by_asset_ids(ctx, sample_runs, drafted):
    targets = [t["asset_id"] for t in drafted["plans"][0]["plan"]["targets"]]
    current = sql(sample_runs.home, "SELECT asset_id FROM assets WHERE site_id = ? AND name = 'anchor-current-01'", [SITE])[0][0]
    result = call_tool(ctx, "generate_patch_plan", {"asset_ids": targets[:3] + [current, "aws:nowhere:i-0"]}).rows
    assert result["plan_count"] == 1
    assert sorted(t["asset_id"] for t in result["plans"][0]["plan"]["targets"]) == sorted(targets[:3])
    assert result["unknown_asset_ids"] == ["aws:nowhere:i-0"]
    assert [u["asset_id"] for u in result["unplanned"]] == [current]


def test_patch_plan_unknown_filters(ctx):
    with pytest.raises(ToolError, match=r"unknown site_id 'nowhere'; known sites: .*aws-prod-use1"):
        call_tool(ctx, "generate_patch_plan", {"site_id": "nowhere"})
    with pytest.raises(ToolError, match=r"unknown family 'nope'; known families: .*ubuntu-22.04-base"):
        call_tool(ctx, "generate_patch_plan", {"family": "nope"})
    assert call_tool(ctx, "generate_patch_plan", {"site_id": SITE, "environment": "staging"}).rows["plan_count"] == 0


# -- generate_rollback_plan -----------------------------------------------------------------------

def test_rollback_of_a_plan_is_latest_phase_first(ctx, sample_runs, drafted):
    plan = Plan.model_validate(drafted["plans"][0]["plan"])
    entries = call_tool(ctx, "generate_rollback_plan", {"plan": drafted["plans"][0]["plan"]}).rows
    assert [(e["phase"], e["asset_id"]) for e in entries] == [
        (p.name, a) for p in reversed(plan.phases) for a in p.asset_ids]
    assert entries[-1]["phase"] == "canary" and [e["order"] for e in entries] == list(range(1, len(entries) + 1))
    now = {r[0]: (r[1], r[2]) for r in sql(
        sample_runs.home, "SELECT asset_id, image_ref, image_id FROM assets WHERE site_id = ?", [SITE])}
    for entry in entries:
        target = plan.target(entry["asset_id"])
        assert (entry["current_image_ref"], entry["current_image_id"]) == now[entry["asset_id"]]
        assert (entry["restore_image_ref"], entry["restore_image_id"]) == (target.from_image_ref, target.from_image_id)
        # nothing ran: every asset still runs the image it ran when planned
        assert entry["status"] == "not_changed" and entry["plan_hash"] == plan.plan_hash()


def test_rollback_by_asset_ids_uses_the_history(ctx, sample_runs, drafted):
    asset_id = drafted["plans"][0]["plan"]["targets"][0]["asset_id"]
    entries = call_tool(ctx, "generate_rollback_plan", {"asset_ids": [asset_id, "aws:nowhere:i-0"]}).rows
    first, ghost = entries
    refs = sql(sample_runs.home, "SELECT DISTINCT image_ref FROM image_deployments WHERE asset_id = ?", [asset_id])
    # two refreshes of the same sample: one image in the whole history, so no earlier one to restore
    assert len(refs) == 1 and first["current_image_ref"] == refs[0][0]
    assert first["status"] == "no_earlier_image" and first["restore_image_ref"] is None
    assert ghost == {"order": 2, "phase": None, "asset_id": "aws:nowhere:i-0", "known": False, "status": "unknown",
                     "note": ghost["note"]}


# -- estimate_blast_radius -------------------------------------------------------------------------

def test_blast_radius_matches_sql(ctx, sample_runs):
    home = sample_runs.home
    result = call_tool(ctx, "estimate_blast_radius", {"site_id": SITE, "family": FAMILY}).rows
    where = "WHERE site_id = ? AND image_family = ?"
    params = [SITE, FAMILY]
    assert result["selected_assets"] == sql(home, f"SELECT count(*) FROM assets {where}", params)[0][0]
    for column in ("environment", "provider", "kind"):
        expected = dict(sql(home, f"SELECT {column}, count(*) FROM assets {where} GROUP BY {column}", params))
        assert result[f"by_{column}"] == expected, column
    in_scope = sql(home, f"SELECT count(*) FROM assets {where} AND kind IN ('vm', 'node', 'workload') "
                         "AND coalesce(state, '') <> 'terminated'", params)[0][0]
    fleet = dict(sql(home, f"SELECT site_id, fleet_size FROM ({SITE_FLEET_SQL})"))[SITE]
    limits = PlanningLimits.load()
    site = result["by_site"][0]
    assert len(result["by_site"]) == 1 and site["site_id"] == SITE
    assert (site["in_scope_assets"], site["fleet_size"]) == (in_scope, fleet)
    assert site["share_of_fleet"] == round(in_scope / fleet, 4)
    assert site["plan_cap"] == limits.plan_cap(fleet) and site["exceeds_plan_cap"] == (in_scope > limits.plan_cap(fleet))
    assert result["production_share"] == 1.0 and result["production_assets"] == result["selected_assets"]

    # the whole site is more than one plan may touch: split (or one plan denied)
    whole = call_tool(ctx, "estimate_blast_radius", {"site_id": SITE}).rows
    assert whole["exceeds_policy_caps"] is True and whole["by_site"][0]["plans_needed"] >= 2
    # several sites, by asset id, with an unknown one
    ids = [r[0] for r in sql(home, "SELECT min(asset_id) FROM assets WHERE kind = 'vm' GROUP BY site_id ORDER BY 1")]
    by_ids = call_tool(ctx, "estimate_blast_radius", {"asset_ids": ids + ["aws:nowhere:i-0"]}).rows
    assert by_ids["selected_assets"] == len(ids) and by_ids["unknown_asset_ids"] == ["aws:nowhere:i-0"]
    production = sql(home, "SELECT count(*) FROM assets WHERE list_contains(?::VARCHAR[], asset_id) "
                           "AND environment IN ('production', 'prod')", [ids])[0][0]
    assert by_ids["production_assets"] == production
    assert by_ids["production_share"] == round(production / len(ids), 4)
    assert by_ids["exceeds_policy_caps"] is False


# -- check_control -----------------------------------------------------------------------------------

def test_check_control_matches_the_known_status(ctx, sample_runs):
    result = call_tool(ctx, "check_control", {"framework": "nist-800-53", "control": "CM-8"}).rows
    checks = {c["check_id"]: c for c in result["checks"]}
    assert list(checks) == ["inventory_fresh", "assets_traced_to_golden_images"]
    assert (checks["inventory_fresh"]["status"], checks["inventory_fresh"]["checked_count"]) == ("pass", 7)
    traced = checks["assets_traced_to_golden_images"]
    assert traced["status"] == "fail" and result["status"] == "fail"
    recorded = sql(sample_runs.home, "SELECT checked_count, failing_count, failing_asset_ids FROM v_compliance_status "
                                     "WHERE control_id = 'CM-8' AND check_id = 'assets_traced_to_golden_images'")
    assert (traced["checked_count"], traced["failing_count"]) == recorded[0][:2]
    assert traced["failing_asset_ids"] == sorted(recorded[0][2])[:20]
    # the sample's anchor asset on an unknown image is one of them
    unknown = sql(sample_runs.home, "SELECT asset_id FROM assets WHERE site_id = ? AND name = 'anchor-unknown-01'", [SITE])
    assert unknown[0][0] in recorded[0][2]

    cp4 = call_tool(ctx, "check_control", {"framework": "nist-800-53", "control": "CP-4"}).rows
    assert cp4["status"] == "not_assessed" and "dr_drills" in cp4["checks"][0]["error"]
    with pytest.raises(ToolError, match=r"unknown control 'CM-99'.*known controls: .*CM-8"):
        call_tool(ctx, "check_control", {"framework": "nist-800-53", "control": "CM-99"})


# -- generate_sop ----------------------------------------------------------------------------------

def test_sop_covers_every_target_and_the_canary(ctx, drafted):
    plan = drafted["plans"][0]["plan"]
    result = call_tool(ctx, "generate_sop", {"site_id": SITE, "family": FAMILY}).rows
    md = result["markdown"]
    assert result["plan_hash"] == drafted["plans"][0]["plan_hash"] and result["all_allowed"] is True
    assert result["title"].startswith("SOP: Move") and md.startswith("# " + result["title"])
    for target in plan["targets"]:
        assert target["asset_id"] in md and target["name"] in md
    assert "phase `canary` (canary," in md and md.index("phase `canary`") < md.index("phase `wave-1`")
    for command in ("qlrf tasks show", "qlrf tasks approve", "approval_sensor", "execute_remediation_job"):
        assert command in md
    # from the plan JSON: the same runbook
    again = call_tool(ctx, "generate_sop", {"plan": plan}).rows
    assert again["markdown"] == md and again["plan_hash"] == result["plan_hash"]
    with pytest.raises(ToolError, match="no fixable image drift"):
        call_tool(ctx, "generate_sop", {"site_id": SITE, "environment": "staging"})


# -- nothing is written ----------------------------------------------------------------------------

def fingerprint(home: Path) -> dict[str, tuple]:
    """Every file under QLRF_HOME except Dagster's own: size, mtime and (small files) content hash."""
    out = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and "dagster" not in path.relative_to(home).parts[:1]:
            stat = path.stat()
            out[str(path.relative_to(home))] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def test_the_tools_write_nothing(ctx, sample_runs, drafted):
    home = sample_runs.home
    paths = Paths(home)
    assert paths.warehouse_path.exists()
    before = fingerprint(home)
    plan = drafted["plans"][0]["plan"]
    call_tool(ctx, "generate_patch_plan", {"site_id": SITE})
    call_tool(ctx, "generate_rollback_plan", {"plan": plan})
    call_tool(ctx, "estimate_blast_radius", {"site_id": SITE})
    call_tool(ctx, "check_control", {"framework": "soc2", "control": "CC6.6"})
    call_tool(ctx, "generate_sop", {"plan": plan})
    after = fingerprint(home)
    assert after == before
    assert str(paths.warehouse_path.relative_to(home)) in after
    # the control store: unchanged if the refresh created it, and not created by the tools if not
    control = str(paths.control_store_path.relative_to(home))
    assert (control in after) == (control in before) == paths.control_store_path.exists()
