"""Golden image lineage, promotions and blast radius end to end on the bundled sample estate.

The sample estate's images name their parents in their tags (ubuntu 1.0.0 -> ... -> 1.4.0), the
bundled scans say CVE-2024-6387 is in ubuntu 1.1.0, the 1.2.0 SBOM still lists the vulnerable
openssh-server and the 1.3.0 SBOM the fixed one. On top of that a person registers app images
(depth 5 with a branch), is refused a cycle, promotes 1.4.0 and revokes with and without cascade,
all through the CLI; the main job runs in-process before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from qlrf_pipelines.settings import BUNDLED_SITES_FILE, PACKAGE_DIR
from qlrf_pipelines.supply_chain.landing import land_file

from tests.conftest import run_refresh_job, sql

QLRF = str(Path(sys.executable).with_name("qlrf"))
SAMPLE_SUPPLY_CHAIN = PACKAGE_DIR / "sample_data" / "supply_chain"
IMPORTED_AT = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)  # older than the 7-day critical CVE window
UBUNTU = "ubuntu-22.04-base"


def qlrf(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "QLRF_HOME": str(home)}
    env.pop("QLRF_CONTROL_URL", None)
    done = subprocess.run([QLRF, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"qlrf {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def registry(tmp_path_factory, dagster_instance, prepared_manifest):
    home = tmp_path_factory.mktemp("qlrf-registry")
    for minute, path in enumerate(sorted(SAMPLE_SUPPLY_CHAIN.iterdir())):
        land_file(home / "lake", path, now=IMPORTED_AT + timedelta(minutes=minute))
    first = run_refresh_job(dagster_instance, home, BUNDLED_SITES_FILE)
    assert first.success
    cli = {
        "link_web": qlrf(home, "images", "link", "app-web@1.0.0", "--parent", f"{UBUNTU}@1.4.0",
                         "--user", "bob", "--allow-unknown", "--reason", "web tier image"),
        "link_api": qlrf(home, "images", "link", "app-api@1.0.0", "--parent", f"{UBUNTU}@1.3.0",
                         "--user", "bob", "--allow-unknown"),
        "link_api_patch": qlrf(home, "images", "link", "app-api@1.1.0", "--parent", "app-api@1.0.0",
                               "--relation", "patched_from", "--user", "bob", "--allow-unknown"),
        "cycle": qlrf(home, "images", "link", f"{UBUNTU}@1.0.0", "--parent", "app-web@1.0.0",
                      "--user", "bob", "--allow-unknown", check=False),
        "not_allowed": qlrf(home, "images", "promote", f"{UBUNTU}@1.4.0", "--to", "production",
                            "--user", "bob", "--reason", "try", check=False),
        "promote": qlrf(home, "images", "promote", f"{UBUNTU}@1.4.0", "--to", "production",
                        "--user", "alice", "--reason", "canary fleet healthy for 7 days"),
        "revoke_alone": qlrf(home, "images", "promote", "rhel-9-base@9.3.0", "--to", "revoked",
                             "--user", "alice", "--reason", "build host compromised"),
        "revoke_cascade": qlrf(home, "images", "promote", "app-api@1.0.0", "--to", "revoked", "--cascade",
                               "--user", "dave", "--reason", "leaked signing key", "--allow-unknown", "--json"),
        "tree": qlrf(home, "images", "tree", f"{UBUNTU}@1.2.0"),
    }
    second = run_refresh_job(dagster_instance, home, BUNDLED_SITES_FILE)
    assert second.success
    return home, second, cli


def test_lineage_of_depth_five_with_a_branch_in_the_tree_view(registry):
    home, _result, _cli = registry
    rows = sql(home, "SELECT image_id, depth, path, relation, status FROM v_image_lineage_tree "
                     f"WHERE root_image_id = '{UBUNTU}@1.0.0' ORDER BY depth, image_id")
    by_image = {r[0]: r for r in rows}
    chain = [f"{UBUNTU}@1.0.0", f"{UBUNTU}@1.1.0", f"{UBUNTU}@1.2.0", f"{UBUNTU}@1.3.0", f"{UBUNTU}@1.4.0"]
    assert by_image["app-web@1.0.0"][1:3] == (5, chain + ["app-web@1.0.0"])
    assert by_image["app-api@1.1.0"][1:4] == (5, chain[:4] + ["app-api@1.0.0", "app-api@1.1.0"], "patched_from")
    assert by_image[f"{UBUNTU}@1.3.0"][3] == "rebuilt_from"  # from the discovered tags
    assert by_image[f"{UBUNTU}@1.0.0"][1] == 0
    # registered-only images carry their promotion status
    assert by_image["app-api@1.0.0"][4] == "revoked" and by_image["app-web@1.0.0"][4] is None
    sources = dict(sql(home, "SELECT child_image_id, source FROM image_lineage WHERE child_image_id IN "
                             f"('app-web@1.0.0', '{UBUNTU}@1.4.0')"))
    assert sources == {"app-web@1.0.0": "registered", f"{UBUNTU}@1.4.0": "discovered"}


def test_cycle_and_missing_permission_are_refused(registry):
    _home, _result, cli = registry
    assert cli["cycle"].returncode == 1
    assert "would make a cycle" in cli["cycle"].stderr
    assert f"{UBUNTU}@1.0.0 -> {UBUNTU}@1.1.0" in cli["cycle"].stderr
    assert cli["not_allowed"].returncode == 1 and "lacks permission PROMOTE_IMAGES" in cli["not_allowed"].stderr


def test_promotion_moves_the_current_version_and_drift_follows(registry):
    home, _result, _cli = registry
    golden = {r[0]: r[1:] for r in sql(home, "SELECT image_id, status, status_source, is_current FROM golden_images "
                                             f"WHERE family IN ('{UBUNTU}', 'rhel-9-base')")}
    assert golden[f"{UBUNTU}@1.4.0"] == ("production", "promotion", True)
    assert golden[f"{UBUNTU}@1.3.0"] == ("production", "tags", False)
    assert golden["rhel-9-base@9.3.0"][:2] == ("revoked", "promotion")
    assert golden["rhel-9-base@9.4.0"] == ("production", "tags", True)
    behind = sql(home, "SELECT DISTINCT current_version FROM drift_items WHERE family = ? AND asset_version = '1.3.0' "
                       "AND status = 'open'", [UBUNTU])
    assert behind == [("1.4.0",)]
    revoked = sql(home, "SELECT DISTINCT drift_type FROM drift_items WHERE family = 'rhel-9-base' AND asset_version = '9.3.0' "
                   "AND status = 'open'")
    assert revoked == [("image_revoked",)]


def test_revoke_without_cascade_names_descendants_and_cascade_revokes_them(registry):
    home, _result, cli = registry
    assert "1 descendant image(s) keep their status: rhel-9-base@9.4.0" in cli["revoke_alone"].stdout
    cascade = json.loads(cli["revoke_cascade"].stdout)
    root, child = cascade["promotions"]
    assert (root["image_id"], root["to_status"], root["cascade_from"]) == ("app-api@1.0.0", "revoked", None)
    assert (child["image_id"], child["cascade_from"]) == ("app-api@1.1.0", root["promotion_id"])
    rows = sql(home, "SELECT image_id, to_status, promoted_by, cascade_from, is_latest FROM image_promotions "
                     "WHERE image_id LIKE 'app-api@%' ORDER BY promotion_id")
    assert rows == [("app-api@1.0.0", "revoked", "dave", None, True),
                    ("app-api@1.1.0", "revoked", "dave", root["promotion_id"], True)]


def test_cve_blast_radius_reaches_patched_descendants_not_fixed_versions(registry):
    home, _result, _cli = registry
    out = json.loads(qlrf(home, "blast-radius", "--cve", "CVE-2024-6387", "--format", "json").stdout)
    images = {i["image_id"]: i["evidence"] for i in out["images"]}
    assert images == {f"{UBUNTU}@1.1.0": "scanned", f"{UBUNTU}@1.2.0": "sbom"}
    expected = {r[0] for r in sql(home, "SELECT asset_id FROM assets WHERE image_id IN (?, ?) AND state <> 'terminated'",
                                  [f"{UBUNTU}@1.1.0", f"{UBUNTU}@1.2.0"])}
    reached = {a["asset_id"] for a in out["assets"]}
    assert reached == expected and len(expected) > 10
    fixed = {r[0] for r in sql(home, "SELECT asset_id FROM assets WHERE image_id IN (?, ?)",
                               [f"{UBUNTU}@1.3.0", f"{UBUNTU}@1.4.0"])}
    assert fixed and not (reached & fixed)
    production = sql(home, "SELECT count(DISTINCT asset_id) FROM v_cve_blast_radius "
                           "WHERE vulnerability_id = 'CVE-2024-6387' AND is_production")[0][0]
    assert out["production_assets"] == production > 0
    # the CLI's table macro starts its walk from that CVE only; the view walks every CVE
    whole_view = sql(home, "SELECT * FROM v_cve_blast_radius WHERE vulnerability_id = 'CVE-2024-6387' ORDER BY ALL")
    assert sql(home, "SELECT * FROM cve_blast_radius('cve-2024-6387') ORDER BY ALL") == whole_view
    table = qlrf(home, "blast-radius", "--cve", "CVE-2024-6387").stdout
    assert "Running assets by site:" in table and f"{len(expected)} running asset(s)" in table


def test_image_blast_radius_covers_every_descendant(registry):
    home, _result, _cli = registry
    out = json.loads(qlrf(home, "blast-radius", "--image", f"{UBUNTU}@1.3.0", "--format", "json").stdout)
    assert {i["image_id"]: i["depth"] for i in out["images"]} == {
        f"{UBUNTU}@1.3.0": 0, f"{UBUNTU}@1.4.0": 1, "app-api@1.0.0": 1, "app-web@1.0.0": 2, "app-api@1.1.0": 2,
    }
    unknown = qlrf(home, "blast-radius", "--image", "no-such-image@9", check=False)
    assert unknown.returncode == 1 and "not a golden image" in unknown.stderr


def test_image_checks_and_lineage_metadata_reach_dagster(registry):
    _home, result, cli = registry
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    provenance = evaluations["production_images_have_provenance_and_sbom"]
    assert provenance.passed is False and provenance.severity.value == "WARN"
    old_cve = evaluations["no_production_image_with_old_critical_fixable_cve"]
    assert old_cve.passed is False and old_cve.asset_key.path[-1] == "image_vulnerabilities"
    assert evaluations["no_lineage_cycles_image_lineage_"].passed is True
    trees = [
        m.metadata["lineage_tree"].value
        for m in result.asset_materializations_for_node("build_warehouse")
        if m.asset_key.path[-1] == "golden_images"
    ]
    assert trees and "patched_from → **app-api@1.1.0** (revoked)" in trees[0]
    assert f"- **{UBUNTU}@1.2.0**" in cli["tree"].stdout and "app-web@1.0.0" in cli["tree"].stdout
