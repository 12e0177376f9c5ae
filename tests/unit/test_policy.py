"""Plan validation from Python: each Rego rule allows and denies, schema failures, safety checks."""

from __future__ import annotations

import json
import re

import pytest

from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.plan import (
    Evidence,
    HealthCheck,
    Phase,
    Plan,
    Rollback,
    RollbackStep,
    TargetAsset,
    TaskSpec,
)
from qlrf_pipelines.policy import engine
from qlrf_pipelines.policy.engine import RULE_IDS, PolicyError, evaluate_policies, policy_version
from qlrf_pipelines.policy.safety import safety_checks
from qlrf_pipelines.policy.validate import validate_plan
from qlrf_pipelines.policy.verdicts import all_allowed

LIMITS = PlanningLimits(
    max_batch_size=4,
    max_wave_share_of_site=0.25,
    max_plan_share_of_fleet=0.5,
    canary_max_size=2,
    canary_share=0.1,
    wave_failure_tolerance=0.1,
    production_environments=("production",),
)
GOOD_ROLLBACK = Rollback(
    criteria=["any health check fails"],
    steps=[RollbackStep(action="restore_image", description="restore the previous image")],
)


def checks(tolerance: float) -> list[HealthCheck]:
    return [
        HealthCheck(kind="asset_running", description="running", max_failed_share=tolerance),
        HealthCheck(kind="image_matches_target", description="on target", max_failed_share=tolerance),
    ]


def make_plan(
    phases: list[tuple[str, int]],
    *,
    environment: str = "production",
    fleet_size: int = 40,
    rollback: Rollback = GOOD_ROLLBACK,
    tolerance: dict[str, float] | None = None,
    no_checks: bool = False,
    prefix: str = "a",
    to_image_ref: str | None = "ami-new",
) -> Plan:
    """A plan with phases given as (kind, size); assets a-0, a-1, ... in phase order."""
    tolerance = tolerance or {"canary": 0.0, "wave": 0.1}
    built, n, waves = [], 0, 0
    for kind, size in phases:
        ids = [f"{prefix}-{n + i}" for i in range(size)]
        n += size
        waves += kind == "wave"
        built.append(Phase(
            name="canary" if kind == "canary" else f"wave-{waves}", kind=kind, asset_ids=ids,
            health_checks=[] if no_checks else checks(tolerance[kind]),
        ))
    targets = [
        TargetAsset(asset_id=a, site_id="site-1", provider="aws", name=a, environment=environment,
                    from_image_ref="ami-old", from_image_id="fam@1.0", to_image_ref=to_image_ref,
                    to_image_id="fam@2.0")
        for p in built for a in p.asset_ids
    ]
    return Plan(
        task=TaskSpec(intent="test", agent="rule_based", risk="low", requested_by="test"),
        site_id="site-1", environment=environment, family="fam", to_image_id="fam@2.0",
        change=f"move {n} assets", fleet_size=fleet_size, targets=targets, phases=built, rollback=rollback,
        evidence=Evidence(drift_item_ids=["d1"], snapshot_key="k", snapshot_ids={"site-1": "s1"}, query="select 1"),
    )


GOOD = make_plan([("canary", 1), ("wave", 4), ("wave", 3)])

# rule -> (a plan it allows, a plan it denies)
CASES = {
    "production_needs_canary": (
        make_plan([("canary", 2), ("wave", 3)]),
        make_plan([("wave", 3)]),
    ),
    "batch_size_capped": (
        make_plan([("canary", 1), ("wave", 4)], fleet_size=100),
        make_plan([("canary", 1), ("wave", 5)], fleet_size=100),
    ),
    "wave_share_capped": (
        make_plan([("wave", 3), ("wave", 3)], environment="staging", fleet_size=12),
        make_plan([("wave", 4)], environment="staging", fleet_size=12),
    ),
    "fleet_share_capped": (
        make_plan([("canary", 1), ("wave", 2)], fleet_size=6),
        make_plan([("canary", 1), ("wave", 1), ("wave", 1), ("wave", 1)], fleet_size=6),
    ),
    "rollback_required": (
        make_plan([("canary", 1)]),
        make_plan([("canary", 1)], rollback=Rollback(criteria=["any health check fails"], steps=[])),
    ),
    "health_checks_required": (
        make_plan([("canary", 1)]),
        make_plan([("canary", 1)], no_checks=True),
    ),
    "failure_tolerance_capped": (
        make_plan([("canary", 1), ("wave", 2)]),
        make_plan([("canary", 1), ("wave", 2)], tolerance={"canary": 0.0, "wave": 0.5}),
    ),
}


def verdict_of(plan: Plan, rule: str):
    [verdict] = [v for v in evaluate_policies(plan, LIMITS) if v.rule == f"remediation.{rule}"]
    return verdict


def test_every_rule_has_a_case():
    assert set(CASES) == set(RULE_IDS)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_allows(rule):
    verdict = verdict_of(CASES[rule][0], rule)

    assert verdict.allowed, verdict.message
    assert verdict.stage == "policy" and verdict.message == "allowed"


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_denies(rule):
    verdict = verdict_of(CASES[rule][1], rule)

    assert not verdict.allowed
    assert verdict.message and verdict.message != "allowed"


def test_a_good_plan_gets_one_allowed_verdict_per_rule():
    verdicts = evaluate_policies(GOOD, LIMITS)

    assert [v.rule for v in verdicts] == [f"remediation.{r}" for r in RULE_IDS]
    assert all_allowed(verdicts)
    assert {v.policy_version for v in verdicts} == {policy_version(LIMITS)}


def test_staging_needs_no_canary():
    assert verdict_of(make_plan([("wave", 3)], environment="staging"), "production_needs_canary").allowed


def test_canary_larger_than_its_cap_is_denied():
    verdict = verdict_of(make_plan([("canary", 3), ("wave", 3)]), "production_needs_canary")

    assert not verdict.allowed and "canary_max_size 2" in verdict.message


def test_denial_messages_explain():
    verdict = verdict_of(make_plan([("canary", 1), ("wave", 5)], fleet_size=100), "batch_size_capped")

    assert verdict.message == "phase 'wave-1' has 5 assets, more than max_batch_size 4"


def test_policy_version_covers_policy_and_limits():
    bundled = policy_version()

    assert re.fullmatch(r"[0-9a-f]{12}", bundled)
    assert policy_version(PlanningLimits.load()) == bundled  # the bundled limits, however obtained
    assert policy_version(LIMITS) != bundled
    assert "remediation_test.rego" not in [p.name for p in engine.policy_files()]


def test_bundled_limits_are_used_by_default():
    big_batch = make_plan([("canary", 1), ("wave", 6)], fleet_size=100)

    assert not verdict_of(big_batch, "batch_size_capped").allowed  # test limits: batch 4
    [bundled] = [v for v in evaluate_policies(big_batch) if v.rule == "remediation.batch_size_capped"]
    assert bundled.allowed  # bundled limits: batch 10
    assert bundled.policy_version == policy_version()


def test_policy_evaluation_fails_closed(monkeypatch):
    def broken(*args, **kwargs):
        raise PolicyError("policy evaluation failed: boom")

    monkeypatch.setattr(engine, "rego_results", broken)

    verdicts = evaluate_policies(GOOD, LIMITS)

    assert len(verdicts) == len(RULE_IDS) and not any(v.allowed for v in verdicts)


def test_a_rule_missing_from_the_results_is_denied(monkeypatch):
    real = engine.rego_results

    def partial(*args, **kwargs):
        results = real(*args, **kwargs)
        results.pop("rollback_required")
        return results

    monkeypatch.setattr(engine, "rego_results", partial)

    assert not verdict_of(GOOD, "rollback_required").allowed


# -- validate_plan ------------------------------------------------------------------------------------

def test_validate_plan_runs_schema_policy_then_safety():
    plan, verdicts = validate_plan(GOOD.canonical_json(), limits=LIMITS)

    assert plan == GOOD
    assert [v.stage for v in verdicts][:1] == ["schema"]
    stages = [v.stage for v in verdicts]
    assert stages == sorted(stages, key=["schema", "policy", "safety"].index)
    assert all_allowed(verdicts)


@pytest.mark.parametrize(
    "malformed",
    [
        "{not json",
        json.dumps({"task": {"intent": "x"}}),
        json.dumps({**json.loads(GOOD.canonical_json()), "surprise": 1}),
        json.dumps({**json.loads(GOOD.canonical_json()), "targets": []}),  # phases name unknown targets
        {**json.loads(GOOD.canonical_json()), "fleet_size": -1},
        {**json.loads(GOOD.canonical_json()), "schema_version": 99},
    ],
)
def test_schema_failure_gives_one_schema_verdict(malformed):
    plan, verdicts = validate_plan(malformed)

    assert plan is None
    assert len(verdicts) == 1
    [verdict] = verdicts
    assert verdict.stage == "schema" and verdict.rule == "schema.plan" and not verdict.allowed
    assert verdict.message and verdict.policy_version == "builtin"


def test_validate_plan_accepts_a_dict():
    plan, verdicts = validate_plan(json.loads(GOOD.canonical_json()), limits=LIMITS)

    assert plan is not None and plan.plan_hash() == GOOD.plan_hash()
    assert all_allowed(verdicts)


# -- safety ----------------------------------------------------------------------------------------------

def safety_of(plan: Plan, rule: str, **kwargs):
    [verdict] = [v for v in safety_checks(plan, **kwargs) if v.rule == f"safety.{rule}"]
    return verdict


def test_safety_checks_pass_a_good_plan():
    verdicts = safety_checks(GOOD, {t.asset_id for t in GOOD.targets}, [GOOD])

    assert all_allowed(verdicts)
    assert {v.stage for v in verdicts} == {"safety"} and {v.policy_version for v in verdicts} == {"builtin"}
    assert {v.rule for v in verdicts} == {
        "safety.target_image_published", "safety.targets_match_plan", "safety.no_duplicate_assets",
        "safety.targets_known", "safety.target_differs_from_current",
    }


def test_safety_denies_an_unpublished_target_image():
    verdict = safety_of(make_plan([("canary", 1)], to_image_ref=None), "target_image_published")

    assert not verdict.allowed and "a-0" in verdict.message


def test_safety_denies_assets_in_two_plans():
    other = make_plan([("canary", 1), ("wave", 1)], environment="staging")  # a-0, a-1 again

    assert not safety_of(GOOD, "no_duplicate_assets", other_plans=[GOOD, other]).allowed
    disjoint = make_plan([("canary", 1)], prefix="b")
    assert safety_of(GOOD, "no_duplicate_assets", other_plans=[GOOD, disjoint]).allowed


def test_safety_denies_unknown_targets_only_when_known_assets_are_given():
    assert not safety_of(GOOD, "targets_known", known_asset_ids={"a-0"}).allowed
    assert all(v.rule != "safety.targets_known" for v in safety_checks(GOOD))


def test_safety_denies_a_move_to_the_current_image():
    data = json.loads(GOOD.canonical_json())
    data["targets"][0]["from_image_id"] = data["targets"][0]["to_image_id"]
    plan = Plan.model_validate(data)

    verdict = safety_of(plan, "target_differs_from_current")

    assert not verdict.allowed and "a-0" in verdict.message


def test_safety_denies_a_target_of_another_site():
    data = json.loads(GOOD.canonical_json())
    data["targets"][1]["site_id"] = "elsewhere"
    plan, verdicts = validate_plan(data, limits=LIMITS)

    assert plan is not None
    assert [v.rule for v in verdicts if not v.allowed] == ["safety.targets_match_plan"]
