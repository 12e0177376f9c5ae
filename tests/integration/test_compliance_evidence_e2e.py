"""Waivers and evidence packs end to end on the sample estate, through the CLI.

Arrange / act, in one private QLRF_HOME and Dagster instance (this module changes the estate,
so it does not share the session's sample runs):
1. refresh the bundled sample estate; T1 = right after; export the soc2 pack as of T1;
2. erin waives every failing asset of soc2 CC6.1 and one of CC6.6 (CLI); bob may not; a waiver
   that already expired is put straight into the store (the CLI refuses past dates);
3. refresh again: the evidence shows the waived failures as waived, never as passed, and the
   expired waiver applies nowhere; compliance_sensor plans remediation of CM-2 (image drift);
4. change the estate (a copy of the sample payloads where one CC6.6 VM lost its public IP) and
   refresh a third time; export as of T1 again and as of now;
5. edit one evidence row in a copy of the lake.
Assert: the T1 pack is byte-identical before and after the later runs, the current pack shows
the waivers and the fixed VM, a tampered row fails `verify` and `export` naming the file, control
and evidence id, `--allow-broken-chain` flags it, and the OSCAL file validates with trestle.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import build_sensor_context, instance_for_test

from qlrf_pipelines.compliance.export import read_entity
from qlrf_pipelines.control import ControlStore
from qlrf_pipelines.control.tables import compliance_waivers
from qlrf_pipelines.settings import BUNDLED_SITES_FILE

from tests.conftest import run_refresh_job, sql
from tests.integration.test_compliance_cli import qlrf
from tests.unit.test_evidence_export import trestle_validate

pytestmark = pytest.mark.integration

REASON = "vendor appliance; disk encryption lands with the Q3 hardware refresh"




def pack(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def latest_evidence(home: Path, framework_id: str, control_id: str) -> list[dict]:
    rows = [r for r in read_entity(home / "lake", "control_evidence")
            if (r["framework_id"], r["control_id"]) == (framework_id, control_id)]
    newest = max(r["evaluated_at"] for r in rows)
    return [r for r in rows if r["evaluated_at"] == newest]


def failures_of(home: Path, evidence_id: str) -> dict[str, str | None]:
    return {f["asset_id"]: f["waiver_id"] for f in read_entity(home / "lake", "control_evidence_failures")
            if f["evidence_id"] == evidence_id}


def estate_without_public_ip(tmp: Path, asset_id: str) -> Path:
    """A copy of the sample estate where the AWS VM `asset_id` has no public IP any more."""
    copy = tmp / "estate"
    shutil.copytree(BUNDLED_SITES_FILE.parent, copy)
    _provider, site_id, instance_id = asset_id.split(":", 2)
    payload_path = copy / "aws" / f"{site_id}.json"
    payload = json.loads(payload_path.read_text())
    found = 0
    for region in payload["regions"].values():
        for reservation in region.get("DescribeInstances", {}).get("Reservations", []):
            for instance in reservation["Instances"]:
                if instance["InstanceId"] == instance_id:
                    found += instance.pop("PublicIpAddress", None) is not None
    assert found == 1, f"{instance_id} not found with a public IP in {payload_path}"
    payload_path.write_text(json.dumps(payload))
    return copy / BUNDLED_SITES_FILE.name


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, prepared_manifest):
    tmp = tmp_path_factory.mktemp("qlrf-evidence")
    home = tmp / "home"
    with pytest.MonkeyPatch.context() as mp, instance_for_test() as instance:
        for name in ("QLRF_CONTROL_URL", "QLRF_RBAC", "QLRF_COMPLIANCE_CATALOG", "QLRF_SITES"):
            mp.delenv(name, raising=False)
        mp.setenv("QLRF_HOME", str(home))

        # 1. first refresh, pack as of T1
        assert run_refresh_job(instance, home, BUNDLED_SITES_FILE).success
        t1 = datetime.now(timezone.utc)
        at_t1 = t1.isoformat()
        qlrf(home, "evidence", "export", "--framework", "soc2", "--at", at_t1, "--out", str(tmp / "t1-before"))
        first = {c: json.loads((tmp / "t1-before" / f"{c}.json").read_text()) for c in ("CC6.1", "CC6.6", "CC7.2")}
        failing = {c: sorted({f["asset_id"] for f in report["failing_assets"]}) for c, report in first.items()}

        # 2. waivers: all of CC6.1, the first of CC6.6; a refusal; an expired one straight into the store
        cli = {
            "cc61": qlrf(home, "waivers", "add", "--control", "CC6.1", "--framework", "soc2",
                         *[a for asset in failing["CC6.1"] for a in ("--asset", asset)],
                         "--until", "2099-12-31", "--user", "erin", "--reason", REASON),
            "cc66": qlrf(home, "waivers", "add", "--control", "cc6.6", "--asset", failing["CC6.6"][0],
                         "--until", (date.today() + timedelta(days=30)).isoformat(), "--user", "alice",
                         "--reason", "bastion host, public by design (RISK-88)"),
            "bob": qlrf(home, "waivers", "add", "--control", "CC6.6", "--asset", failing["CC6.6"][1],
                        "--until", "2099-12-31", "--user", "bob", "--reason", REASON, check=False),
            "past": qlrf(home, "waivers", "add", "--control", "CC7.2", "--asset", failing["CC7.2"][0],
                         "--until", "2020-01-01", "--user", "erin", "--reason", REASON, check=False),
        }
        with ControlStore.open(home=home) as store, store.engine.begin() as conn:
            conn.execute(compliance_waivers.insert().values(
                waiver_id="W-000900", control_id="CC7.2", framework_id=None, asset_id=failing["CC7.2"][0],
                reason="expired exception from last quarter", created_by="erin",
                created_at=t1 - timedelta(days=90), expires_on=date.today() - timedelta(days=1),
            ))
        cli["list"] = qlrf(home, "waivers", "list", "--format", "json")
        cli["list_all"] = qlrf(home, "waivers", "list", "--all", "--format", "json")

        # 3. second refresh: waivers applied; the sensor plans remediation of image drift
        second = run_refresh_job(instance, home, BUNDLED_SITES_FILE)
        assert second.success
        from qlrf_pipelines.definitions import build_definitions

        defs = build_definitions()
        sensor = defs.resolve_sensor_def("compliance_sensor")
        tick = sensor.evaluate_tick(build_sensor_context(
            instance=instance, definitions=defs, resources=defs.resources, sensor_name="compliance_sensor",
        ))
        plan_run = None
        if tick.run_requests:
            request = tick.run_requests[0]
            plan_run = defs.resolve_job_def("plan_remediation_job").execute_in_process(
                run_config=request.run_config, tags=dict(request.tags) | {"dagster/run_key": request.run_key},
                instance=instance, resources=defs.resources, raise_on_error=False,
            )
        with ControlStore.open(home=home) as store:
            tasks = store.list_tasks()
        waived_second = {c: latest_evidence(home, "soc2", c) for c in ("CC6.1", "CC6.6", "CC7.2")}

        # 4. the estate changes: the second unwaived CC6.6 VM on AWS loses its public IP
        fixed = next(a for a in failing["CC6.6"][1:] if a.startswith("aws:"))
        sites = estate_without_public_ip(tmp, fixed)
        assert run_refresh_job(instance, home, sites).success
        qlrf(home, "evidence", "export", "--framework", "soc2", "--at", at_t1, "--out", str(tmp / "t1-after"))
        qlrf(home, "evidence", "export", "--framework", "soc2", "--at", "now", "--out", str(tmp / "now"))
        verified = qlrf(home, "evidence", "verify")
        yield {
            "tmp": tmp, "home": home, "failing": failing, "fixed": fixed, "cli": cli, "tick": tick,
            "plan_run": plan_run, "tasks": tasks, "waived": waived_second, "verified": verified, "at_t1": at_t1,
        }


def test_waivers_cli_adds_refuses_and_lists(scenario):
    cli, failing = scenario["cli"], scenario["failing"]
    assert len(failing["CC6.1"]) >= 2 and len(failing["CC6.6"]) >= 2 and failing["CC7.2"]
    added = cli["cc61"].stdout.splitlines()
    assert added[0].startswith("added W-000001: soc2 CC6.1 waived for ")
    assert len([line for line in added if line.startswith("added W-")]) == len(failing["CC6.1"])
    assert cli["bob"].returncode == 1 and "lacks permission MANAGE_WAIVERS" in cli["bob"].stderr
    assert cli["past"].returncode == 1 and "expiry 2020-01-01 is in the past" in cli["past"].stderr
    in_force = json.loads(cli["list"].stdout)
    assert {w["state"] for w in in_force} == {"active"} and len(in_force) == len(failing["CC6.1"]) + 1
    every = {w["waiver_id"]: w["state"] for w in json.loads(cli["list_all"].stdout)}
    assert every["W-000900"] == "expired" and len(every) == len(in_force) + 1


def test_the_next_evaluation_shows_waived_failures_as_waived_not_passed(scenario):
    waived, failing = scenario["waived"], scenario["failing"]
    (cc61,) = waived["CC6.1"]
    assert cc61["status"] == "waived"
    assert cc61["failing_count"] == cc61["waived_count"] == len(failing["CC6.1"])
    assert set(failures_of(scenario["home"], cc61["evidence_id"])) == set(failing["CC6.1"])
    assert all(failures_of(scenario["home"], cc61["evidence_id"]).values())
    (cc66,) = waived["CC6.6"]
    assert (cc66["status"], cc66["waived_count"]) == ("fail", 1)
    waivers_66 = failures_of(scenario["home"], cc66["evidence_id"])
    assert waivers_66[failing["CC6.6"][0]] == cc66["waiver_ids"][0]
    assert [a for a, w in waivers_66.items() if w is None] == failing["CC6.6"][1:]


def test_an_expired_waiver_no_longer_applies(scenario):
    (cc72,) = [r for r in scenario["waived"]["CC7.2"] if r["check_id"] == "config_vsphere_tools_running"]
    assert cc72["status"] == "fail" and cc72["waiver_ids"] == []
    assert failures_of(scenario["home"], cc72["evidence_id"])[scenario["failing"]["CC7.2"][0]] is None
    states = dict(sql(scenario["home"], "SELECT waiver_id, state FROM compliance_waivers"))
    assert states["W-000900"] == "expired" and states["W-000001"] == "active"


def test_compliance_sensor_plans_image_drift_remediation_with_the_same_approval_rules(scenario):
    (request,) = scenario["tick"].run_requests
    assert request.run_key.startswith("compliance:")
    assert "nist-800-53/CM-2" in request.tags["qlrf/failed_controls"]
    assert scenario["plan_run"].success
    tasks = scenario["tasks"]
    assert tasks and {t.requested_by for t in tasks} == {"sensor:compliance_sensor"}
    assert {t.status for t in tasks} <= {"pending_approval", "policy_denied"}
    assert all(not t.approvals for t in tasks)


def test_a_past_pack_is_byte_identical_after_later_runs_and_the_estate_change(scenario):
    tmp = scenario["tmp"]
    before, after = pack(tmp / "t1-before"), pack(tmp / "t1-after")
    assert before == after
    summary = json.loads(before["summary.json"])
    assert summary["as_of"].startswith(scenario["at_t1"][:19]) and summary["waivers"] == []
    assert before["waivers.csv"].decode().count("\n") == 1  # header only: no waiver existed then


def test_the_current_pack_shows_the_waivers_and_the_fixed_vm(scenario):
    tmp, failing = scenario["tmp"], scenario["failing"]
    then, now = pack(tmp / "t1-before"), pack(tmp / "now")
    assert then != now
    status = {c["control_id"]: c["status"] for c in json.loads(now["summary.json"])["controls"]}
    assert status["CC6.1"] == "waived"
    cc66 = json.loads(now["CC6.6.json"])
    assets = {f["asset_id"]: f["waiver_id"] for f in cc66["failing_assets"]}
    assert scenario["fixed"] not in assets and len(assets) == len(failing["CC6.6"]) - 1
    assert assets[failing["CC6.6"][0]] is not None
    waivers = now["waivers.csv"].decode().splitlines()
    assert len(waivers) == 1 + len(failing["CC6.1"]) + 1 and not any("W-000900" in line for line in waivers)
    waived_line = next(line for line in now["failing_assets.csv"].decode().splitlines()
                       if line.startswith("soc2,CC6.6,") and f",{failing['CC6.6'][0]}," in line)
    assert ",waived,W-" in waived_line
    assert "evidence rows in" in scenario["verified"].stdout and scenario["verified"].stdout.rstrip().endswith("ok")


def test_oscal_of_the_current_pack_validates_with_trestle(scenario, tmp_path):
    document = (scenario["tmp"] / "now" / "assessment-results.json").read_bytes()
    checked = trestle_validate(tmp_path, document)
    assert checked.returncode == 0 and "VALID" in checked.stdout, checked.stdout + checked.stderr
    results = json.loads(document)["assessment-results"]["results"][0]
    states = {f["target"]["target-id"]: f["target"]["status"]["state"] for f in results["findings"]}
    assert states["CC6.1"] == "not-satisfied"  # waived is not satisfied


def test_a_tampered_evidence_row_fails_verify_and_export_and_is_flagged_when_allowed(scenario, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(scenario["home"] / "lake", home / "lake")
    first_file = sorted((home / "lake" / "raw" / "control_evidence").glob("site=*/*.parquet"))
    # the first run's evidence file (the one before it is the empty file landing writes)
    path = next(p for p in first_file if pq.ParquetFile(p).metadata.num_rows)
    table = pq.read_table(path)
    rows = table.to_pylist()
    row = next(r for r in rows if (r["framework_id"], r["control_id"]) == ("soc2", "CC6.6"))
    row["status"] = "pass"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    relative = path.relative_to(home / "lake").as_posix()

    verify = qlrf(home, "evidence", "verify", check=False)
    assert verify.returncode == 1
    assert f"BROKEN {relative}: soc2 CC6.6 check no_public_ip_in_production, evidence {row['evidence_id']}" in verify.stderr

    refused = qlrf(home, "evidence", "export", "--framework", "soc2", "--at", scenario["at_t1"],
                   "--out", str(tmp_path / "refused"), check=False)
    assert refused.returncode == 1 and relative in refused.stderr and row["evidence_id"] in refused.stderr
    assert not (tmp_path / "refused").exists()
    assert qlrf(home, "evidence", "verify", "--framework", "nist-800-53").returncode == 0

    flagged = qlrf(home, "evidence", "export", "--framework", "soc2", "--at", "now", "--allow-broken-chain",
                   "--out", str(tmp_path / "flagged"))
    assert "integrity BROKEN: CC6.6" in flagged.stderr
    files = pack(tmp_path / "flagged")
    assert json.loads(files["CC6.6.json"])["integrity"] == "broken"
    assert json.loads(files["CC6.1.json"])["integrity"] == "ok"
    assert json.loads(files["summary.json"])["integrity"] == "broken"
    assert all(line.endswith(",broken") for line in files["CC6.6.csv"].decode().splitlines()[1:])
    checked = trestle_validate(tmp_path, files["assessment-results.json"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
