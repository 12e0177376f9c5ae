"""The change tools' pure logic on hand-made plans and rows: blast-radius arithmetic, rollback
ordering and restore decisions, the runbook (SOP) rendering, and argument errors raised before
any warehouse read."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.plan import Plan
from qlrf_pipelines.planning.rule_based import plan_remediations
from qlrf_pipelines.planning.sop import phase_order, render_sop, sop_title, verdict_dicts
from qlrf_pipelines.planning.tools import REGISTRY, ToolContext, ToolError, call_tool
from qlrf_pipelines.planning.tools.change_tools import (
    blast_radius,
    in_scope,
    plan_summary,
    planner_fleet_sizes,
    previous_image,
    rollback_entry,
    rollback_order,
)
from qlrf_pipelines.policy.verdicts import Verdict

LIMITS = PlanningLimits(
    max_batch_size=10, max_wave_share_of_site=0.25, max_plan_share_of_fleet=0.5, canary_max_size=2,
    canary_share=0.1, wave_failure_tolerance=0.1, production_environments=("production",),
)
SNAPSHOTS = {"aws-prod": "20260101T000000Z", "aws-stg": "20260101T000001Z"}
ENVIRONMENTS = {"aws-prod": "production", "aws-stg": "staging"}


def drift_row(site: str, n: int, version: str = "1.2.0", severity: str = "high") -> dict:
    return {
        "drift_id": f"d-{site}-{n:03d}", "snapshot_id": SNAPSHOTS[site], "site_id": site, "provider": "aws",
        "environment": ENVIRONMENTS[site], "asset_id": f"aws:{site}:vm-{n:03d}", "asset_name": f"{site}-vm-{n:03d}",
        "kind": "vm", "drift_type": "image_outdated", "severity": severity,
        "image_ref": f"ami-{version}", "image_id": f"ubuntu-22.04-base@{version}", "family": "ubuntu-22.04-base",
        "asset_version": version, "current_version": "1.3.0", "current_image_id": "ubuntu-22.04-base@1.3.0",
    }


def make_plans(rows: list[dict], fleet: int = 100, published: bool = True) -> list[Plan]:
    artifacts = [
        {"provider_image_id": "ami-1.3.0", "site_id": site, "provider": "aws", "region": None,
         "image_id": "ubuntu-22.04-base@1.3.0"}
        for site in SNAPSHOTS
    ] if published else []
    return plan_remediations(
        rows, artifacts, {"aws-prod": fleet, "aws-stg": fleet}, SNAPSHOTS, snapshot_key="k" * 64, limits=LIMITS,
    )


@pytest.fixture
def prod_plan() -> Plan:
    # 24 assets of a fleet of 100: canary of 2, then waves of 10 and 10 (wave cap min(10, 25)) and 2.
    plans = make_plans([drift_row("aws-prod", n) for n in range(1, 25)])
    assert len(plans) == 1
    return plans[0]


# -- blast radius ----------------------------------------------------------------------------------

def asset(site: str, n: int, *, env: str = "production", kind: str = "vm", state: str = "running",
          provider: str = "aws") -> dict:
    return {"asset_id": f"{site}-{n}", "site_id": site, "environment": env, "kind": kind, "state": state,
            "provider": provider}


def test_in_scope_matches_the_fleet_query():
    assert in_scope(asset("s", 1)) and in_scope(asset("s", 2, kind="node")) and in_scope(asset("s", 3, kind="workload"))
    assert in_scope(asset("s", 4, state="stopped")) and in_scope({"kind": "vm", "state": None})
    assert not in_scope(asset("s", 5, kind="container")) and not in_scope(asset("s", 6, state="terminated"))


def test_planner_fleet_is_never_smaller_than_the_drifting_assets():
    assert planner_fleet_sizes({"a": 10, "b": 3}, {"b": 5, "c": 2}) == {"a": 10, "b": 5, "c": 2}


def test_blast_radius_counts_shares_and_caps():
    selection = (
        [asset("prod", n) for n in range(6)]                       # 6 of a fleet of 10: cap 5 -> exceeds, 2 plans
        + [asset("prod", 90, kind="container")]                    # outside the fleet
        + [asset("stg", n, env="staging", provider="gcp", kind="node") for n in range(3)]  # 3 of 40: cap 20
    )
    result = blast_radius(selection, {"prod": 10, "stg": 40}, LIMITS, ["ghost-1"])
    assert result["selected_assets"] == 10 and result["in_scope_assets"] == 9
    assert result["production_assets"] == 7 and result["production_share"] == 0.7
    assert result["by_environment"] == {"production": 7, "staging": 3}
    assert result["by_provider"] == {"aws": 7, "gcp": 3}
    assert result["by_kind"] == {"vm": 6, "node": 3, "container": 1}
    prod, stg = result["by_site"]
    assert prod == {
        "site_id": "prod", "environment": "production", "assets": 7, "in_scope_assets": 6, "fleet_size": 10,
        "share_of_fleet": 0.6, "plan_cap": 5, "exceeds_plan_cap": True, "plans_needed": 2, "phase_cap": 2,
        "production": True,
    }
    assert stg["share_of_fleet"] == 0.075 and stg["plan_cap"] == 20 and not stg["exceeds_plan_cap"]
    assert stg["plans_needed"] == 1 and stg["phase_cap"] == 10 and not stg["production"]
    assert result["exceeds_policy_caps"] is True
    assert result["unknown_asset_ids"] == ["ghost-1"]
    assert any("fleet_share_capped" in n and "2 plans" in n for n in result["notes"])
    assert any("1 selected asset(s) are outside the fleet" in n for n in result["notes"])


def test_blast_radius_within_caps_and_empty():
    result = blast_radius([asset("prod", 1)], {"prod": 10}, LIMITS)
    assert not result["exceeds_policy_caps"] and result["notes"] == []
    empty = blast_radius([], {}, LIMITS, ["x"])
    assert empty["selected_assets"] == 0 and empty["production_share"] == 0.0 and empty["by_site"] == []
    assert empty["unknown_asset_ids"] == ["x"]
    # a site the fleet query does not know: no share, cap of 1
    unknown_site = blast_radius([asset("new", 1), asset("new", 2)], {}, LIMITS)["by_site"][0]
    assert unknown_site["share_of_fleet"] is None and unknown_site["plan_cap"] == 1 and unknown_site["exceeds_plan_cap"]


# -- rollback ----------------------------------------------------------------------------------------

def test_rollback_order_is_latest_phase_first(prod_plan):
    names = [p.name for p in prod_plan.phases]
    assert names == ["canary", "wave-1", "wave-2", "wave-3"]
    order = rollback_order(prod_plan)
    assert [phase for phase, _ in order] == ["wave-3"] * 2 + ["wave-2"] * 10 + ["wave-1"] * 10 + ["canary"] * 2
    assert [a for _, a in order] == [a for p in reversed(prod_plan.phases) for a in p.asset_ids]


def test_rollback_order_with_asset_ids(prod_plan):
    canary, last = prod_plan.phases[0].asset_ids[0], prod_plan.phases[-1].asset_ids[0]
    order = rollback_order(prod_plan, [canary, "other-1", last, canary])
    assert order == [("wave-3", last), ("canary", canary), (None, "other-1")]
    assert rollback_order(None, ["b", "a", "b"]) == [(None, "b"), (None, "a")]


def test_previous_image_is_the_latest_different_one():
    history = [
        {"snapshot_id": "3", "image_ref": "ami-a", "image_id": "f@1"},
        {"snapshot_id": "1", "image_ref": "ami-a", "image_id": "f@1"},
        {"snapshot_id": "2", "image_ref": "ami-b", "image_id": "f@2"},
        {"snapshot_id": "4", "image_ref": "ami-c", "image_id": "f@3"},
    ]
    assert previous_image(history, "ami-c")["image_ref"] == "ami-a"
    assert previous_image(history, "ami-c")["snapshot_id"] == "3"
    assert previous_image([{"snapshot_id": "1", "image_ref": "ami-c"}], "ami-c") is None
    assert previous_image([], "ami-c") is None


def test_rollback_entry_from_a_plan(prod_plan):
    target = prod_plan.targets[0]
    now = {"name": target.name, "site_id": "aws-prod", "environment": "production", "state": "running"}
    old = {"image_ref": "ami-1.2.0", "image_id": "ubuntu-22.04-base@1.2.0"}
    new = {"image_ref": "ami-1.3.0", "image_id": "ubuntu-22.04-base@1.3.0"}
    before = rollback_entry(1, "canary", target.asset_id, now | old, prod_plan)
    assert before["status"] == "not_changed" and before["restore_image_ref"] == "ami-1.2.0"
    assert before["restore_source"] == "plan"
    after = rollback_entry(1, "canary", target.asset_id, now | new, prod_plan)
    assert after["status"] == "restore" and after["restore_image_id"] == "ubuntu-22.04-base@1.2.0"
    assert after["current_image_ref"] == "ami-1.3.0"
    other = rollback_entry(1, "canary", target.asset_id, now | {"image_ref": "ami-x", "image_id": None}, prod_plan)
    assert other["status"] == "diverged"


def test_rollback_entry_from_history_and_unknown():
    now = {"name": "vm", "site_id": "s", "environment": "production", "state": "running",
           "image_ref": "ami-new", "image_id": "f@2"}
    history = [{"snapshot_id": "1", "image_ref": "ami-old", "image_id": "f@1"},
               {"snapshot_id": "2", "image_ref": "ami-new", "image_id": "f@2"}]
    entry = rollback_entry(3, None, "a-1", now, None, history)
    assert entry["status"] == "restore" and entry["restore_source"] == "history"
    assert (entry["restore_image_ref"], entry["restore_image_id"], entry["restore_seen_in_snapshot"]) == ("ami-old", "f@1", "1")
    assert rollback_entry(1, None, "a-1", now, None, history[1:])["status"] == "no_earlier_image"
    unknown = rollback_entry(2, None, "ghost", None, None)
    assert unknown["status"] == "unknown" and unknown["known"] is False and "restore_image_ref" not in unknown


# -- plan summary ----------------------------------------------------------------------------------

def test_plan_summary(prod_plan):
    verdicts = [Verdict("schema", "schema.plan", True, "ok", "builtin"),
                Verdict("policy", "remediation.x", False, "too big", "v1")]
    summary = plan_summary(prod_plan, verdicts)
    assert summary["plan_hash"] == prod_plan.plan_hash() and summary["targets"] == 24
    assert summary["phases"] == [{"name": "canary", "kind": "canary", "size": 2},
                                 {"name": "wave-1", "kind": "wave", "size": 10},
                                 {"name": "wave-2", "kind": "wave", "size": 10},
                                 {"name": "wave-3", "kind": "wave", "size": 2}]
    assert summary["allowed"] is False
    assert summary["verdicts"][1] == {"rule": "remediation.x", "allowed": False, "message": "too big"}
    assert Plan.model_validate(summary["plan"]).plan_hash() == prod_plan.plan_hash()


# -- the runbook ---------------------------------------------------------------------------------------

def test_sop_has_every_section_target_and_command(prod_plan):
    title, md = render_sop([prod_plan], [[Verdict("schema", "schema.plan", True, "ok", "builtin")]], limits=LIMITS)
    assert title == f"SOP: {prod_plan.task.intent}" and md.startswith(f"# {title}\n")
    sections = ["## 1. Purpose", "## 2. Scope", "## 3. Prerequisites", "## 4. Pre-checks", "## 5. Procedure",
                "## 6. Rollback", "## 7. Communication", "## 8. Evidence to keep"]
    positions = [md.index(s) for s in sections]
    assert positions == sorted(positions)
    for target in prod_plan.targets:
        assert f"| {target.asset_id} | {target.name} |" in md  # scope table
        assert md.count(target.asset_id) >= 3  # scope, restore table, blast-radius command
    # canary first, then the waves in order, each with its health checks
    steps = [md.index(f"phase `{p.name}`") for p in prod_plan.phases]
    assert steps == sorted(steps) and md.index("### Step 1:") < steps[0]
    assert "phase `canary` (canary, 2 asset(s))" in md
    assert md.count("`asset_running`") == 4 and md.count("`image_matches_target`") == 4
    assert "no failure tolerated" in md and "at most 10% of the phase may fail (1 of 10 asset(s))" in md
    for command in ("qlrf tasks show <task-id>", "qlrf tasks approve <task-id> --user <approver> --reason",
                    "qlrf tasks list --status pending_approval", "qlrf tick --sensor approval_sensor",
                    "execute_remediation_job", "qlrf audit list --task <task-id>"):
        assert command in md, command
    assert prod_plan.plan_hash() in md and "APPROVE_AI_TASKS" in md and "EBS snapshot" in md
    assert "passes every validation rule" in md
    # the restore table lists the latest phase first
    restore = md[md.index("Restore table"):]
    assert restore.index(prod_plan.phases[-1].asset_ids[0]) < restore.index(prod_plan.phases[0].asset_ids[0])


def test_sop_names_blockers():
    plan = make_plans([drift_row("aws-prod", 1)], published=False)[0]
    denied = Verdict("safety", "safety.target_image_published", False, "1 target(s) have no image", "builtin")
    _, md = render_sop([plan], [[denied]], limits=LIMITS)
    assert "**Blocker**: The plan is denied by validation" in md
    assert "`safety.target_image_published`: 1 target(s) have no image" in md
    assert "NOT PUBLISHED" in md and "is not published at the site of 1 target(s)" in md


def test_sop_of_several_plans_and_staging():
    plans = make_plans([drift_row("aws-prod", 1), drift_row("aws-stg", 2, severity="low")])
    assert [p.site_id for p in plans] == ["aws-prod", "aws-stg"]
    title, md = render_sop(plans, None, limits=LIMITS)
    assert title == sop_title(plans) and "(2 plans)" in title
    assert "Plan 1:" in md and "Plan 2:" in md and "### Step 1: Plan 1, approve" in md
    assert "no canary (not production)" in md
    assert "passes every validation rule" not in md  # not validated: nothing claimed
    for plan in plans:
        assert plan.plan_hash() in md and plan.targets[0].asset_id in md


def test_sop_helpers(prod_plan):
    with pytest.raises(ValueError):
        render_sop([], limits=LIMITS)
    with pytest.raises(ValueError):
        render_sop([prod_plan], [None, None], limits=LIMITS)
    assert [p.name for p in phase_order(prod_plan)] == [p.name for p in prod_plan.phases]
    v = Verdict("schema", "schema.plan", True, "ok", "builtin")
    assert verdict_dicts([v, v.to_dict()]) == [{"stage": "schema", "rule": "schema.plan", "allowed": True, "message": "ok"}] * 2
    # deterministic
    assert render_sop([prod_plan], limits=LIMITS) == render_sop([prod_plan], limits=LIMITS)


# -- registration and argument errors (no warehouse needed) ------------------------------------------

CHANGE_TOOLS = {
    "generate_patch_plan": ("propose", {"patch", "drift", "security", "image"}),
    "generate_rollback_plan": ("propose", {"patch", "incident", "image"}),
    "estimate_blast_radius": ("read", {"patch", "drift", "incident", "security", "dr"}),
    "check_control": ("read", {"compliance", "security"}),
    "generate_sop": ("propose", {"patch", "drift", "dr", "incident", "compliance"}),
}


def test_the_change_tools_are_registered():
    for name, (effect, agents) in CHANGE_TOOLS.items():
        tool = REGISTRY[name]
        assert tool.effect == effect and set(tool.agents) == agents, name
        assert tool.description.strip().endswith("."), name
        schema = tool.input_schema()
        assert schema.get("additionalProperties") is False, name
        for field_name, prop in schema["properties"].items():
            assert prop.get("description"), f"{name}.{field_name}"
    assert set(REGISTRY["check_control"].input_schema()["required"]) == {"framework", "control"}


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(warehouse_path=tmp_path / "missing.duckdb", lake_dir=tmp_path / "lake")


@pytest.mark.parametrize("name, arguments, message", [
    ("generate_rollback_plan", {}, "give asset_ids or a plan"),
    ("generate_rollback_plan", {"plan": {"site_id": "x"}}, "plan: not a valid plan"),
    ("estimate_blast_radius", {}, "give asset_ids, or at least one of"),
    ("generate_sop", {}, "give a plan, or filters"),
    ("generate_sop", {"plan": {}, "site_id": "aws-prod-use1"}, "either a plan or filters"),
    ("generate_sop", {"plan": {"phases": []}}, "plan: not a valid plan"),
    ("generate_patch_plan", {"asset_ids": []}, "asset_ids"),
    ("generate_patch_plan", {"site": "aws-prod-use1"}, "site"),
    ("check_control", {"framework": "soc2"}, "control"),
])
def test_argument_errors_before_any_read(ctx, name, arguments, message):
    with pytest.raises(ToolError, match=message):
        call_tool(ctx, name, arguments)


def test_unknown_control_lists_the_frameworks_controls(ctx):
    with pytest.raises(ToolError, match=r"unknown control 'XX-1' of framework 'nist-800-53'; known controls: .*CM-8"):
        call_tool(ctx, "check_control", {"framework": "nist-800-53", "control": "XX-1"})
    with pytest.raises(ToolError, match=r"unknown framework 'nope'; known frameworks: cis-qlrf, nist-800-53, soc2"):
        call_tool(ctx, "check_control", {"framework": "nope", "control": "CM-8"})


def test_a_large_plan_gives_a_readable_runbook_and_summary():
    # 400 of a fleet of 1,000: drift_row numbers assets with three digits, so 400 distinct ones
    (plan,) = make_plans([drift_row("aws-prod", n) for n in range(400)], fleet=1000)
    assert len(plan.targets) == 400 and len(plan.phases) > 20
    _, markdown = render_sop([plan])
    assert "300 more targets not listed here" in markdown and "300 more assets not listed here" in markdown
    assert "aws:aws-prod:vm-399" not in markdown.split("## 3.")[0]  # the scope table stops at 100 rows
    assert '{"site_id": "aws-prod", "family": "ubuntu-22.04-base"}' in markdown  # not 400 ids on a command line
    summary = plan_summary(plan, [])
    assert summary["phase_count"] == len(plan.phases) and len(summary["phases"]) == 21
    assert summary["phases"][-1] == f"{len(plan.phases) - 20} more phases"
