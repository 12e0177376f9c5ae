"""Supply-chain imports reach the warehouse through the lake: land_file lands one snapshot per
imported file under site "supply-chain", and `dbt build` turns them into image_vulnerabilities,
image_components, image_builds and the v_image_vuln_summary view.

Arrange: the tiny hand-made lake of dbt_lake_fixture plus one registry site whose golden container
image `registry.example.com/golden/web-base:2024.05.1` is the tag the Trivy and Grype reports name
as an alias of the image digest they scanned, so every supply-chain row resolves to image_id
`web-base@2024.05.1`. Land the five fixture files, build; then land a re-scan by Trivy where the
libc6 CVE is fixed, build again. A lake with no import builds the tables empty.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from qlrf_pipelines.lake import snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.models import ImageRecord, version_sort_key
from qlrf_pipelines.supply_chain.landing import land_file
from tests.integration.dbt_lake_fixture import build_tiny_lake
from tests.integration.test_dbt_models import rows, run_dbt_build

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "supply_chain"
DIGEST = "sha256:9c4e1a7b2d3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
TAG_REF = "registry.example.com/golden/web-base:2024.05.1"
IMAGE_ID = "web-base@2024.05.1"
REGISTRY_SITE = "registry-golden"
REGISTRY_AT = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)

FIRST_AT = datetime(2026, 11, 3, 8, 0, tzinfo=timezone.utc)
# landing order: one minute apart so each file is its own snapshot
FILES = ("trivy-image.json", "grype-image.json", "spdx-2.3.json", "cyclonedx-1.5.json", "slsa-provenance.intoto.json")
LANDED_AT = {name: FIRST_AT + timedelta(minutes=i) for i, name in enumerate(FILES)}
RESCAN_AT = datetime(2026, 11, 4, 8, 0, tzinfo=timezone.utc)

SUPPLY_CHAIN_TABLES = ("image_vulnerabilities", "image_components", "image_builds", "v_image_vuln_summary")


def publish_registry_site(lake_dir: Path) -> None:
    """A site whose discovery found the golden web-base image by its tag reference."""
    snapshot_id = snapshot_id_for(REGISTRY_AT)
    image = ImageRecord(
        provider_image_id=TAG_REF, site_id=REGISTRY_SITE, provider="kubernetes", name="web-base:2024.05.1",
        discovered_at=REGISTRY_AT, family="web-base", version="2024.05.1",
        version_key=version_sort_key("2024.05.1"), status="production", platform="linux", os="debian-12",
        created_at=datetime(2024, 5, 14, 9, 5, tzinfo=timezone.utc),
    )
    site = {"site_id": REGISTRY_SITE, "provider": "kubernetes", "name": "Golden image registry",
            "location": "registry", "environment": "production", "account": "registry",
            "endpoint_url": None, "asset_count": 0, "image_count": 1}
    write_snapshot(lake_dir, REGISTRY_SITE, snapshot_id, {
        "sites": to_table("sites", [site], snapshot_id),
        "assets": to_table("assets", [], snapshot_id),
        "images": to_table("images", [image], snapshot_id),
    }, remote=None)


def trivy_rescan(tmp: Path) -> Path:
    """The Trivy report once libc6 is upgraded: CVE-2024-2961 is gone, the rest is still open."""
    doc = json.loads((FIXTURES / "trivy-image.json").read_text())
    doc["CreatedAt"] = "2024-05-21T09:00:00Z"
    for result in doc["Results"]:
        result["Vulnerabilities"] = [v for v in result.get("Vulnerabilities") or [] if v["VulnerabilityID"] != "CVE-2024-2961"]
    path = tmp / "trivy-rescan.json"
    path.write_text(json.dumps(doc))
    return path


def build(tmp: Path, lake_dir: Path, warehouse: Path) -> None:
    run_dbt_build(tmp, lake_dir, warehouse)


@dataclass
class SupplyChain:
    first_build: Path
    rescan_build: Path
    import_ids: dict[str, str]


@pytest.fixture(scope="module")
def supply_chain(tmp_path_factory) -> SupplyChain:
    tmp = tmp_path_factory.mktemp("qlrf-supply-chain")
    lake = build_tiny_lake(tmp / "lake")
    publish_registry_site(lake.lake_dir)
    import_ids = {}
    for name in FILES:
        landed = land_file(lake.lake_dir, FIXTURES / name, now=LANDED_AT[name])
        assert not landed.duplicate and landed.image_ref == DIGEST
        import_ids[name] = landed.import_id
    warehouse = tmp / "warehouse.duckdb"
    build(tmp, lake.lake_dir, warehouse)
    first = tmp / "first-build" / "warehouse.duckdb"  # same file name: views name the catalog
    first.parent.mkdir()
    shutil.copyfile(warehouse, first)

    rescan = land_file(lake.lake_dir, trivy_rescan(tmp), now=RESCAN_AT)
    assert not rescan.duplicate and rescan.vulnerabilities == 4
    import_ids["rescan"] = rescan.import_id
    build(tmp, lake.lake_dir, warehouse)
    return SupplyChain(first, warehouse, import_ids)


@pytest.fixture(scope="module")
def no_import_warehouse(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("qlrf-no-supply-chain")
    lake = build_tiny_lake(tmp / "lake")
    warehouse = tmp / "warehouse.duckdb"
    build(tmp, lake.lake_dir, warehouse)
    assert not (lake.lake_dir / "raw" / "supply_chain_imports").exists()
    return warehouse


def vulnerabilities(warehouse: Path, source: str) -> dict[tuple[str, str], tuple]:
    return {
        (vid, pkg): tuple(rest)
        for vid, pkg, *rest in rows(
            warehouse,
            "SELECT vulnerability_id, package_name, severity, is_fixable, fixed_version, image_id, image_ref "
            "FROM image_vulnerabilities WHERE source = ?",
            [source],
        )
    }


# ----------------------------------------------------------------- first build
def test_contract_tables_in_main_staging_in_staging(supply_chain):
    tables = {
        (schema, name): kind
        for schema, name, kind in rows(supply_chain.first_build, "SELECT table_schema, table_name, table_type FROM information_schema.tables")
    }
    for table in ("image_vulnerabilities", "image_components", "image_builds"):
        assert tables[("main", table)] == "BASE TABLE"
    assert tables[("main", "v_image_vuln_summary")] == "VIEW"
    assert ("staging", "stg_supply_chain_imports") in tables
    assert ("staging", "int_supply_chain_image_ids") in tables


def test_trivy_findings_with_severities_fixability_and_image_id(supply_chain):
    assert vulnerabilities(supply_chain.first_build, "trivy") == {
        ("CVE-2024-2961", "libc6"): ("high", True, "2.36-9+deb12u7", IMAGE_ID, DIGEST),
        ("CVE-2023-45853", "zlib1g"): ("critical", False, None, IMAGE_ID, DIGEST),
        ("CVE-2011-3374", "apt"): ("low", False, None, IMAGE_ID, DIGEST),
        ("GHSA-grv7-fg5c-xmjg", "braces"): ("medium", True, "3.0.3", IMAGE_ID, DIGEST),
        ("CVE-2024-4068", "micromatch"): ("unknown", True, "4.0.8, 5.0.0", IMAGE_ID, DIGEST),
    }


def test_grype_findings_are_kept_beside_trivy(supply_chain):
    assert vulnerabilities(supply_chain.first_build, "grype") == {
        ("CVE-2024-2961", "libc6"): ("high", True, "2.36-9+deb12u7", IMAGE_ID, DIGEST),
        ("CVE-2023-45853", "zlib1g"): ("negligible", False, None, IMAGE_ID, DIGEST),
        ("GHSA-grv7-fg5c-xmjg", "braces"): ("high", True, "3.0.3", IMAGE_ID, DIGEST),
        ("CVE-2022-3219", "gpgv"): ("negligible", False, None, IMAGE_ID, DIGEST),
    }
    (grype,) = rows(supply_chain.first_build, "SELECT DISTINCT source_version, import_id, last_seen FROM image_vulnerabilities WHERE source = 'grype'")
    assert grype == ("0.77.4", supply_chain.import_ids["grype-image.json"], LANDED_AT["grype-image.json"])


def test_first_seen_is_earliest_import_of_any_scanner(supply_chain):
    seen = {
        (source, vid): (first, last)
        for source, vid, first, last in rows(
            supply_chain.first_build, "SELECT source, vulnerability_id, first_seen, last_seen FROM image_vulnerabilities"
        )
    }
    trivy_at, grype_at = LANDED_AT["trivy-image.json"], LANDED_AT["grype-image.json"]
    assert seen[("grype", "CVE-2024-2961")] == (trivy_at, grype_at)  # trivy saw it first
    assert seen[("grype", "CVE-2022-3219")] == (grype_at, grype_at)  # only grype reports it
    assert seen[("trivy", "CVE-2011-3374")] == (trivy_at, trivy_at)


def test_summary_counts_each_finding_once_at_its_highest_severity(supply_chain):
    (summary,) = rows(
        supply_chain.first_build,
        "SELECT image_ref, image_id, critical_count, high_count, medium_count, low_count, other_count, total_count, "
        "fixable_count, fixable_critical_count, fixable_high_count, oldest_critical_first_seen FROM v_image_vuln_summary",
    )
    # critical: zlib CVE-2023-45853 (trivy critical, grype negligible); high: libc6 CVE-2024-2961 and
    # braces GHSA (trivy medium, grype high); low: apt; other: micromatch (unknown), gpgv (negligible)
    assert summary == (DIGEST, IMAGE_ID, 1, 2, 0, 1, 2, 6, 3, 0, 2, LANDED_AT["trivy-image.json"])


def test_components_of_both_sboms_with_licenses(supply_chain):
    components = {
        (source, name): rest
        for source, name, *rest in rows(
            supply_chain.first_build,
            "SELECT source, name, version, purl, licenses, license_expression, component_type, image_id, import_id FROM image_components",
        )
    }
    spdx, cdx = supply_chain.import_ids["spdx-2.3.json"], supply_chain.import_ids["cyclonedx-1.5.json"]
    libc_purl = "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    assert components == {
        ("spdx", "libc6"): ["2.36-9+deb12u4", libc_purl, ["GPL-2.0-only AND LGPL-2.1-only"], "GPL-2.0-only AND LGPL-2.1-only", "library", IMAGE_ID, spdx],
        ("spdx", "zlib1g"): ["1:1.2.13.dfsg-1", "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib", ["Zlib"], "Zlib", None, IMAGE_ID, spdx],
        ("spdx", "braces"): ["3.0.2", "pkg:npm/braces@3.0.2", ["MIT"], "MIT", "library", IMAGE_ID, spdx],
        ("spdx", "openssl"): ["3.0.11-1~deb12u2", None, ["Apache-2.0"], "Apache-2.0", None, IMAGE_ID, spdx],
        ("cyclonedx", "braces"): ["3.0.2", "pkg:npm/braces@3.0.2", ["MIT"], "MIT", "library", IMAGE_ID, cdx],
        ("cyclonedx", "libc6"): ["2.36-9+deb12u4", libc_purl, ["GPL-2.0-only", "LGPL-2.1-only"], "GPL-2.0-only AND LGPL-2.1-only", "library", IMAGE_ID, cdx],
        ("cyclonedx", "openssl"): ["3.0.11-1~deb12u2", "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12", ["Apache-2.0 OR OpenSSL"], "Apache-2.0 OR OpenSSL", "library", IMAGE_ID, cdx],
        ("cyclonedx", "debian"): ["12", None, [], None, "operating-system", IMAGE_ID, cdx],
    }


def test_build_provenance(supply_chain):
    (build_row,) = rows(
        supply_chain.first_build,
        "SELECT image_ref, image_id, builder_id, source_repo, source_ref, source_commit, predicate_type, "
        "started_on, finished_on, json_array_length(materials_json::json), import_id FROM image_builds",
    )
    assert build_row == (
        DIGEST, IMAGE_ID, "https://github.com/actions/runner/github-hosted", "https://github.com/example-org/golden-images",
        "refs/heads/main", "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "https://slsa.dev/provenance/v1",
        datetime(2024, 5, 14, 8, 51, 7, tzinfo=timezone.utc), datetime(2024, 5, 14, 9, 4, 33, tzinfo=timezone.utc),
        2, supply_chain.import_ids["slsa-provenance.intoto.json"],
    )


# ----------------------------------------------------------------- after the Trivy re-scan
def test_rescan_replaces_the_earlier_trivy_findings(supply_chain):
    trivy = vulnerabilities(supply_chain.rescan_build, "trivy")
    assert set(trivy) == {
        ("CVE-2023-45853", "zlib1g"), ("CVE-2011-3374", "apt"), ("GHSA-grv7-fg5c-xmjg", "braces"), ("CVE-2024-4068", "micromatch"),
    }
    assert rows(supply_chain.rescan_build, "SELECT DISTINCT import_id, last_seen FROM image_vulnerabilities WHERE source = 'trivy'") == [
        (supply_chain.import_ids["rescan"], RESCAN_AT)
    ]
    # grype's latest scan is untouched and still reports the libc6 CVE
    assert len(vulnerabilities(supply_chain.rescan_build, "grype")) == 4


def test_first_seen_of_a_still_open_cve_is_the_first_import(supply_chain):
    (first_seen,) = rows(
        supply_chain.rescan_build,
        "SELECT first_seen FROM image_vulnerabilities WHERE source = 'trivy' AND vulnerability_id = 'CVE-2023-45853'",
    )
    assert first_seen == (LANDED_AT["trivy-image.json"],)


def test_summary_after_rescan(supply_chain):
    (summary,) = rows(
        supply_chain.rescan_build,
        "SELECT critical_count, high_count, total_count, fixable_count, oldest_critical_first_seen FROM v_image_vuln_summary",
    )
    # libc6 CVE-2024-2961 is fixed for trivy but grype's latest scan still reports it
    assert summary == (1, 2, 6, 3, LANDED_AT["trivy-image.json"])


# ----------------------------------------------------------------- no import yet
def test_a_lake_without_imports_builds_empty_tables(no_import_warehouse):
    for table in SUPPLY_CHAIN_TABLES:
        assert rows(no_import_warehouse, f"SELECT count(*) FROM main.{table}") == [(0,)], table
    columns = [name for (name,) in rows(
        no_import_warehouse,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = 'image_vulnerabilities' "
        "ORDER BY ordinal_position",
    )]
    assert columns[:4] == ["image_ref", "image_id", "vulnerability_id", "severity"]
    assert {"is_fixable", "first_seen", "last_seen", "import_id", "source"} <= set(columns)
