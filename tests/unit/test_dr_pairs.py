"""DR pairs: validation in the sites file, landing in the lake, and the pure readiness rules."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from qlrf_pipelines.compliance.landing import land_configuration
from qlrf_pipelines.dr.landing import (
    CONFIG_SITE_ID,
    DR_PAIR_SCHEMA,
    DR_PAIRS_ENTITY,
    EMPTY_SHA256,
    land_dr_pairs,
    landed_dr_pairs_sha256,
)
from qlrf_pipelines.dr.readiness import family_readiness, family_reasons, plan_failover, restore_image, site_reasons
from qlrf_pipelines.lake import list_snapshots
from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from qlrf_pipelines.sites import SitesFileError, load_sites

SITES = """
sites:
  - {id: dc-one, provider: vsphere, name: DC one, location: dc1, environment: production}
  - {id: cloud-dr, provider: azure, name: Cloud DR, location: westeurope, environment: dr}
"""


def write(folder: Path, pairs: list[dict] | None, name: str = "sites.yaml") -> Path:
    document = yaml.safe_load(SITES)
    if pairs is not None:
        document["dr_pairs"] = pairs
    path = folder / name
    path.write_text(yaml.safe_dump(document))
    return path


def pair(**overrides) -> dict:
    return {"id": "dc-to-cloud", "primary_site": "dc-one", "dr_site": "cloud-dr", "rpo_minutes": 60,
            "rto_minutes": 240, **overrides}


# ---------------------------------------------------------------- the sites file

def test_bundled_sample_declares_dc1_to_weu():
    sites = load_sites(BUNDLED_SITES_FILE)
    assert [p.id for p in sites.dr_pairs] == ["dc1-to-weu"]
    dc1 = sites.dr_pair("dc1-to-weu")
    assert (dc1.primary_site, dc1.dr_site, dc1.rpo_minutes, dc1.rto_minutes, dc1.families) == (
        "vsphere-dc1", "azure-prod-weu", 60, 240, None
    )
    assert len(sites.sites) == 7  # DR pairs add no site


def test_good_pair_with_families(tmp_path):
    sites = load_sites(write(tmp_path, [pair(families=["rhel-9-base", " ubuntu-22.04-base"], description="x")]))
    declared = sites.dr_pair("dc-to-cloud")
    assert declared.families == ["rhel-9-base", "ubuntu-22.04-base"]
    assert declared.public_dict() == {
        "pair_id": "dc-to-cloud", "primary_site_id": "dc-one", "dr_site_id": "cloud-dr", "rpo_minutes": 60,
        "rto_minutes": 240, "families": ["rhel-9-base", "ubuntu-22.04-base"], "description": "x",
    }


def test_no_pairs_is_fine(tmp_path):
    assert load_sites(write(tmp_path, None)).dr_pairs == []
    path = tmp_path / "null.yaml"
    path.write_text(SITES + "dr_pairs:\n")
    assert load_sites(path).dr_pairs == []


def test_unknown_site_is_named(tmp_path):
    path = write(tmp_path, [pair(dr_site="nowhere")])
    with pytest.raises(SitesFileError) as err:
        load_sites(path)
    message = str(err.value)
    assert str(path) in message
    assert "DR pair 'dc-to-cloud', field dr_site: unknown site 'nowhere'; sites in this file: dc-one, cloud-dr" in message


def test_same_site_twice(tmp_path):
    with pytest.raises(SitesFileError, match=r"DR pair 'dc-to-cloud', field dr_site: must differ from primary_site \('dc-one'\)"):
        load_sites(write(tmp_path, [pair(dr_site="dc-one")]))


def test_duplicate_pair_id(tmp_path):
    with pytest.raises(SitesFileError, match=r"DR pair 'dc-to-cloud', field id: duplicate DR pair id"):
        load_sites(write(tmp_path, [pair(), pair(rpo_minutes=15)]))


@pytest.mark.parametrize(
    "overrides, field, fragment",
    [
        ({"rpo_minutes": 0}, "rpo_minutes", "greater than 0"),
        ({"rto_minutes": -5}, "rto_minutes", "greater than 0"),
        ({"rpo_minutes": "60"}, "rpo_minutes", "valid integer"),
        ({"rto_minutes": 1.5}, "rto_minutes", "valid integer"),
        ({"rpo_minutes": True}, "rpo_minutes", "valid integer"),
        ({"id": "Bad_Id"}, "id", "lowercase"),
        ({"families": []}, "families", "at least one family"),
        ({"families": ["a", "a"]}, "families", "twice"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_bad_fields_name_the_pair_and_field(tmp_path, overrides, field, fragment):
    path = write(tmp_path, [pair(**overrides)])
    with pytest.raises(SitesFileError) as err:
        load_sites(path)
    message = str(err.value)
    label = f"DR pair {overrides['id']!r}" if "id" in overrides else "DR pair 'dc-to-cloud'"
    assert f"{path}: {label} (entry 1), field {field}:" in message and fragment in message


def test_missing_rto_is_reported(tmp_path):
    broken = pair()
    del broken["rto_minutes"]
    with pytest.raises(SitesFileError, match=r"DR pair 'dc-to-cloud' \(entry 1\), field rto_minutes: Field required"):
        load_sites(write(tmp_path, [broken]))


# ---------------------------------------------------------------- landing

def at(hour: int) -> datetime:
    return datetime(2026, 11, 1, hour, tzinfo=timezone.utc)


def test_pairs_land_once_per_change(tmp_path):
    lake = tmp_path / "lake"
    sites_file = write(tmp_path, [pair()])
    first = land_dr_pairs(lake, sites_file, now=at(6))
    assert [(f.entity, f.site_id, f.rows) for f in first] == [(DR_PAIRS_ENTITY, CONFIG_SITE_ID, 1)]
    assert first[0].path == lake / "raw" / "dr_pairs" / "site=config" / "snapshot=20261101T060000000000Z.parquet"
    table = pq.read_table(first[0].path)
    assert table.schema.equals(DR_PAIR_SCHEMA, check_metadata=False)
    row = table.to_pylist()[0]
    assert (row["pair_id"], row["primary_site_id"], row["dr_site_id"], row["rpo_minutes"], row["families"]) == (
        "dc-to-cloud", "dc-one", "cloud-dr", 60, None
    )
    assert land_dr_pairs(lake, sites_file, now=at(7)) == []  # unchanged: nothing written

    write(tmp_path, [pair(rto_minutes=120)])
    assert len(land_dr_pairs(lake, sites_file, now=at(8))) == 1
    # every pair removed: an empty snapshot, so the warehouse shows none; then nothing more
    write(tmp_path, [])
    emptied = land_dr_pairs(lake, sites_file, now=at(9))
    assert [f.rows for f in emptied] == [0]
    assert landed_dr_pairs_sha256(lake) == EMPTY_SHA256
    assert land_dr_pairs(lake, sites_file, now=at(10)) == []
    assert len(list_snapshots(lake, DR_PAIRS_ENTITY, CONFIG_SITE_ID)) == 3


def test_no_pairs_never_landed_writes_nothing(tmp_path):
    lake = tmp_path / "lake"
    assert land_dr_pairs(lake, write(tmp_path, None), now=at(6)) == []
    assert landed_dr_pairs_sha256(lake) is None and not (lake / "raw" / "dr_pairs").exists()


def test_invalid_file_lands_nothing(tmp_path):
    lake = tmp_path / "lake"
    with pytest.raises(SitesFileError):
        land_dr_pairs(lake, write(tmp_path, [pair(dr_site="nowhere")]))
    assert not list_snapshots(lake, DR_PAIRS_ENTITY)


class Log:
    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def info(self, message):
        self.lines.append(("info", message))

    def error(self, message):
        self.lines.append(("error", message))


def test_land_configuration_lands_pairs_and_logs_a_bad_file(tmp_path):
    lake = tmp_path / "lake"
    log = Log()
    landed = land_configuration(lake, log, sites_file=write(tmp_path, [pair()]))
    assert DR_PAIRS_ENTITY in {f.entity for f in landed}
    assert any(level == "info" and m.startswith("DR pairs: landed dr_pairs (1 rows)") for level, m in log.lines)

    log = Log()
    bad = write(tmp_path, [pair(rpo_minutes=0)], name="bad.yaml")
    landed = land_configuration(lake, log, sites_file=bad)  # logged, never raised
    assert DR_PAIRS_ENTITY not in {f.entity for f in landed}
    assert any(level == "error" and "DR pairs failed" in m and "rpo_minutes" in m for level, m in log.lines)


# ---------------------------------------------------------------- readiness rules

CATALOG = {
    "rhel-9-base": {"current_version": "9.4.0", "current_image_id": "rhel-9-base@9.4.0"},
    "ubuntu-22.04-base": {"current_version": "1.3.0", "current_image_id": "ubuntu-22.04-base@1.3.0"},
}


def test_site_reasons():
    assert site_reasons("DR", "x", None, 60) == ["DR site x has no snapshot in the warehouse (not discovered yet)"]
    assert site_reasons("primary", "x", {"snapshot_age_minutes": 59.9, "is_stale": False}, 60) == []
    [old] = site_reasons("primary", "x", {"snapshot_age_minutes": 61, "is_stale": False}, 60)
    assert old == "primary site x: latest snapshot is 61 min old, older than the RPO of 60 min"
    assert "latest discovery failed" in site_reasons("DR", "x", {"snapshot_age_minutes": 1, "is_stale": True}, 60)[0]


def test_family_readiness_and_reasons():
    rows = family_readiness(
        ["ubuntu-22.04-base", "rhel-9-base", "unknown-family"], {"rhel-9-base": 3},
        CATALOG, {"rhel-9-base": {"9.2.1"}, "ubuntu-22.04-base": {"1.3.0"}}, {"rhel-9-base": 2},
    )
    assert [(r["family"], r["current_published_at_dr"], r["primary_assets"], r["dr_open_drift"]) for r in rows] == [
        ("rhel-9-base", False, 3, 2), ("ubuntu-22.04-base", True, 0, 0), ("unknown-family", False, 0, 0),
    ]
    assert family_reasons(rows, "dr") == [
        "family rhel-9-base: current image rhel-9-base@9.4.0 is not published at DR site dr (versions there: 9.2.1)",
        "family unknown-family: not a known golden image family",
    ]


def test_restore_image_prefers_own_version_unless_revoked():
    published = {"rhel-9-base": {"9.2.1", "9.4.0"}, "ubuntu-22.04-base": {"1.2.0"}}
    asset = {"image_family": "rhel-9-base", "image_version": "9.2.1"}
    assert restore_image(asset, CATALOG, published, "dr")[:2] == ("rhel-9-base@9.2.1", "same_version")
    image, basis, why = restore_image(asset, CATALOG, published, "dr", revoked={"rhel-9-base@9.2.1"})
    assert (image, basis) == ("rhel-9-base@9.4.0", "family_current") and "revoked" in why
    assert restore_image({"image_family": "rhel-9-base", "image_version": "9.3.0"}, CATALOG, published, "dr")[1] == "family_current"
    # ubuntu: neither 1.1.0 nor the current 1.3.0 is at the DR site
    assert restore_image({"image_family": "ubuntu-22.04-base", "image_version": "1.1.0"}, CATALOG, published, "dr")[0] is None
    assert restore_image({"image_ref": "tpl-x"}, CATALOG, published, "dr")[2] == "runs no golden image (image_ref tpl-x)"


def asset(name: str, family: str | None, version: str | None, environment: str = "production", cpus: int | None = 2):
    return {"asset_id": f"id-{name}", "name": name, "environment": environment, "image_family": family,
            "image_version": version, "cpu_count": cpus}


def test_plan_failover_order_groups_and_rto():
    assets = [
        asset("web-2", "rhel-9-base", "9.4.0", "staging"), asset("web-1", "rhel-9-base", "9.4.0"),
        asset("db-1", "ubuntu-22.04-base", "1.3.0", cpus=None), asset("legacy", None, None, cpus=4),
    ]
    published = {"rhel-9-base": {"9.4.0"}, "ubuntu-22.04-base": {"1.3.0"}}
    plan = plan_failover(assets, CATALOG, published, "dr", rto_minutes=30, restore_minutes_per_asset=20,
                         parallel_restores=2)
    assert [a["name"] for a in plan["recovery_order"]] == ["db-1", "web-1", "web-2"]  # production first, then name
    assert [a["done_by_minute"] for a in plan["recovery_order"]] == [20, 20, 40]
    assert (plan["assets_needing_recovery"], plan["recoverable_assets"], plan["not_recoverable_assets"]) == (4, 3, 1)
    assert (plan["vcpus_needing_recovery"], plan["assets_with_unknown_vcpus"]) == (8, 1)
    assert [a["name"] for a in plan["not_recoverable"]] == ["legacy"]
    assert plan["estimated_recovery_minutes"] == 40 and not plan["within_rto_for_recoverable"] and not plan["rto_met"]
    assert [(g["family"], g["version"], g["assets"], g["recoverable"]) for g in plan["by_image"]] == [
        ("rhel-9-base", "9.4.0", 2, True), ("ubuntu-22.04-base", "1.3.0", 1, True), (None, None, 1, False),
    ]
    # only the declared families are the pair's promise; a faster restore meets the RTO
    covered = plan_failover(assets, CATALOG, published, "dr", 30, 10, 2, families=["rhel-9-base"])
    assert (covered["assets_needing_recovery"], covered["assets_not_covered_by_pair"]) == (2, 2)
    assert covered["rto_met"] and covered["estimated_recovery_minutes"] == 10
    assert covered["rto_assessment"].startswith("plausibly met")
