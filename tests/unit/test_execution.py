"""The execution engine on a temporary lake: phased dry-run rollout, idempotency, rollback."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from qlrf_pipelines.execution import (
    CATALOGUE,
    DryRunBackend,
    ExecutionUnavailable,
    InMemoryJournal,
    LakeHealthChecker,
    UnsupportedAction,
    action_hints,
    backend_for,
    execute_plan,
    permissions_for,
    planned_action,
)
from qlrf_pipelines.execution.actions import ACTIONS, PROVIDERS
from qlrf_pipelines.execution.backends import ActionResult
from qlrf_pipelines.execution.health import DRY_RUN_IMAGE_CHECK
from qlrf_pipelines.lake import snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.models import AssetRecord
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
from qlrf_pipelines.sites import Site

SITE = "aws-prod"
OLD_AMI = "ami-0old0000000000001"
NEW_AMI = "ami-0new0000000000002"
INSTANCES = ["i-0canary", "i-0wave1a", "i-0wave1b", "i-0wave2a"]
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def aid(instance: str) -> str:
    return f"aws:{SITE}:{instance}"


def target(instance: str, **overrides) -> TargetAsset:
    values = dict(
        asset_id=aid(instance), site_id=SITE, provider="aws", name=f"web-{instance[-5:]}", environment="production",
        from_image_ref=OLD_AMI, from_image_id="ubuntu-22-04-base@1.2.0", to_image_ref=NEW_AMI,
        to_image_id="ubuntu-22-04-base@1.3.0",
    )
    values.update(overrides)
    return TargetAsset(**values)


def checks() -> list[HealthCheck]:
    return [
        HealthCheck(kind="asset_running", description="every asset is running"),
        HealthCheck(kind="image_matches_target", description="every asset runs the target image"),
    ]


def make_plan(targets: list[TargetAsset] | None = None) -> Plan:
    targets = targets or [target(i) for i in INSTANCES]
    ids = [t.asset_id for t in targets]
    return Plan(
        task=TaskSpec(intent="move web to 1.3.0", agent="rule_based", risk="medium", requested_by="drift_sensor"),
        site_id=SITE, environment="production", family="ubuntu-22-04-base", to_image_id="ubuntu-22-04-base@1.3.0",
        change=f"move {len(ids)} assets from 1.2.0 to 1.3.0", fleet_size=10, targets=targets,
        phases=[
            Phase(name="canary", kind="canary", asset_ids=ids[:1], health_checks=checks()),
            Phase(name="wave-1", kind="wave", asset_ids=ids[1:3], health_checks=checks()),
            Phase(name="wave-2", kind="wave", asset_ids=ids[3:], health_checks=checks()),
        ],
        rollback=Rollback(
            criteria=["any failed health check"],
            steps=[RollbackStep(action="restore_image", description="restore the previous image")],
        ),
        evidence=Evidence(drift_item_ids=["d1"], snapshot_key="k", snapshot_ids={SITE: "s"}, query="select 1"),
    )


def write_assets(lake, states: dict[str, str], moment: datetime = T0, site: str = SITE, records=None) -> str:
    sid = snapshot_id_for(moment)
    records = records or [
        AssetRecord(
            asset_id=aid(i), site_id=site, provider="aws", native_id=i, kind="vm", name=f"web-{i[-5:]}",
            state=states.get(i, "running"), discovered_at=moment, image_ref=OLD_AMI, region="eu-west-1",
        )
        for i in INSTANCES
    ]
    write_snapshot(lake, site, sid, {"assets": to_table("assets", records, sid)})
    return sid


def run(plan, lake, journal=None, backend=None, events=None, **kwargs):
    journal = journal if journal is not None else InMemoryJournal()
    backend = backend or DryRunBackend()
    on_event = (lambda kind, payload: events.append((kind, payload))) if events is not None else None
    outcome = execute_plan(
        plan, plan.plan_hash(), "task-1", backend, LakeHealthChecker(lake, dry_run=True), journal,
        dry_run=True, on_event=on_event, **kwargs,
    )
    return outcome, journal, backend


def test_all_running_succeeds_with_exact_dry_run_calls(tmp_path):
    write_assets(tmp_path, {})
    plan = make_plan()
    events: list = []
    outcome, journal, backend = run(plan, tmp_path, events=events)

    assert outcome.status == "succeeded"
    assert [p.phase for p in outcome.phases] == ["canary", "wave-1", "wave-2"]
    assert all(p.passed for p in outcome.phases)
    assert outcome.rollback_actions == []
    canary = outcome.phases[0].actions[0]
    assert canary["action"] == "replace_image" and canary["status"] == "done"
    assert canary["call"] == (
        "ec2.create_replace_root_volume_task(InstanceId='i-0canary', "
        "ImageId='ami-0new0000000000002', DeleteReplacedRootVolume=False)"
    )
    assert canary["details"]["dry_run"] is True and canary["details"]["call"] == canary["call"]
    assert "ec2:CreateReplaceRootVolumeTask" in canary["permissions"]
    assert [a.asset_id for a in backend.calls] == [aid(i) for i in INSTANCES]
    health = outcome.phases[0].health
    assert [h.kind for h in health] == ["asset_running", "image_matches_target"]
    assert health[0].passed and "0/1 failed" in health[0].details
    assert health[1].passed and health[1].details == DRY_RUN_IMAGE_CHECK
    assert [kind for kind, _ in events] == ["phase_started", "phase_done"] * 3
    assert events[0][1]["phase"] == "canary" and events[0][1]["task_id"] == "task-1"
    assert len(journal.entries) == 4 and {e["dry_run"] for e in journal.entries} == {True}


def test_running_again_changes_nothing(tmp_path):
    write_assets(tmp_path, {})
    plan = make_plan()
    first, journal, _ = run(plan, tmp_path)
    second, journal, backend = run(plan, tmp_path, journal=journal)

    assert first.status == second.status == "succeeded"
    assert backend.calls == []
    assert all(p.actions == [] for p in second.phases)
    assert [p.skipped_already_done for p in second.phases] == [1, 2, 1]
    assert len(journal.entries) == 4
    # A dry run never marks a real change as made.
    assert journal.recorded("task-1", plan.plan_hash(), dry_run=False) == set()


def test_stopped_canary_rolls_back_and_waves_never_run(tmp_path):
    write_assets(tmp_path, {}, moment=T0)  # older snapshot: all running
    write_assets(tmp_path, {"i-0canary": "stopped"}, moment=T0 + timedelta(hours=1))  # latest
    plan = make_plan()
    events: list = []
    outcome, journal, backend = run(plan, tmp_path, events=events)

    assert outcome.status == "rolled_back"
    assert [p.phase for p in outcome.phases] == ["canary"]
    canary = outcome.phases[0]
    assert not canary.passed
    running = canary.health[0]
    assert not running.passed and running.failed_assets == [aid("i-0canary")]
    assert "state 'stopped'" in running.details
    assert [(a["asset_id"], a["action"], a["status"]) for a in outcome.rollback_actions] == [
        (aid("i-0canary"), "restore_image", "done")
    ]
    assert outcome.rollback_actions[0]["call"] == (
        "ec2.create_replace_root_volume_task(InstanceId='i-0canary', "
        "ImageId='ami-0old0000000000001', DeleteReplacedRootVolume=False)"
    )
    assert [a.asset_id for a in backend.calls] == [aid("i-0canary"), aid("i-0canary")]
    assert [kind for kind, _ in events] == ["phase_started", "phase_done", "rollback_started", "rollback_done"]
    assert events[-1][1]["status"] == "rolled_back"

    again, _, backend = run(plan, tmp_path, journal=journal)
    assert again.status == "rolled_back" and again.phases == [] and backend.calls == []


def test_failed_action_is_rolled_back_and_failed_rollback_is_failed(tmp_path):
    write_assets(tmp_path, {})
    targets = [target(i) for i in INSTANCES]
    targets[1] = target(INSTANCES[1], to_image_ref=None)  # not published here: replace cannot be made
    plan = make_plan(targets)
    outcome, _, _ = run(plan, tmp_path)
    assert outcome.status == "rolled_back"
    wave = outcome.phases[1]
    assert not wave.passed and wave.health == [] and len(wave.actions) == 1  # stopped at the failure
    assert "not published" in wave.actions[0]["details"]["error"]
    assert [a["asset_id"] for a in outcome.rollback_actions] == [aid(INSTANCES[1]), aid(INSTANCES[0])]

    class FailingRestore(DryRunBackend):
        def apply(self, action):
            if action.action == "restore_image":
                return ActionResult("failed", {"error": "boom"})
            return super().apply(action)

    outcome, _, _ = run(plan, tmp_path, backend=FailingRestore())
    assert outcome.status == "failed" and "rollback failed" in outcome.reason


def test_refuses_a_plan_that_is_not_the_approved_one_or_mixed_modes(tmp_path):
    plan = make_plan()
    with pytest.raises(ValueError, match="plan hash"):
        execute_plan(plan, "0" * 64, "t", DryRunBackend(), LakeHealthChecker(tmp_path), InMemoryJournal())
    with pytest.raises(ValueError, match="dry_run"):
        execute_plan(
            plan, plan.plan_hash(), "t", DryRunBackend(), LakeHealthChecker(tmp_path, dry_run=False),
            InMemoryJournal(), dry_run=False,
        )


def test_missing_site_snapshot_fails_the_check(tmp_path):
    outcome, _, _ = run(make_plan(), tmp_path)
    assert outcome.status == "rolled_back"
    assert "no snapshot of its site" in outcome.phases[0].health[0].details


def test_backend_for_refuses_real_execution():
    site = Site(id=SITE, provider="aws", name="prod", location="eu-west-1", environment="production")
    assert isinstance(backend_for(site, dry_run_requested=False), DryRunBackend)  # no execution_enabled
    enabled = SimpleNamespace(id=SITE, provider="aws", execution_enabled=True)
    assert isinstance(backend_for(enabled, dry_run_requested=True), DryRunBackend)
    with pytest.raises(ExecutionUnavailable, match="real execution for provider aws is not available yet"):
        backend_for(enabled, dry_run_requested=False)
    assert issubclass(ExecutionUnavailable, NotImplementedError)


def test_every_provider_action_declares_permissions():
    assert set(PROVIDERS) == {"aws", "azure", "gcp", "vsphere", "kubernetes"}
    for provider in PROVIDERS:
        for action in ACTIONS:
            assert CATALOGUE[(provider, action)].permissions, (provider, action)
        assert permissions_for(provider)
    assert {"ec2:CreateReplaceRootVolumeTask", "ec2:DescribeReplaceRootVolumeTasks", "ec2:DescribeInstances"} <= set(
        permissions_for("aws")
    )
    assert {
        "Microsoft.Compute/virtualMachines/write",
        "Microsoft.Compute/virtualMachines/reimage/action",
        "Microsoft.Compute/virtualMachines/read",
    } <= set(permissions_for("azure"))
    assert {
        "compute.instances.stop", "compute.instances.start", "compute.instances.get", "compute.disks.create",
        "compute.instances.attachDisk", "compute.instances.detachDisk",
    } <= set(permissions_for("gcp"))
    assert {
        "VirtualMachine.Provisioning.DeployTemplate", "VirtualMachine.Inventory.CreateFromExisting",
        "VirtualMachine.Interact.PowerOff", "VirtualMachine.Interact.PowerOn",
    } <= set(permissions_for("vsphere"))
    assert "apps/deployments: get, patch" in permissions_for("kubernetes")
    with pytest.raises(UnsupportedAction):
        permissions_for("openstack")


def k8s_target(name: str = "web/api") -> TargetAsset:
    return TargetAsset(
        asset_id="kubernetes:k8s-prod:uid-1", site_id="k8s-prod", provider="kubernetes", name=name,
        environment="production", from_image_ref="registry.example.com/golden/api:1.2.0", from_image_id="api@1.2.0",
        to_image_ref="registry.example.com/golden/api:1.3.0", to_image_id="api@1.3.0",
    )


def test_kubernetes_patch_uses_namespace_and_name():
    action = planned_action(k8s_target(), "replace_image", {"workload_kind": "deployments", "container": "api"})
    assert action.call == (
        'PATCH /apis/apps/v1/namespaces/web/deployments/api '
        '{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"registry.example.com/golden/api:1.3.0"}]}}}}'
    )
    assert action.unresolved == [] and action.context["content_type"] == "application/strategic-merge-patch+json"
    restore = planned_action(k8s_target(), "restore_image", {"workload_kind": "statefulsets", "container": "api"})
    assert restore.call.startswith("PATCH /apis/apps/v1/namespaces/web/statefulsets/api ")
    assert '"image":"registry.example.com/golden/api:1.2.0"' in restore.call
    cron = planned_action(k8s_target("batch/report"), "replace_image", {"workload_kind": "cronjobs", "container": "r"})
    assert cron.call.startswith('PATCH /apis/batch/v1/namespaces/batch/cronjobs/report {"spec":{"jobTemplate":')

    unknown = planned_action(k8s_target(), "replace_image")  # no hints: placeholders, never guesses
    assert unknown.call.startswith("PATCH /apis/apps/v1/namespaces/web/<workload_kind>/api ")
    assert unknown.unresolved == ["workload_kind", "container"]
    with pytest.raises(UnsupportedAction, match="node"):
        planned_action(k8s_target("ip-10-0-0-1.ec2.internal"), "replace_image")


def test_other_providers_render_exact_calls():
    def vm(provider, native, name, old, new):
        return TargetAsset(
            asset_id=f"{provider}:s:{native}", site_id="s", provider=provider, name=name, environment="production",
            from_image_ref=old, from_image_id="f@1", to_image_ref=new, to_image_id="f@2",
        )

    rid = "/subscriptions/sub-1/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/web-01"
    gallery = "/subscriptions/sub-1/resourcegroups/rg-img/providers/microsoft.compute/galleries/g/images/u/versions/1.3.0"
    azure = planned_action(vm("azure", "uuid", "web-01", None, gallery), "replace_image", {"resource_id": rid})
    assert azure.call == (
        f'PATCH https://management.azure.com{rid}?api-version=2024-07-01 '
        f'{{"properties":{{"storageProfile":{{"imageReference":{{"id":"{gallery}"}},'
        f'"osDisk":{{"deleteOption":"Detach"}}}}}}}}; '
        f"POST https://management.azure.com{rid}/reimage?api-version=2024-07-01 {{}}"
    )
    with pytest.raises(UnsupportedAction, match="original image is unknown"):
        planned_action(vm("azure", "uuid", "web-01", None, gallery), "restore_image")

    image = "projects/img-proj/global/images/golden-ubuntu-1-3-0"
    gcp = planned_action(vm("gcp", "123", "web-02", "projects/p/global/images/old", image), "replace_image",
                         {"project": "prod-proj", "zone": "europe-west1-b"})
    assert "instances.stop(project='prod-proj', zone='europe-west1-b', instance='web-02')" in gcp.call
    assert f"disks.insert(project='prod-proj', zone='europe-west1-b', disk_resource={{'name': " \
           f"'web-02-golden-ubuntu-1-3-0', 'source_image': '{image}'}})" in gcp.call
    assert "'source': 'projects/prod-proj/zones/europe-west1-b/disks/web-02-golden-ubuntu-1-3-0', 'boot': True" in gcp.call
    assert gcp.unresolved == []

    vsphere = planned_action(vm("vsphere", "5003-uuid", "app-01", "tpl-1-2", "tpl-1-3"), "replace_image")
    assert "FindByUuid(uuid='5003-uuid', vmSearch=True, instanceUuid=True)" in vsphere.call
    assert "<template 'tpl-1-3'>.CloneVM_Task(folder=vm.parent, name='app-01'" in vsphere.call
    assert "setCustomValue(key='qlrf.source-template', value='tpl-1-3')" in vsphere.call


def test_action_hints_come_from_the_latest_snapshot(tmp_path):
    sid = snapshot_id_for(T0)
    k8s = AssetRecord(
        asset_id="kubernetes:k8s-prod:uid-1", site_id="k8s-prod", provider="kubernetes", native_id="uid-1",
        kind="workload", name="web/api", state="running", discovered_at=T0,
        image_ref="registry.example.com/golden/api:1.2.0",
        attributes_json=json.dumps({"kind": "Deployment", "containers": [{"name": "api-main", "image": "x"}]}),
    )
    write_snapshot(tmp_path, "k8s-prod", sid, {"assets": to_table("assets", [k8s], sid)})
    write_assets(tmp_path, {})
    plan = make_plan([target(INSTANCES[0]), target(INSTANCES[1]), k8s_target()])
    hints = action_hints(tmp_path, plan)
    assert hints["kubernetes:k8s-prod:uid-1"] == {"workload_kind": "deployments", "container": "api-main"}
    assert hints[aid(INSTANCES[0])] == {"region": "eu-west-1"}
    action = planned_action(k8s_target(), "replace_image", hints["kubernetes:k8s-prod:uid-1"])
    assert action.call.startswith("PATCH /apis/apps/v1/namespaces/web/deployments/api ")
    assert '"name":"api-main"' in action.call
