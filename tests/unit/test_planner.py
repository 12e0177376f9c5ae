"""The rule-based planner on hand-made drift rows (Arrange / Act / Assert), and its limits."""

from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import pytest

from qlrf_pipelines.planning.inputs import snapshot_key_of
from qlrf_pipelines.planning.limits import LIMITS_FILE, PlanningLimits, share_cap
from qlrf_pipelines.planning.queries import DRIFT_ITEMS_SQL, TOOLS
from qlrf_pipelines.planning.rule_based import plan_from_inputs, plan_remediations, resolve_target_image, split_evenly
from qlrf_pipelines.planning.warehouse_inputs import load_planning_inputs
from qlrf_pipelines.policy.validate import validate_plan
from qlrf_pipelines.policy.verdicts import all_allowed

LIMITS = PlanningLimits(
    max_batch_size=10,
    max_wave_share_of_site=0.25,
    max_plan_share_of_fleet=0.5,
    canary_max_size=2,
    canary_share=0.1,
    wave_failure_tolerance=0.1,
    production_environments=("production",),
)
SNAPSHOTS = {"aws-prod": "20260101T000000Z", "aws-stg": "20260101T000001Z", "gcp-prod": "20260101T000002Z"}
ENVIRONMENTS = {"aws-prod": "production", "aws-stg": "staging", "gcp-prod": "production"}
PROVIDERS = {"aws-prod": "aws", "aws-stg": "aws", "gcp-prod": "gcp"}
CURRENT = {"ubuntu-22.04-base": "1.3.0", "rhel-9-base": "9.4.0"}


def drift_row(site: str, n: int, *, family: str = "ubuntu-22.04-base", version: str = "1.2.0",
              drift_type: str = "image_outdated", severity: str = "medium", name: str | None = None) -> dict:
    asset_id = f"{PROVIDERS[site]}:{site}:vm-{n:03d}"
    current = CURRENT.get(family, "9.9.9")
    return {
        "drift_id": f"d-{site}-{n:03d}",
        "snapshot_id": SNAPSHOTS[site],
        "site_id": site,
        "provider": PROVIDERS[site],
        "environment": ENVIRONMENTS[site],
        "asset_id": asset_id,
        "asset_name": name or f"{site}-vm-{n:03d}",
        "kind": "vm",
        "drift_type": drift_type,
        "severity": severity,
        "image_ref": f"img-{site}-{family}-{version}",
        "image_id": f"{family}@{version}",
        "family": family,
        "asset_version": version,
        "current_version": current,
        "current_image_id": f"{family}@{current}",
        "versions_behind": 1,
        "days_behind": 30,
    }


def artifact(site: str, image_id: str, *, region: str | None = "r1", ref: str | None = None) -> dict:
    return {
        "provider_image_id": ref or f"img-{site}-{image_id.replace('@', '-')}-{region or 'global'}",
        "site_id": site,
        "provider": PROVIDERS[site],
        "region": region,
        "image_id": image_id,
    }


ALL_ARTIFACTS = [artifact(site, f"{family}@{version}", region=None)
                 for site in SNAPSHOTS for family, version in CURRENT.items()]


def make_plans(rows, *, artifacts=None, fleet=None, limits=LIMITS, regions=None):
    return plan_remediations(
        rows,
        ALL_ARTIFACTS if artifacts is None else artifacts,
        fleet or {"aws-prod": 100, "aws-stg": 100, "gcp-prod": 100},
        SNAPSHOTS,
        snapshot_key="key-1",
        requested_by="sensor:drift_sensor",
        limits=limits,
        asset_regions=regions,
    )


# -- selection and grouping -------------------------------------------------------------------------

def test_groups_by_site_family_and_environment():
    rows = (
        [drift_row("aws-prod", i) for i in range(3)]
        + [drift_row("aws-prod", 10 + i, family="rhel-9-base", version="9.2.1",
                     drift_type="image_revoked", severity="critical") for i in range(2)]
        + [drift_row("aws-stg", i, version="1.0.0", drift_type="image_deprecated", severity="high") for i in range(2)]
        + [drift_row("gcp-prod", i) for i in range(4)]
    )

    plans = make_plans(rows)

    groups = {(p.site_id, p.family, p.environment): p for p in plans}
    assert set(groups) == {
        ("aws-prod", "rhel-9-base", "production"),
        ("aws-prod", "ubuntu-22.04-base", "production"),
        ("aws-stg", "ubuntu-22.04-base", "staging"),
        ("gcp-prod", "ubuntu-22.04-base", "production"),
    }
    assert groups[("aws-prod", "ubuntu-22.04-base", "production")].to_image_id == "ubuntu-22.04-base@1.3.0"
    assert groups[("aws-prod", "rhel-9-base", "production")].to_image_id == "rhel-9-base@9.4.0"
    assert len(groups[("gcp-prod", "ubuntu-22.04-base", "production")].targets) == 4
    assert [(p.site_id, p.family) for p in plans] == sorted((p.site_id, p.family) for p in plans)


def test_skips_drift_a_move_to_the_current_image_cannot_fix():
    unknown = drift_row("aws-prod", 1, drift_type="image_unknown", severity="high")
    unknown.update(image_id=None, family=None, asset_version=None, current_version=None, current_image_id=None)
    testing = drift_row("aws-prod", 2, version="1.4.0", drift_type="image_testing_in_production")
    no_current = drift_row("aws-prod", 3)
    no_current["current_image_id"] = None

    assert make_plans([unknown, testing, no_current]) == []


def test_one_target_per_asset_keeps_the_worst_drift():
    medium = drift_row("aws-prod", 1, severity="medium")
    critical = dict(medium, drift_id="d-other", drift_type="image_revoked", severity="critical")

    [plan] = make_plans([medium, critical])

    assert len(plan.targets) == 1
    assert plan.evidence.drift_item_ids == ["d-other"]
    assert plan.task.risk == "high"


# -- phases -------------------------------------------------------------------------------------------

def test_production_starts_with_a_canary():
    [plan] = make_plans([drift_row("aws-prod", i) for i in range(9)])

    assert plan.phases[0].kind == "canary" and plan.phases[0].name == "canary"
    assert len(plan.phases[0].asset_ids) == 1
    assert all(p.kind == "wave" for p in plan.phases[1:])
    assert [p.name for p in plan.phases[1:]] == ["wave-1"]
    assert plan.phases[0].asset_ids == [plan.targets[0].asset_id]  # assets in name order


def test_canary_grows_with_the_plan_up_to_its_cap():
    [plan] = make_plans([drift_row("aws-prod", i) for i in range(25)])

    assert len(plan.phases[0].asset_ids) == 2  # 10% of 25, at most canary_max_size 2


def test_staging_has_waves_only():
    [plan] = make_plans([drift_row("aws-stg", i) for i in range(12)])

    assert [p.kind for p in plan.phases] == ["wave", "wave"]
    assert [len(p.asset_ids) for p in plan.phases] == [10, 2]


def test_phases_respect_batch_size_and_wave_share():
    rows = [drift_row("aws-prod", i) for i in range(30)]

    [by_batch] = make_plans(rows, fleet={"aws-prod": 100})
    [by_share] = make_plans(rows, fleet={"aws-prod": 60})

    assert max(len(p.asset_ids) for p in by_batch.phases) == 10  # max_batch_size
    assert max(len(p.asset_ids) for p in by_share.phases) == 10  # share cap 15, batch 10 still wins
    [small_fleet] = make_plans(rows[:9], fleet={"aws-prod": 20})
    assert max(len(p.asset_ids) for p in small_fleet.phases) == 5  # 0.25 * 20


def test_health_checks_per_phase():
    [plan] = make_plans([drift_row("aws-prod", i) for i in range(5)])

    canary, wave = plan.phases
    assert {c.kind for c in canary.health_checks} == {"asset_running", "image_matches_target"}
    assert all(c.max_failed_share == 0 for c in canary.health_checks)
    assert all(c.max_failed_share == LIMITS.wave_failure_tolerance for c in wave.health_checks)


def test_rollback_restores_every_phase_latest_first():
    [plan] = make_plans([drift_row("aws-prod", i) for i in range(15)], fleet={"aws-prod": 40})

    assert plan.rollback.criteria == ["any health check fails"]
    assert [s.action for s in plan.rollback.steps] == ["restore_image"] * len(plan.phases)
    assert [s.description.split()[1] for s in plan.rollback.steps] == [p.name for p in reversed(plan.phases)]


# -- splitting over the fleet-share cap ---------------------------------------------------------------

def test_splits_a_group_over_the_fleet_share_cap():
    rows = [drift_row("aws-prod", i) for i in range(15)]

    plans = make_plans(rows, fleet={"aws-prod": 20})  # plan cap 10 -> two plans

    assert [len(p.targets) for p in plans] == [8, 7]
    assert all(p.phases[0].kind == "canary" for p in plans)
    first, second = ({t.asset_id for t in p.targets} for p in plans)
    assert not first & second and len(first | second) == 15
    assert not set(plans[0].evidence.drift_item_ids) & set(plans[1].evidence.drift_item_ids)
    assert plans[0].task.intent.endswith("(part 1 of 2)") and plans[1].task.intent.endswith("(part 2 of 2)")
    for plan in plans:
        _, verdicts = validate_plan(plan, limits=LIMITS, other_plans=plans)
        assert all_allowed(verdicts), [v for v in verdicts if not v.allowed]


def test_split_evenly():
    assert split_evenly(list(range(15)), 10) == [list(range(8)), list(range(8, 15))]
    assert split_evenly(list(range(4)), 10) == [list(range(4))]
    assert split_evenly([], 3) == []
    assert [len(c) for c in split_evenly(list(range(7)), 1)] == [1] * 7


def test_fleet_is_never_smaller_than_the_drifting_assets():
    rows = [drift_row("aws-prod", i) for i in range(6)]

    plans = make_plans(rows, fleet={"aws-prod": 2})  # stale count: at least 6 assets exist

    assert {p.fleet_size for p in plans} == {6}
    assert sum(len(p.targets) for p in plans) == 6
    assert all(len(p.targets) <= 3 for p in plans)


# -- target images ------------------------------------------------------------------------------------

def test_target_image_is_the_current_image_published_at_the_site():
    rows = [drift_row("aws-prod", 1), drift_row("aws-stg", 1)]
    artifacts = [
        artifact("aws-prod", "ubuntu-22.04-base@1.3.0", ref="ami-prod-130"),
        artifact("aws-prod", "ubuntu-22.04-base@1.2.0", ref="ami-prod-120"),
        artifact("gcp-prod", "ubuntu-22.04-base@1.3.0", ref="gce-130"),  # another site: not usable
    ]

    prod, stg = make_plans(rows, artifacts=artifacts)

    assert prod.targets[0].to_image_ref == "ami-prod-130"
    assert prod.targets[0].from_image_ref == "img-aws-prod-ubuntu-22.04-base-1.2.0"
    assert stg.targets[0].to_image_ref is None  # not published at aws-stg
    _, verdicts = validate_plan(stg, limits=LIMITS)
    denied = [v.rule for v in verdicts if not v.allowed]
    assert denied == ["safety.target_image_published"]


def test_target_image_follows_the_asset_region():
    rows = [drift_row("aws-prod", 1), drift_row("aws-prod", 2), drift_row("aws-prod", 3)]
    artifacts = [
        artifact("aws-prod", "ubuntu-22.04-base@1.3.0", region="us-east-1", ref="ami-east"),
        artifact("aws-prod", "ubuntu-22.04-base@1.3.0", region="eu-west-1", ref="ami-west"),
    ]
    regions = {rows[0]["asset_id"]: "eu-west-1", rows[1]["asset_id"]: "us-east-1", rows[2]["asset_id"]: None}

    [plan] = make_plans(rows, artifacts=artifacts, regions=regions)

    assert [t.to_image_ref for t in plan.targets] == ["ami-west", "ami-east", None]  # None: ambiguous


def test_resolve_target_image_rules():
    regional = {"provider_image_id": "ami-1", "region": "us-east-1"}
    global_ = {"provider_image_id": "global-1", "region": None}
    assert resolve_target_image([], "us-east-1") is None
    assert resolve_target_image([regional], "US-East-1") == "ami-1"
    assert resolve_target_image([regional], None) == "ami-1"  # the only one, region unknown
    assert resolve_target_image([regional], "eu-west-1") is None  # wrong region
    assert resolve_target_image([regional, global_], "eu-west-1") == "global-1"


# -- task, risk and evidence --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("site", "severity", "risk"),
    [
        ("aws-prod", "critical", "high"),
        ("aws-prod", "high", "high"),
        ("aws-prod", "medium", "medium"),
        ("aws-prod", "low", "low"),
        ("aws-stg", "critical", "medium"),
        ("aws-stg", "high", "medium"),
        ("aws-stg", "medium", "low"),
    ],
)
def test_risk_from_worst_severity_and_environment(site, severity, risk):
    rows = [drift_row(site, 1, severity="low"), drift_row(site, 2, severity=severity)]

    [plan] = make_plans(rows)

    assert plan.task.risk == risk


def test_task_and_change_summary():
    rows = ([drift_row("aws-prod", i, version="1.2.0") for i in range(3)]
            + [drift_row("aws-prod", 10 + i, version="1.0.0", drift_type="image_deprecated") for i in range(2)])

    [plan] = make_plans(rows)

    assert plan.task.intent == "Move 5 production assets at aws-prod from ubuntu-22.04-base 1.0.0/1.2.0 to 1.3.0"
    assert plan.change == "move 5 assets from ubuntu-22.04-base 1.2.0 (3), 1.0.0 (2) to 1.3.0"
    assert plan.task.agent == "rule_based"
    assert plan.task.requested_by == "sensor:drift_sensor"
    assert plan.task.tools_used == list(TOOLS)


def test_evidence_names_drift_items_snapshots_and_query():
    rows = [drift_row("aws-prod", i) for i in range(3)] + [drift_row("aws-stg", 1)]

    prod, _ = make_plans(rows)

    assert prod.evidence.drift_item_ids == ["d-aws-prod-000", "d-aws-prod-001", "d-aws-prod-002"]
    assert prod.evidence.snapshot_ids == {"aws-prod": SNAPSHOTS["aws-prod"]}
    assert prod.evidence.snapshot_key == "key-1"
    assert prod.evidence.query == DRIFT_ITEMS_SQL


def test_same_input_same_plan_hashes():
    rows = ([drift_row("aws-prod", i) for i in range(14)]
            + [drift_row("aws-stg", i, severity="high") for i in range(5)]
            + [drift_row("gcp-prod", i, family="rhel-9-base", version="9.3.0") for i in range(4)])
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)

    first = [p.plan_hash() for p in make_plans(rows)]
    second = [p.plan_hash() for p in make_plans(shuffled, artifacts=list(reversed(ALL_ARTIFACTS)))]

    assert first == second
    assert len(set(first)) == len(first)


def test_every_plan_passes_validation():
    rows = (
        [drift_row("aws-prod", i, severity=("critical", "high", "medium")[i % 3]) for i in range(40)]
        + [drift_row("aws-stg", i, family="rhel-9-base", version="9.2.1", drift_type="image_revoked") for i in range(7)]
        + [drift_row("gcp-prod", i) for i in range(3)]
    )
    known = {r["asset_id"] for r in rows}

    plans = make_plans(rows, fleet={"aws-prod": 70, "aws-stg": 35, "gcp-prod": 40})

    assert len(plans) == 4  # aws-prod's 40 of 70 split in two (cap 35)
    for plan in plans:
        _, verdicts = validate_plan(plan, known, limits=LIMITS, other_plans=plans)
        assert all_allowed(verdicts), [v for v in verdicts if not v.allowed]


def test_plans_with_bundled_limits_pass_validation_with_bundled_policy():
    rows = [drift_row("aws-prod", i) for i in range(20)] + [drift_row("aws-stg", i) for i in range(9)]

    plans = plan_remediations(rows, ALL_ARTIFACTS, {"aws-prod": 70, "aws-stg": 35}, SNAPSHOTS,
                              snapshot_key="k")  # limits: the bundled limits.json

    for plan in plans:
        _, verdicts = validate_plan(plan, other_plans=plans)
        assert all_allowed(verdicts), [v for v in verdicts if not v.allowed]


# -- limits --------------------------------------------------------------------------------------------

def test_bundled_limits_file_feeds_planning_limits():
    data = json.loads(LIMITS_FILE.read_text())
    limits = PlanningLimits.load()

    assert limits.max_batch_size == data["max_batch_size"] == 10
    assert limits.max_wave_share_of_site == data["max_wave_share_of_site"] == 0.25
    assert limits.max_plan_share_of_fleet == data["max_plan_share_of_fleet"] == 0.5
    assert limits.canary_max_size == data["canary_max_size"] == 2
    assert limits.to_data()["production_environments"] == data["production_environments"]


def test_share_caps():
    assert share_cap(0.25, 40) == 10
    assert share_cap(0.25, 3) == 1  # never below one asset
    assert share_cap(0.29, 100) == 29  # not 28 from floating point
    assert LIMITS.wave_cap(100) == 10 and LIMITS.wave_cap(20) == 5
    assert LIMITS.plan_cap(1) == 1
    assert LIMITS.canary_size(1, 100) == 1 and LIMITS.canary_size(30, 100) == 2 and LIMITS.canary_size(0, 10) == 0


@pytest.mark.parametrize(
    "bad",
    [{"max_batch_size": 0}, {"max_wave_share_of_site": 1.5}, {"max_plan_share_of_fleet": 0}, {"surprise": 1}],
)
def test_invalid_limits_are_rejected(bad):
    with pytest.raises((ValueError, TypeError)):
        PlanningLimits.from_mapping({**LIMITS.to_data(), **bad})


# -- warehouse inputs ------------------------------------------------------------------------------------

def _tiny_warehouse(path: Path) -> None:
    rows = [drift_row("aws-prod", i) | {"status": "open"} for i in range(3)] + [drift_row("aws-stg", 1) | {"status": "open"}]
    # drift_items keeps history and config drift; planners read open image drift only
    rows.append(drift_row("aws-prod", 4) | {"status": "closed"})
    rows.append(drift_row("aws-prod", 5, drift_type="config") | {"status": "open"})
    columns = list(rows[0])
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE drift_items (" + ", ".join(
            f"{c} {'INTEGER' if c in ('versions_behind', 'days_behind') else 'VARCHAR'}" for c in columns) + ")")
        for row in rows:
            con.execute(f"INSERT INTO drift_items VALUES ({', '.join('?' * len(columns))})", [row[c] for c in columns])
        con.execute("CREATE TABLE image_artifacts (provider_image_id VARCHAR, site_id VARCHAR, provider VARCHAR, "
                    "region VARCHAR, image_id VARCHAR)")
        con.execute("INSERT INTO image_artifacts VALUES ('ami-130', 'aws-prod', 'aws', 'r1', 'ubuntu-22.04-base@1.3.0'),"
                    " ('ami-other', 'aws-prod', 'aws', 'r1', NULL)")
        con.execute("CREATE TABLE assets (asset_id VARCHAR, site_id VARCHAR, kind VARCHAR, state VARCHAR, "
                    "region VARCHAR, snapshot_id VARCHAR)")
        for i in range(10):
            con.execute("INSERT INTO assets VALUES (?, 'aws-prod', 'vm', ?, 'r1', ?)",
                        [f"aws:aws-prod:vm-{i:03d}", "terminated" if i == 9 else "running", SNAPSHOTS["aws-prod"]])
        con.execute("INSERT INTO assets VALUES ('aws:aws-stg:vm-001', 'aws-stg', 'vm', 'running', 'r2', ?)",
                    [SNAPSHOTS["aws-stg"]])
        con.execute("INSERT INTO assets VALUES ('aws:aws-prod:ctr', 'aws-prod', 'container', 'running', NULL, ?)",
                    [SNAPSHOTS["aws-prod"]])


def test_load_planning_inputs_reads_the_warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    _tiny_warehouse(path)

    inputs = load_planning_inputs(path)

    assert len(inputs.drift_items) == 4
    assert {i["drift_id"] for i in inputs.drift_items} == {"d-aws-prod-000", "d-aws-prod-001", "d-aws-prod-002", "d-aws-stg-001"}
    assert not {"aws:aws-prod:vm-004", "aws:aws-prod:vm-005"} & set(inputs.asset_regions)  # closed, config
    assert [a["provider_image_id"] for a in inputs.artifacts] == ["ami-130"]
    assert inputs.fleet_sizes == {"aws-prod": 9, "aws-stg": 1}  # no terminated asset, no container
    assert inputs.snapshot_ids == {"aws-prod": SNAPSHOTS["aws-prod"], "aws-stg": SNAPSHOTS["aws-stg"]}
    assert inputs.asset_regions["aws:aws-prod:vm-001"] == "r1"
    assert [i.tool for i in inputs.invocations] == list(TOOLS)
    assert [i.result_size for i in inputs.invocations] == [4, 1, 2, 4]
    assert all(i.duration_ms >= 0 and "sql" in i.arguments for i in inputs.invocations)
    assert inputs.snapshot_key == snapshot_key_of(dict(reversed(list(inputs.snapshot_ids.items()))))

    plans = plan_from_inputs(inputs, requested_by="sensor:drift_sensor")
    assert [(p.site_id, len(p.targets)) for p in plans] == [("aws-prod", 3), ("aws-stg", 1)]
    assert plans[0].targets[0].to_image_ref == "ami-130"
    assert plans[0].evidence.snapshot_key == inputs.snapshot_key
