"""The compliance catalog: the bundled frameworks and checks, the user's files merged over them,
and validation errors that name the file and the id."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qlrf_pipelines.compliance.catalog import (
    CATALOG_ENV,
    CatalogError,
    catalog_paths,
    load_catalog,
    parse_catalog_file,
)

BUNDLED = load_catalog(environ={})

EXPECTED_CONTROLS = {
    "nist-800-53": ["CM-2", "CM-6", "CM-8", "RA-5", "SI-2", "CP-4", "CP-9", "CP-10"],
    "soc2": ["CC6.1", "CC6.6", "CC6.8", "CC7.1", "CC7.2", "CC8.1"],
}
DRIFT_RULE_IDS = {
    "QLRF-ENC-001", "QLRF-NET-001", "QLRF-K8S-001", "QLRF-VSP-001", "QLRF-EOL-001", "QLRF-TAG-001",
    "QLRF-SIZE-001", "QLRF-BAK-001",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bundled_frameworks_and_controls():
    assert set(BUNDLED.frameworks) == {"cis-qlrf", "soc2", "nist-800-53"}
    for framework_id, controls in EXPECTED_CONTROLS.items():
        assert list(BUNDLED.frameworks[framework_id].controls) == controls
    assert len(BUNDLED.frameworks["cis-qlrf"].controls) >= 5
    for mapping in BUNDLED.mappings():
        assert mapping.control.title and mapping.control.description
        assert mapping.check.id in BUNDLED.checks
    nist = BUNDLED.frameworks["nist-800-53"].controls
    assert nist["CM-2"].checks == ["no_open_high_image_drift"]
    assert set(nist["CM-8"].checks) == {"inventory_fresh", "assets_traced_to_golden_images"}
    assert nist["CP-9"].checks == ["config_backup_policy_tagged"]
    assert BUNDLED.frameworks["soc2"].controls["CC8.1"].checks[0] == "executed_tasks_were_approved"


def test_bundled_checks():
    checks = BUNDLED.checks
    assert checks["inventory_fresh"].blocking and checks["inventory_fresh"].asset == "sites"
    assert [c for c in checks.values() if c.blocking] == [checks["inventory_fresh"]]
    assert {checks[c].kind for c in ("assets_traced_to_golden_images", "vm_disks_encrypted", "no_public_ip_in_production")} == {"gx"}
    assert checks["no_public_ip_in_production"].expectations[0].type == "expect_column_values_to_be_null"
    assert {r for c in checks.values() if c.kind == "drift_rules" for r in c.rule_ids} == DRIFT_RULE_IDS
    assert checks["dr_drills_recent"].requires and checks["dr_drills_recent"].not_assessed_reason
    # Every check id is usable as a Dagster asset check name, and no check is left unmapped.
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", check_id) for check_id in checks)
    assert all(BUNDLED.controls_of(check_id) for check_id in checks)


def test_bundled_gx_suites_build_and_validate_without_network(monkeypatch):
    """GX runs in-memory and never phones home: any connection attempt fails this test."""
    import socket

    import pandas as pd

    from qlrf_pipelines.compliance.gx_suite import GxValidator

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    validator = GxValidator()
    assert validator.context.config.analytics_enabled is False
    for check in BUNDLED.checks.values():
        if check.kind == "gx":
            suite = validator.suite(check.id, check.expectations)
            assert len(suite.expectations) == len(check.expectations)
    frame = pd.DataFrame({"asset_id": ["a", "b"], "public_ip": [None, "1.2.3.4"]})
    outcome = validator.validate("no_public_ip", frame, BUNDLED.checks["no_public_ip_in_production"].expectations)
    assert outcome.failing == {"b": ["expect_column_values_to_be_null: public_ip = '1.2.3.4'"]} and not outcome.errors


def test_user_file_adds_replaces_and_extends(tmp_path):
    user = write(tmp_path, "ours.yaml", """
version: 1
checks:
  - id: inventory_fresh
    title: Fresher inventory
    description: Sites discovered within 6 hours.
    kind: sql
    asset: sites
    blocking: true
    params: {max_age_hours: 6}
    population: select site_id as asset_id from sites
    failing: select site_id as asset_id from sites where false
  - id: every_vm_named
    title: VMs are named
    description: Every VM has a name.
    kind: gx
    asset: assets
    population: select asset_id, name from assets where kind = 'vm'
    expectations:
      - type: expect_column_values_to_not_be_null
        kwargs: {column: name}
framework: {id: soc2}
controls:
  - id: CC6.1
    title: Logical access security
    description: Encryption and naming.
    checks: [vm_disks_encrypted, every_vm_named]
""")
    catalog = load_catalog([user], environ={})
    assert catalog.checks["inventory_fresh"].params == {"max_age_hours": 6}
    assert catalog.source("check", "inventory_fresh") == str(user)
    assert catalog.frameworks["soc2"].controls["CC6.1"].checks == ["vm_disks_encrypted", "every_vm_named"]
    assert list(catalog.frameworks["soc2"].controls)[0] == "CC6.1", "a replaced control keeps its place"
    assert catalog.sha256 != BUNDLED.sha256
    assert load_catalog(environ={}).sha256 == BUNDLED.sha256, "the digest depends on content only"


def test_user_framework_from_env_folder(tmp_path):
    folder = tmp_path / "catalog.d"
    folder.mkdir()
    write(folder, "iso.yaml", """
framework:
  id: iso-27001
  title: ISO/IEC 27001:2022 Annex A (subset)
  version: "2022"
  description: Organisational and technological controls.
controls:
  - id: A.8.9
    title: Configuration management
    description: Configurations are established, documented, implemented and monitored.
    checks: [config_required_tags, no_open_high_image_drift]
""")
    assert catalog_paths(environ={CATALOG_ENV: str(folder)}) == [folder / "iso.yaml"]
    catalog = load_catalog(environ={CATALOG_ENV: str(folder)})
    assert list(catalog.frameworks) == ["cis-qlrf", "nist-800-53", "soc2", "iso-27001"]
    assert catalog.controls_of("config_required_tags")[-1] == ("iso-27001", "A.8.9")


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "framework: {id: soc2}\ncontrols:\n  - {id: CC9.9, title: T, description: D, checks: [no_such_check]}\n",
            r"bad\.yaml: framework 'soc2' control 'CC9\.9': unknown check 'no_such_check'",
        ),
        (
            "checks:\n  - {id: broken_check, title: T, description: D, kind: gx, asset: assets, population: select 1}\n",
            r"bad\.yaml: check 'broken_check' \(entry 1\), field \(whole entry\): .*a gx check needs `expectations`",
        ),
        (
            "checks:\n  - {id: odd_kind, title: T, description: D, kind: shell, asset: assets}\n",
            r"bad\.yaml: check 'odd_kind' \(entry 1\), field kind: ",
        ),
        (
            "checks:\n  - {id: Bad-Id, title: T, description: D, kind: drift_rules, asset: drift_items, rule_ids: [QLRF-X-1]}\n",
            r"bad\.yaml: check 'Bad-Id' \(entry 1\), field id: .*snake case",
        ),
        (
            "checks:\n  - {id: gx_typo, title: T, description: D, kind: gx, asset: assets, population: select 1,"
            " expectations: [{type: ExpectColumnValuesToBeNull}]}\n",
            r"bad\.yaml: check 'gx_typo' \(entry 1\), field expectations\.0\.type: ",
        ),
        (
            "framework: {id: nope}\ncontrols: []\n",
            r"bad\.yaml: framework 'nope': .*no bundled or earlier file defines it",
        ),
        ("rules: []\n", r"bad\.yaml: unknown top-level key 'rules'"),
        (
            "checks:\n  - {id: twice, title: T, description: D, kind: drift_rules, asset: drift_items, rule_ids: [QLRF-A-1]}\n"
            "  - {id: twice, title: T, description: D, kind: drift_rules, asset: drift_items, rule_ids: [QLRF-A-1]}\n",
            r"bad\.yaml: check 'twice': duplicate id in this file",
        ),
        (
            "checks:\n  - {id: p, title: T, description: D, kind: sql, asset: sites, population: s, failing: f,"
            " params: {evaluated_at: 1}}\n",
            r"bad\.yaml: check 'p' \(entry 1\), field params: ",
        ),
    ],
)
def test_errors_name_the_file_and_the_id(tmp_path, text, expected):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(CatalogError, match=expected):
        load_catalog([path], environ={})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(CatalogError, match=r"nothere\.yaml: compliance catalog file not found"):
        load_catalog([tmp_path / "nothere.yaml"], environ={})
    with pytest.raises(CatalogError, match=r"x\.yaml: not valid YAML"):
        parse_catalog_file("checks: [", "x.yaml")
