"""Drift history end to end through dbt: config and image drift open and close between two
snapshots of a site, and what an earlier snapshot was judged to be never changes.

One AWS production site, snapshot T1 (2026-11-01 06:00) then T2 (2026-11-02 06:00); the bundled
rules are landed before the first build, a changed rule set (QLRF-TAG-001 raised to high)
before the second. Every VM is compliant and on the current golden image except:

  vm-public       public IP in T1, none in T2          QLRF-NET-001 closes, fixed
  vm-no-owner     no owner tag in T1 and T2            QLRF-TAG-001 stays open
  vm-unencrypted  disk encryption none in T1, gone     QLRF-ENC-001 closes, asset_removed
  vm-resized      compliant in T1, p4d in T2           QLRF-SIZE-001 opens in T2
  vm-outdated     ubuntu 1.2.0 in T1, 1.3.0 in T2      image_outdated closes, fixed
  vm-unknown-ami  an AMI nobody discovered             image_unknown stays open
  vm-eol          Ubuntu 18.04 in T1 and T2            QLRF-EOL-001 stays open (critical)
  vm-clean        nothing to report
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from qlrf_pipelines.drift.landing import land_drift_rules
from qlrf_pipelines.drift.rules import DRIFT_RULES_ENV
from qlrf_pipelines.lake import snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.models import AssetRecord, Tag
from tests.integration.dbt_lake_fixture import AWS_PROD, SITES, UNDISCOVERED_AMI, _amis, ami
from tests.integration.test_dbt_models import rows, run_dbt_build

pytestmark = pytest.mark.integration

T1_AT = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)
T2_AT = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc)
T1 = snapshot_id_for(T1_AT)
T2 = snapshot_id_for(T2_AT)
UBUNTU = "ubuntu-22.04-base"
REGION = "us-east-1"
TAG_EXPECTED = "tags cost-center; owner; environment (if present) in [development, production, staging]"


def vm(n: int, name: str, at: datetime, **changes) -> AssetRecord:
    record = AssetRecord(
        asset_id=f"aws:{AWS_PROD}:i-{n:016x}", site_id=AWS_PROD, provider="aws", native_id=f"i-{n:016x}",
        kind="vm", name=name, state="running", discovered_at=at, image_ref=ami(REGION, UBUNTU, "1.3.0"),
        platform="linux", os="Ubuntu 22.04.5 LTS", instance_type="m6i.large", cpu_count=2, memory_mb=8192,
        region=REGION, zone=f"{REGION}a", private_ip=f"10.0.0.{n}", launched_at=at - timedelta(days=30),
        tags=[Tag("owner", "team-a"), Tag("cost-center", "cc-1"), Tag("backup-policy", "daily"), Tag("environment", "production")],
        disk_encryption="platform_managed",
    )
    return replace(record, **changes)


def estate(snapshot_id: str) -> list[AssetRecord]:
    at = T1_AT if snapshot_id == T1 else T2_AT
    first = snapshot_id == T1
    no_owner = [Tag("cost-center", "cc-1"), Tag("backup-policy", "daily")]
    assets = [
        vm(1, "vm-public", at, public_ip="203.0.113.10" if first else None),
        vm(2, "vm-no-owner", at, tags=no_owner),
        vm(4, "vm-resized", at, instance_type="m6i.large" if first else "p4d.24xlarge"),
        vm(5, "vm-outdated", at, image_ref=ami(REGION, UBUNTU, "1.2.0" if first else "1.3.0")),
        vm(6, "vm-unknown-ami", at, image_ref=UNDISCOVERED_AMI),
        vm(7, "vm-eol", at, os="Ubuntu 18.04.6 LTS"),
        vm(8, "vm-clean", at),
    ]
    if first:
        assets.append(vm(3, "vm-unencrypted", at, disk_encryption="none"))
    return assets


def publish(lake_dir: Path, snapshot_id: str) -> None:
    at = T1_AT if snapshot_id == T1 else T2_AT
    assets = estate(snapshot_id)
    images = _amis(AWS_PROD, REGION, at, (UBUNTU,))
    site = {"site_id": AWS_PROD, **SITES[AWS_PROD], "asset_count": len(assets), "image_count": len(images)}
    write_snapshot(
        lake_dir, AWS_PROD, snapshot_id,
        {
            "sites": to_table("sites", [site], snapshot_id),
            "assets": to_table("assets", assets, snapshot_id),
            "images": to_table("images", images, snapshot_id),
        },
        remote=None,
    )


@dataclass
class History:
    first: Path  # the warehouse right after the build of T1
    second: Path  # after T2 and the changed rules


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    tmp = tmp_path_factory.mktemp("qlrf-drift-history")
    lake = tmp / "lake"
    live = tmp / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as env:
        env.delenv(DRIFT_RULES_ENV, raising=False)
        publish(lake, T1)
        assert land_drift_rules(lake, now=T1_AT + timedelta(minutes=1))
        run_dbt_build(tmp, lake, live)
        first = tmp / "first.duckdb"
        shutil.copyfile(live, first)

        publish(lake, T2)
        raised = tmp / "rules.yaml"
        raised.write_text(
            "version: 1\nrules:\n"
            "  - id: QLRF-TAG-001\n"
            "    description: Production VMs and nodes carry owner and cost-center tags.\n"
            "    severity: high\n"
            "    scope: {environments: [production], kinds: [vm, node]}\n"
            "    check:\n"
            "      type: required_tags\n"
            "      tags: {owner: any, cost-center: any}\n"
            "      optional_tags: {environment: [production, staging, development]}\n"
        )
        assert land_drift_rules(lake, [str(raised)], now=T2_AT + timedelta(minutes=1))
        run_dbt_build(tmp, lake, live)
    return History(first, live)


def test_drift_items_keep_history(history):
    items = {
        (name, key): rest
        for name, key, *rest in rows(
            history.second,
            "SELECT asset_name, drift_key, drift_type, rule_id, status, resolution, first_seen_snapshot_id, "
            "snapshot_id, closed_snapshot_id, severity FROM drift_items",
        )
    }
    assert items == {
        ("vm-public", "config:QLRF-NET-001"): ["config", "QLRF-NET-001", "closed", "fixed", T1, T1, T2, "high"],
        ("vm-no-owner", "config:QLRF-TAG-001"): ["config", "QLRF-TAG-001", "open", None, T1, T2, None, "high"],
        ("vm-unencrypted", "config:QLRF-ENC-001"): ["config", "QLRF-ENC-001", "closed", "asset_removed", T1, T1, T2, "high"],
        ("vm-resized", "config:QLRF-SIZE-001"): ["config", "QLRF-SIZE-001", "open", None, T2, T2, None, "low"],
        ("vm-outdated", "image_outdated"): ["image_outdated", None, "closed", "fixed", T1, T1, T2, "medium"],
        ("vm-unknown-ami", "image_unknown"): ["image_unknown", None, "open", None, T1, T2, None, "high"],
        ("vm-eol", "config:QLRF-EOL-001"): ["config", "QLRF-EOL-001", "open", None, T1, T2, None, "critical"],
    }


def test_drift_item_columns(history):
    described = {
        name: rest
        for name, *rest in rows(
            history.second,
            "SELECT asset_name, expected, actual, detail, first_seen_at, last_seen_at, closed_at, age_days, "
            "drift_id = md5(asset_id || '|' || drift_key || '|' || first_seen_snapshot_id) FROM drift_items",
        )
    }
    public = described["vm-public"]
    assert public[:3] == ["no public IP", "public IP 203.0.113.10",
                          "QLRF-NET-001: public IP 203.0.113.10 (expected no public IP)"]
    assert public[3:] == [T1_AT, T1_AT, T2_AT, 1.0, True]
    assert described["vm-no-owner"][:2] == [TAG_EXPECTED, "owner missing"]
    assert described["vm-no-owner"][5] is None and described["vm-no-owner"][6] is not None  # open: age up to now
    assert described["vm-unencrypted"][:2] == ["disk encryption platform_managed or stronger", "disk encryption none"]
    assert described["vm-resized"][1] == "instance type p4d.24xlarge"
    assert described["vm-resized"][0].startswith("instance type matching m5.*, m6i.*")
    assert described["vm-eol"][:2] == [
        "OS within vendor support (Ubuntu 18.04.6 LTS ends 2023-05-31)",
        "Ubuntu 18.04.6 LTS, end of life since 2023-05-31",
    ]
    assert described["vm-outdated"][:2] == ["ubuntu-22.04-base@1.3.0", "ubuntu-22.04-base@1.2.0 (production)"]
    assert described["vm-unknown-ami"][:2] == ["a golden image", UNDISCOVERED_AMI]
    # current drift is the open items, as every consumer reads it
    open_now = rows(history.second, "SELECT count(*), count(DISTINCT snapshot_id) FROM drift_items WHERE status = 'open'")
    assert open_now == [(4, 1)]


def test_first_build_had_the_first_snapshot_open(history):
    opened = rows(
        history.first,
        "SELECT asset_name, drift_key, severity FROM drift_items WHERE status = 'open' ORDER BY asset_name",
    )
    assert opened == [
        ("vm-eol", "config:QLRF-EOL-001", "critical"),
        ("vm-no-owner", "config:QLRF-TAG-001", "medium"),
        ("vm-outdated", "image_outdated", "medium"),
        ("vm-public", "config:QLRF-NET-001", "high"),
        ("vm-unencrypted", "config:QLRF-ENC-001", "high"),
        ("vm-unknown-ami", "image_unknown", "high"),
    ]
    assert rows(history.first, "SELECT count(*) FROM drift_items WHERE status <> 'open'") == [(0,)]


def test_past_snapshots_are_never_rejudged(history):
    query = (
        "SELECT * EXCLUDE (observed_at) FROM staging.drift_observations WHERE snapshot_id = ? "
        "ORDER BY asset_id NULLS FIRST, drift_key"
    )
    before = rows(history.first, query, [T1])
    assert rows(history.second, query, [T1]) == before
    # T1 was judged with the bundled rules (TAG-001 medium), T2 with the raised ones (high)
    severity = "SELECT severity FROM staging.drift_observations WHERE snapshot_id = ? AND drift_key = 'config:QLRF-TAG-001'"
    assert rows(history.second, severity, [T1]) == [("medium",)]
    assert rows(history.second, severity, [T2]) == [("high",)]
    assert rows(history.second, "SELECT count(DISTINCT rule_set_sha256) FROM staging.stg_drift_rules") == [(1,)]


def test_drift_reports_count_opened_and_closed(history):
    columns = (
        "snapshot_id, assets_total, assets_drifted, drift_items, config_drift, image_outdated, image_unknown, "
        "critical, high, medium, low, opened, closed, round(drift_rate, 4)"
    )
    reports = rows(history.second, f"SELECT {columns} FROM drift_reports ORDER BY snapshot_id")
    assert reports == [
        (T1, 8, 6, 6, 4, 1, 1, 1, 3, 2, 0, 6, 0, 0.75),
        (T2, 7, 4, 4, 3, 0, 1, 1, 2, 0, 1, 1, 3, 0.5714),
    ]
    first_row = "SELECT * FROM drift_reports WHERE snapshot_id = ?"
    assert rows(history.second, first_row, [T1]) == rows(history.first, first_row, [T1]), "never rewritten"


def test_drift_trends_by_day_and_severity(history):
    trends = {
        (str(day), severity): rest
        for day, severity, *rest in rows(
            history.second,
            "SELECT day, severity, assets_total, assets_drifted, round(drift_rate, 4), open_items, opened, closed, "
            "mean_age_days, mean_days_to_fix FROM drift_trends",
        )
    }
    assert len(trends) == 2 * 5
    assert trends[("2026-11-01", "all")] == [8, 6, 0.75, 6, 6, 0, 0.75, None]
    # T1's three surviving items are 1.75 days old at the end of 11-02, SIZE-001 0.75 days
    assert trends[("2026-11-02", "all")] == [7, 4, 0.5714, 4, 1, 3, 1.5, 1.0]
    assert trends[("2026-11-01", "high")] == [8, 3, 0.375, 3, 3, 0, 0.75, None]  # TAG-001 was medium then
    assert trends[("2026-11-02", "high")] == [7, 2, 0.2857, 2, 0, 2, 1.75, 1.0]  # NET fixed, ENC removed
    assert trends[("2026-11-02", "critical")] == [7, 1, 0.1429, 1, 0, 0, 1.75, None]
    assert trends[("2026-11-02", "medium")] == [7, 0, 0.0, 0, 0, 1, None, 1.0]  # the outdated image, fixed
    assert trends[("2026-11-02", "low")] == [7, 1, 0.1429, 1, 1, 0, 0.75, None]
