"""The DR pair of the sample estate in the warehouse, and the DR tools' values against direct SQL.

Known facts of the sample: dc1-to-weu pairs vsphere-dc1 (primary) with azure-prod-weu (DR), RPO 60
and RTO 240 minutes; vsphere-dc1 runs rhel-9-base, ubuntu-22.04-base and windows-2022-base, whose
current images (9.4.0, 1.3.0, 2026.10) are all published in azure-prod-weu's gallery.
"""

from __future__ import annotations

import json
import math

import pytest

from qlrf_pipelines.planning.tools import ToolContext, ToolError, call_tool
from qlrf_pipelines.planning.tools.registry import REGISTRY
from qlrf_pipelines.settings import Paths
from tests.conftest import sql

pytestmark = pytest.mark.integration
PAIR = "dc1-to-weu"
PRIMARY, DR = "vsphere-dc1", "azure-prod-weu"
ACTIVE_VMS = "site_id = ? AND kind IN ('vm', 'node', 'workload') AND coalesce(state, '') NOT IN ('stopped', 'terminated')"


@pytest.fixture(scope="module")
def ctx(sample_runs) -> ToolContext:
    paths = Paths(sample_runs.home)
    return ToolContext(warehouse_path=paths.warehouse_path, lake_dir=paths.lake_dir)


@pytest.fixture(scope="module")
def status(ctx) -> dict:
    return call_tool(ctx, "dr_pair_status", {"pair_id": PAIR}).rows


@pytest.fixture(scope="module")
def failover(ctx) -> dict:
    return call_tool(ctx, "simulate_failover", {"pair_id": PAIR}).rows


def test_dr_pairs_table_joins_sites_and_lands_once(sample_runs, prepared_manifest):
    rows = sql(
        sample_runs.home,
        "SELECT pair_id, primary_site_id, primary_provider, primary_location, dr_site_id, dr_provider, dr_location, "
        "rpo_minutes, rto_minutes, families FROM dr_pairs",
    )
    assert rows == [(PAIR, PRIMARY, "vsphere", "dc1-frankfurt", DR, "azure", "westeurope", 60, 240, None)]
    # configuration: one snapshot for two runs of an unchanged sites file
    assert len(list((sample_runs.home / "lake" / "raw" / "dr_pairs" / "site=config").glob("*.parquet"))) == 1
    # every column is documented in dbt, like the rest of the contract
    manifest = json.loads(prepared_manifest.manifest_path.read_text())
    model = next(n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["name"] == "dr_pairs")
    columns = [r[0] for r in sql(
        sample_runs.home,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = 'dr_pairs'",
    )]
    assert model["description"].strip() and columns
    assert [c for c in columns if not model["columns"].get(c, {}).get("description", "").strip()] == []


def test_tools_are_registered_read_only_for_dr_and_incident():
    for name in ("list_dr_pairs", "dr_pair_status", "simulate_failover"):
        tool = REGISTRY[name]
        assert tool.effect == "read" and set(tool.agents) == {"dr", "incident"}, name


def test_list_dr_pairs(ctx, sample_runs):
    rows = call_tool(ctx, "list_dr_pairs", {}).rows
    assert [(r["pair_id"], r["primary_site_id"], r["dr_site_id"], r["rpo_minutes"], r["rto_minutes"]) for r in rows] == [
        (PAIR, PRIMARY, DR, 60, 240)
    ]
    assert rows[0]["primary_environment"] == rows[0]["dr_environment"] == "production"
    assert call_tool(ctx, "list_dr_pairs", {"site_id": DR}).rows == rows
    assert call_tool(ctx, "list_dr_pairs", {"site_id": "aws-prod-use1"}).rows == []


def test_unknown_pair_lists_known_ids(ctx):
    for tool in ("dr_pair_status", "simulate_failover"):
        with pytest.raises(ToolError, match=rf"unknown DR pair 'nope'; known DR pairs: {PAIR}"):
            call_tool(ctx, tool, {"pair_id": "nope"})


def test_status_sites_and_counts(status, sample_runs):
    home = sample_runs.home
    for side, site_id in (("primary", PRIMARY), ("dr", DR)):
        facts = status[side]
        expected = sql(home, "SELECT provider, location, last_snapshot_id, asset_count FROM sites WHERE site_id = ?", [site_id])[0]
        assert (facts["provider"], facts["location"], facts["last_snapshot_id"], facts["assets"]) == expected
        running = sql(home, "SELECT count(*), sum(cpu_count) FROM assets WHERE site_id = ? AND state = 'running'", [site_id])[0]
        assert (facts["running_assets"], facts["running_vcpus"]) == running
        assert 0 <= facts["snapshot_age_minutes"] < 24 * 60
    assert status["primary"]["running_vcpus"] > 0
    assert status["dr"]["running_vcpus"] is None  # Azure VM sizes carry no vCPU count in the sample
    assert (status["rpo_minutes"], status["rto_minutes"]) == (60, 240)


def test_status_families_are_published_at_the_dr_site(status, sample_runs):
    home = sample_runs.home
    running = dict(sql(
        home, f"SELECT image_family, count(*) FROM assets WHERE {ACTIVE_VMS} AND image_family IS NOT NULL GROUP BY 1",
        [PRIMARY],
    ))
    assert set(running) == {"rhel-9-base", "ubuntu-22.04-base", "windows-2022-base"}
    assert status["families_basis"] == "running_at_primary"
    assert [f["family"] for f in status["families"]] == sorted(running)
    published = {
        (family, version)
        for family, version in sql(home, "SELECT family, version FROM image_artifacts WHERE site_id = ? AND image_id IS NOT NULL", [DR])
    }
    current = dict(sql(home, "SELECT family, current_version FROM golden_image_families"))
    for family in status["families"]:
        assert family["primary_assets"] == running[family["family"]]
        assert family["current_version"] == current[family["family"]]
        assert (family["family"], family["current_version"]) in published
        assert family["current_published_at_dr"] is True
        assert family["versions_published_at_dr"] == sorted(v for f, v in published if f == family["family"])
    ubuntu = next(f for f in status["families"] if f["family"] == "ubuntu-22.04-base")
    assert (ubuntu["current_image_id"], ubuntu["versions_published_at_dr"]) == (
        "ubuntu-22.04-base@1.3.0", ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    )


def test_status_is_not_ready_with_reasons(status, sample_runs):
    home = sample_runs.home
    unmanaged = sql(home, f"SELECT count(*) FROM assets WHERE {ACTIVE_VMS} AND image_family IS NULL", [PRIMARY])[0][0]
    drift = dict(sql(home, "SELECT severity, count(*) FROM drift_items WHERE site_id = ? AND status = 'open' GROUP BY 1", [DR]))
    assert unmanaged == 2 and drift.get("critical", 0) > 0
    assert status["primary_assets_without_golden_image"] == unmanaged
    assert status["dr_open_drift"] == {"total": sum(drift.values()), "by_severity": drift}
    expected = [
        f"{unmanaged} active asset(s) at the primary run no golden image, so none can be rebuilt at {DR}",
        f"DR site {DR} has {drift['critical']} open critical drift item(s)",
    ]
    # the RPO proxy only bites when the session has run longer than the RPO
    rpo = [r for r in status["reasons"] if "older than the RPO" in r]
    assert len(rpo) == sum(status[side]["snapshot_age_minutes"] > 60 for side in ("primary", "dr"))
    assert [r for r in status["reasons"] if r not in rpo] == expected
    assert status["ready"] is False


def test_failover_assets_groups_and_unrecoverable(failover, sample_runs):
    home = sample_runs.home
    active = sql(home, f"SELECT count(*), sum(cpu_count) FROM assets WHERE {ACTIVE_VMS}", [PRIMARY])[0]
    assert (failover["assets_needing_recovery"], failover["vcpus_needing_recovery"]) == active
    by_version = {
        (f, v): (n, cpus)
        for f, v, n, cpus in sql(
            home, f"SELECT image_family, image_version, count(*), sum(cpu_count) FROM assets WHERE {ACTIVE_VMS} GROUP BY 1, 2",
            [PRIMARY],
        )
    }
    assert {(g["family"], g["version"]): (g["assets"], g["vcpus"]) for g in failover["by_image"]} == by_version
    unmanaged = [r[0] for r in sql(
        home, f"SELECT name FROM assets WHERE {ACTIVE_VMS} AND image_family IS NULL ORDER BY name", [PRIMARY]
    )]
    assert [a["name"] for a in failover["not_recoverable"]] == unmanaged
    assert failover["not_recoverable_assets"] == len(unmanaged)
    assert failover["recoverable_assets"] == active[0] - len(unmanaged)


def test_failover_restores_revoked_versions_on_the_current_image(failover, sample_runs):
    revoked = {r[0] for r in sql(sample_runs.home, "SELECT image_id FROM golden_images WHERE status = 'revoked'")}
    assert "rhel-9-base@9.2.1" in revoked
    groups = {(g["family"], g["version"]): g for g in failover["by_image"]}
    assert (groups[("rhel-9-base", "9.2.1")]["restore_image_id"], groups[("rhel-9-base", "9.2.1")]["basis"]) == (
        "rhel-9-base@9.4.0", "family_current"
    )
    assert (groups[("ubuntu-22.04-base", "1.2.0")]["restore_image_id"], groups[("ubuntu-22.04-base", "1.2.0")]["basis"]) == (
        "ubuntu-22.04-base@1.2.0", "same_version"
    )
    assert all(a["restore_image_id"] not in revoked for a in failover["recovery_order"])


def test_failover_order_and_rto(failover, ctx):
    order = failover["recovery_order"]
    keys = [(a["environment"] != "production", a["name"], a["asset_id"]) for a in order]
    assert keys == sorted(keys) and [a["position"] for a in order] == list(range(1, len(order) + 1))
    recoverable = failover["recoverable_assets"]
    assert failover["estimated_recovery_minutes"] == math.ceil(recoverable / 4) * 15 == order[-1]["done_by_minute"]
    assert failover["within_rto_for_recoverable"] is (failover["estimated_recovery_minutes"] <= 240)
    assert failover["rto_met"] is False and failover["rto_assessment"].startswith("not met: 2 asset(s)")
    assert any("15 min, 4 at a time" in a for a in failover["assumptions"])
    # one restore at a time: the same assets no longer fit in the RTO
    serial = call_tool(ctx, "simulate_failover", {"pair_id": PAIR, "parallel_restores": 1}).rows
    assert serial["estimated_recovery_minutes"] == recoverable * 15 > 240 and not serial["within_rto_for_recoverable"]


def test_failover_filters(ctx, sample_runs):
    ubuntu = call_tool(ctx, "simulate_failover", {"pair_id": PAIR, "family": "ubuntu-22.04-base"}).rows
    expected = sql(
        sample_runs.home, f"SELECT count(*) FROM assets WHERE {ACTIVE_VMS} AND image_family = 'ubuntu-22.04-base'", [PRIMARY]
    )[0][0]
    assert ubuntu["assets_needing_recovery"] == ubuntu["recoverable_assets"] == expected > 0
    assert ubuntu["rto_met"] is True and {g["family"] for g in ubuntu["by_image"]} == {"ubuntu-22.04-base"}
    with_stopped = call_tool(ctx, "simulate_failover", {"pair_id": PAIR, "include_stopped": True}).rows
    not_terminated = sql(
        sample_runs.home, "SELECT count(*) FROM assets WHERE site_id = ? AND state <> 'terminated'", [PRIMARY]
    )[0][0]
    assert with_stopped["assets_needing_recovery"] == not_terminated
    staging = call_tool(ctx, "simulate_failover", {"pair_id": PAIR, "environment": "staging"}).rows
    assert staging["assets_needing_recovery"] == 0 and staging["estimated_recovery_minutes"] == 0
    with pytest.raises(ToolError, match="restore_minutes_per_asset"):
        call_tool(ctx, "simulate_failover", {"pair_id": PAIR, "restore_minutes_per_asset": 0})
