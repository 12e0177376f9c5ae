"""compliance_sensor on a real (temporary) Dagster instance: a control_evidence materialization
with failed controls the planner can fix starts plan_remediation_job once per evidence snapshot;
failures only people can fix, no failures, or a plan run already made for the same snapshots
are skipped with a reason that says so. The sensor reads only the event and the lake's file names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, MetadataValue, build_sensor_context, instance_for_test

from qlrf_pipelines.jobs.remediation import plan_remediation_job
from qlrf_pipelines.planning.inputs import snapshot_key_of
from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.sensors.compliance import REQUESTED_BY, compliance_sensor
from qlrf_pipelines.settings import BUNDLED_SITES_FILE

SNAPSHOTS = {"aws-prod-use1": "20260506T090000000000Z", "k8s-prod-eks": "20260506T090001000000Z"}
CM2 = {"framework_id": "nist-800-53", "control_id": "CM-2", "title": "Baseline configuration",
       "failed_checks": ["no_open_high_image_drift"], "failing_asset_ids": ["aws:aws-prod-use1:i-c"]}
CC61 = {"framework_id": "soc2", "control_id": "CC6.1", "title": "Logical access",
        "failed_checks": ["vm_disks_encrypted"], "failing_asset_ids": ["aws:aws-prod-use1:i-a", "aws:aws-prod-use1:i-b"]}
SI2 = {"framework_id": "nist-800-53", "control_id": "SI-2", "title": "Flaw remediation",
       "failed_checks": ["no_fixable_critical_cve_in_production"], "failing_asset_ids": ["k8s:k8s-prod-eks:web"]}


@pytest.fixture
def home(tmp_path) -> Path:
    for site, snapshot in SNAPSHOTS.items():  # the sensor reads file names only
        path = tmp_path / "lake" / "raw" / "sites" / f"site={site}" / f"snapshot={snapshot}.parquet"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    return tmp_path


@pytest.fixture
def instance():
    with instance_for_test() as test_instance:
        yield test_instance


def materialize(instance, failed, snapshot: str = "20260506T093000000000Z") -> None:
    metadata = {"evidence_snapshot_id": snapshot}
    if failed is not None:
        metadata["failed_controls"] = MetadataValue.json(failed)
    instance.report_runless_asset_event(AssetMaterialization(asset_key=AssetKey(["control_evidence"]), metadata=metadata))


def tick(instance, home: Path, cursor: str | None = None):
    context = build_sensor_context(
        instance=instance, cursor=cursor, sensor_name="compliance_sensor",
        resources={"estate": EstateResource(home=str(home), sites_file=str(BUNDLED_SITES_FILE))},
    )
    return compliance_sensor.evaluate_tick(context)


def test_a_remediable_failure_plans_once_per_evidence_snapshot(instance, home):
    materialize(instance, [CC61, CM2])

    data = tick(instance, home)

    (request,) = data.run_requests
    key = snapshot_key_of(SNAPSHOTS)
    assert request.run_key == "compliance:20260506T093000000000Z"
    assert request.run_config == {
        "ops": {"plan_remediation": {"config": {"snapshot_key": key, "requested_by": REQUESTED_BY}}}
    }
    assert REQUESTED_BY == "sensor:compliance_sensor"
    assert request.tags["qlrf/snapshot_key"] == key and request.tags["qlrf/failed_controls"] == "nist-800-53/CM-2"
    assert compliance_sensor.job_name == plan_remediation_job.name
    again = tick(instance, home, cursor=data.cursor)  # no new evidence: nothing new
    assert again.run_requests == [] or again.run_requests is None


def test_fixable_critical_cves_are_remediable_too(instance, home):
    materialize(instance, [SI2])
    (request,) = tick(instance, home).run_requests
    assert request.tags["qlrf/failed_controls"] == "nist-800-53/SI-2"


def test_failures_only_people_can_fix_are_skipped_naming_the_controls(instance, home):
    materialize(instance, [CC61])
    data = tick(instance, home)
    assert not data.run_requests
    assert "no failed control can be remediated by the planner" in data.skip_message
    assert "these need people: soc2/CC6.1 (2 assets)" in data.skip_message


@pytest.mark.parametrize(("failed", "message"), [
    ([], "no failed (unwaived) control"),
    (None, "has no failed_controls"),
])
def test_nothing_failed_or_no_metadata_is_skipped(instance, home, failed, message):
    materialize(instance, failed)
    data = tick(instance, home)
    assert not data.run_requests and message in data.skip_message


def test_no_second_plan_for_snapshots_already_planned(instance, home):
    key = snapshot_key_of(SNAPSHOTS)
    earlier = instance.create_run_for_job(
        plan_remediation_job,
        run_config={"ops": {"plan_remediation": {"config": {"snapshot_key": key, "requested_by": "sensor:drift_sensor"}}}},
        tags={"qlrf/snapshot_key": key, "dagster/sensor_name": "drift_sensor"},
    )
    materialize(instance, [CM2, CC61])
    data = tick(instance, home)
    assert not data.run_requests
    assert f"already planned for these snapshots (run {earlier.run_id}, drift_sensor)" in data.skip_message
    assert "these need people: soc2/CC6.1 (2 assets)" in data.skip_message
