"""Desired-state drift rules: validation (errors name the file and the rule), merging of the
bundled rules with the user's files, the Arrow rows, and landing in the lake only on change."""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from qlrf_pipelines.drift.landing import CONFIG_SITE_ID, land_drift_rules, latest_rule_set_sha256
from qlrf_pipelines.drift.rules import (
    BUNDLED_SOURCE,
    CHECK_TYPES,
    DRIFT_RULES_ENV,
    DriftRulesError,
    check_glob,
    glob_regex,
    load_rule_set,
    parse_rule_file,
    rule_paths,
    rule_rows,
)
from qlrf_pipelines.lake import list_snapshots
from qlrf_pipelines.models.records import ENTITY_SCHEMAS

BUNDLED_IDS = [
    "QLRF-TAG-001", "QLRF-SIZE-001", "QLRF-ENC-001", "QLRF-NET-001",
    "QLRF-K8S-001", "QLRF-VSP-001", "QLRF-EOL-001", "QLRF-BAK-001",
]

RULE = """
  - id: {id}
    description: {description}
    severity: {severity}
    scope: {scope}
    check: {check}
"""


def rule_file(tmp_path: Path, name: str, *rules: dict, header: str = "version: 1\nrules:\n") -> Path:
    text = header + "".join(
        RULE.format(**{"description": "a rule", "severity": "high", "scope": "{}", **rule}) for rule in rules
    )
    path = tmp_path / name
    path.write_text(text)
    return path


def error_for(tmp_path: Path, *rules: dict) -> str:
    path = rule_file(tmp_path, "bad.yaml", *rules)
    with pytest.raises(DriftRulesError) as raised:
        load_rule_set([path], environ={})
    return str(raised.value)


# -- the bundled rules ---------------------------------------------------------------------------

def test_bundled_rules_are_exactly_the_documented_ids_and_valid():
    rule_set = load_rule_set(environ={})
    assert [r.rule.id for r in rule_set.rules] == BUNDLED_IDS
    assert {r.source for r in rule_set.rules} == {BUNDLED_SOURCE}
    assert all(r.rule.enabled for r in rule_set.rules)
    assert {r.rule.check.type for r in rule_set.rules} == set(CHECK_TYPES)


def test_bundled_end_of_life_dates_follow_the_vendors():
    releases = {r.match: r.end_of_life for r in load_rule_set(environ={}).rule("QLRF-EOL-001").check.releases}
    assert releases["*ubuntu*18.04*"] == date(2023, 5, 31)
    assert releases["*ubuntu*20.04*"] == date(2025, 5, 31)
    assert releases["*centos*[ -]7[. -]*"] == date(2024, 6, 30)
    assert releases["*red hat enterprise linux*[ -]7[. -]*"] == date(2024, 6, 30)
    assert releases["*windows?server?2012*"] == date(2023, 10, 10)
    assert releases["*debian*[ -]10[. -]*"] == date(2024, 6, 30)


def test_bundled_rule_parameters():
    rules = load_rule_set(environ={})
    size = rules.rule("QLRF-SIZE-001")
    assert {"m6i.*", "c6i.*", "r6i.*", "t3.*", "standard_d*", "standard_e*", "standard_b*", "n2-*", "e2-*", "c3-*"} <= set(
        size.check.patterns
    )
    assert size.scope.environments == ["production"]
    tags = rules.rule("QLRF-TAG-001").check
    assert tags.tags == {"owner": [], "cost-center": []}
    assert tags.optional_tags == {"environment": ["development", "production", "staging"]}
    assert rules.rule("QLRF-BAK-001").check.tags == {"backup-policy": []}
    assert rules.rule("QLRF-ENC-001").check.minimum == "platform_managed"


# -- validation ------------------------------------------------------------------------------------

def test_unknown_check_type_names_file_rule_and_choices(tmp_path):
    message = error_for(tmp_path, {"id": "ACME-1", "check": "{type: firewall_open}"})
    assert f"{tmp_path / 'bad.yaml'}: rule 'ACME-1' (entry 1), field check: unknown check type 'firewall_open'" in message
    assert "required_tags" in message and "os_end_of_life" in message


def test_bad_severity(tmp_path):
    message = error_for(tmp_path, {"id": "ACME-1", "severity": "urgent", "check": "{type: no_public_ip}"})
    assert "rule 'ACME-1' (entry 1), field severity" in message and "'critical'" in message


def test_duplicate_id_in_one_file(tmp_path):
    message = error_for(
        tmp_path,
        {"id": "ACME-1", "check": "{type: no_public_ip}"},
        {"id": "ACME-1", "check": "{type: vsphere_tools_running}"},
    )
    assert message == f"{tmp_path / 'bad.yaml'}: rule 'ACME-1': duplicate rule id in this file"


@pytest.mark.parametrize("pattern", ["m5.[abc", "m5]", "[]", "", "[!]x"])
def test_bad_glob(tmp_path, pattern):
    message = error_for(
        tmp_path, {"id": "ACME-1", "check": f"{{type: allowed_instance_types, patterns: ['{pattern}']}}"}
    )
    assert "rule 'ACME-1' (entry 1), field check.patterns" in message


@pytest.mark.parametrize("value", ["2024-13-01", "June 2024", "2024-02-30"])
def test_bad_end_of_life_date(tmp_path, value):
    check = f"{{type: os_end_of_life, releases: [{{match: 'ubuntu 18.04*', end_of_life: '{value}'}}]}}"
    message = error_for(tmp_path, {"id": "ACME-EOL", "check": check})
    assert "rule 'ACME-EOL' (entry 1), field check.releases.0.end_of_life" in message


def test_unquoted_bad_date_is_named_too(tmp_path):
    # PyYAML would raise a bare ValueError on an unquoted 2024-13-01; the loader keeps it as text
    message = error_for(
        tmp_path,
        {"id": "ACME-EOL", "check": "{type: os_end_of_life, releases: [{match: 'x*', end_of_life: 2024-13-01}]}"},
    )
    assert "rule 'ACME-EOL' (entry 1), field check.releases.0.end_of_life" in message


def test_every_problem_of_a_file_is_reported(tmp_path):
    message = error_for(
        tmp_path,
        {"id": "lower-case", "check": "{type: no_public_ip}"},
        {"id": "ACME-2", "check": "{type: disk_encryption, minimum: hardware}"},
        {"id": "ACME-3", "check": "{type: required_tags}"},
        {"id": "ACME-4", "check": "{type: no_public_ip, extra: 1}"},
        {"id": "ACME-5", "scope": "{kinds: [container]}", "check": "{type: no_public_ip}"},
    )
    assert "rule 'lower-case' (entry 1), field id" in message
    assert "rule 'ACME-2' (entry 2), field check.minimum" in message
    assert "rule 'ACME-3' (entry 3), field check: Value error, required_tags needs `tags` or `optional_tags`" in message
    assert "rule 'ACME-4' (entry 4), field check.extra" in message
    assert "rule 'ACME-5' (entry 5), field scope.kinds.0" in message


def test_file_level_errors(tmp_path):
    cases = {
        "not: [valid": "not valid YAML",
        "- just a list": "expected a mapping",
        "version: 2\nrules: []": "only version 1",
        "version: 1\npolicies: []": "unknown top-level key 'policies'",
    }
    for text, expected in cases.items():
        with pytest.raises(DriftRulesError, match=expected) as raised:
            parse_rule_file(text, "mine.yaml")
        assert str(raised.value).startswith("mine.yaml: ")
    with pytest.raises(DriftRulesError, match="drift rules file not found"):
        load_rule_set([tmp_path / "missing.yaml"], environ={})


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("rhel 9 ", "*rhel[ -]9[. -]*"), ("rhel 90 ", "*rhel[ -]9[. -]*"), ("rhel-9-server ", "*rhel[ -]9[. -]*"),
        ("red hat enterprise linux ", "*red hat enterprise linux*[ -]6[. -]*"), ("debian 12 ", "*debian*[ -]9[. -]*"),
        ("m5.large", "m5.*"), ("m5xlarge", "m5.*"), ("a+b(c)|d", "a+b(c)|d"), ("x^y", "x[!^]y"), ("xay", "x[!^]y"),
        ("standard_d4s_v5", "standard_d*"), ("ab", "a?"), ("a", "a?"), ("c3-standard-8", "c[0-9]-*"),
    ],
)
def test_globs_match_like_fnmatch_in_duckdb(text, pattern):
    # DuckDB's own GLOB gets several of these wrong (character classes followed by `*`), so the
    # warehouse matches the landed regular expression instead.
    import fnmatch

    import duckdb

    (matched,) = duckdb.connect().execute("SELECT regexp_full_match(?, ?)", [text, glob_regex(pattern)]).fetchone()
    assert matched == fnmatch.fnmatchcase(text, pattern)


@pytest.mark.parametrize(
    ("os_text", "end_of_life"),
    [
        ("CentOS 7 (64-bit)", date(2024, 6, 30)), ("CentOS Linux 7.9.2009", date(2024, 6, 30)),
        ("Red Hat Enterprise Linux 9 (64-bit)", date(2032, 5, 31)), ("rhel-7-server", date(2024, 6, 30)),
        ("redhat 9.4", date(2032, 5, 31)), ("Ubuntu 18.04.6 LTS", date(2023, 5, 31)),
        ("ubuntu-2204-lts", date(2027, 4, 30)), ("debian-12-bookworm", date(2028, 6, 30)), ("debian 10", date(2024, 6, 30)),
        ("Microsoft Windows Server 2012 R2 (64-bit)", date(2023, 10, 10)),
        ("windows-server-2022-dc", date(2031, 10, 14)),
        ("Red Hat Enterprise Linux", None), ("Linux/UNIX", None), ("RHEL 90", None), ("Ubuntu Linux (64-bit)", None),
    ],
)
def test_bundled_end_of_life_release_for_provider_os_texts(os_text, end_of_life):
    import fnmatch

    releases = load_rule_set(environ={}).rule("QLRF-EOL-001").check.releases
    first = next((r for r in releases if fnmatch.fnmatchcase(os_text.lower() + " ", r.match)), None)
    assert (first.end_of_life if first else None) == end_of_life


def test_glob_checker():
    assert check_glob("Standard_D*") == "standard_d*"
    assert check_glob("*rhel[ -]9[. ]*") == "*rhel[ -]9[. ]*"
    assert check_glob("m[!x]5.*") == "m[!x]5.*"


def test_tags_and_scope_are_case_insensitive(tmp_path):
    path = rule_file(
        tmp_path, "mine.yaml",
        {
            "id": "ACME-TAG",
            "scope": "{environments: [Production], tags: {Tier: Web, Level: 1}}",
            "check": "{type: required_tags, tags: {Owner: any, Env: [Prod, Staging]}}",
        },
    )
    rule = load_rule_set([path], environ={}).rule("ACME-TAG")
    assert rule.scope.environments == ["production"]
    assert rule.scope.tags == {"tier": "web", "level": "1"}
    assert rule.check.tags == {"owner": [], "env": ["prod", "staging"]}
    duplicate = rule_file(
        tmp_path, "dup.yaml", {"id": "ACME-TAG", "check": "{type: required_tags, tags: {Owner: any, owner: any}}"}
    )
    with pytest.raises(DriftRulesError, match="given twice"):
        load_rule_set([duplicate], environ={})


# -- merging -----------------------------------------------------------------------------------------

def test_user_rule_replaces_the_bundled_one_and_adds_new_ones(tmp_path):
    path = rule_file(
        tmp_path, "mine.yaml",
        {"id": "QLRF-NET-001", "severity": "critical", "scope": "{environments: [production, dr]}",
         "check": "{type: no_public_ip}"},
        {"id": "ACME-001", "check": "{type: vsphere_tools_running}"},
    )
    rule_set = load_rule_set([path], environ={})
    ids = [r.rule.id for r in rule_set.rules]
    assert ids == BUNDLED_IDS + ["ACME-001"]  # the replaced rule keeps its place
    net = next(r for r in rule_set.rules if r.rule.id == "QLRF-NET-001")
    assert (net.rule.severity, net.rule.scope.environments, net.source) == ("critical", ["production", "dr"], str(path))


def test_enabled_false_disables_and_a_later_file_wins(tmp_path):
    off = tmp_path / "off.yaml"
    off.write_text("version: 1\nrules:\n  - {id: QLRF-VSP-001, enabled: false}\n  - {id: QLRF-EOL-001, enabled: false}\n")
    on = tmp_path / "on.yaml"
    on.write_text("version: 1\nrules:\n  - {id: QLRF-EOL-001, enabled: true}\n")
    rule_set = load_rule_set([on], environ={DRIFT_RULES_ENV: str(off)})  # env first, then the paths given
    enabled = {r.id for r in rule_set.enabled}
    assert "QLRF-VSP-001" not in enabled and "QLRF-EOL-001" in enabled
    assert rule_set.rule("QLRF-VSP-001").severity == "medium"  # a toggle keeps the rest of the rule


def test_toggle_of_an_unknown_id_is_an_error(tmp_path):
    path = tmp_path / "off.yaml"
    path.write_text("version: 1\nrules:\n  - {id: ACME-404, enabled: false}\n")
    with pytest.raises(DriftRulesError, match=r"off.yaml: rule 'ACME-404': `enabled` alone refers to an earlier rule"):
        load_rule_set([path], environ={})


def test_rule_paths_from_env_and_config(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    environ = {DRIFT_RULES_ENV: f"{a}{os.pathsep}{os.pathsep}{b}"}
    assert rule_paths([str(b), tmp_path / "c.yaml"], environ) == [a, b, tmp_path / "c.yaml"]
    assert rule_paths((), {}) == []


def test_digest_changes_with_content_only(tmp_path):
    bundled = load_rule_set(environ={})
    assert load_rule_set(environ={}).sha256 == bundled.sha256
    same = rule_file(
        tmp_path, "same.yaml",
        {"id": "QLRF-NET-001", "description": "Production VMs have no public IP address; they are reached through "
         "load balancers or bastions.", "scope": "{environments: [production], kinds: [vm]}",
         "check": "{type: no_public_ip}"},
    )
    assert load_rule_set([same], environ={}).sha256 == bundled.sha256  # same content, other source
    changed = rule_file(tmp_path, "changed.yaml", {"id": "QLRF-NET-001", "check": "{type: no_public_ip}"})
    assert load_rule_set([changed], environ={}).sha256 != bundled.sha256


# -- rows and landing ----------------------------------------------------------------------------------

def test_rule_rows_are_typed_columns():
    rule_set = load_rule_set(environ={})
    rows = {row["rule_id"]: row for row in rule_rows(rule_set)}
    assert set(rows) == set(BUNDLED_IDS)
    assert {row["rule_set_sha256"] for row in rows.values()} == {rule_set.sha256}
    tag = rows["QLRF-TAG-001"]
    assert tag["required_tags"] == [{"key": "cost-center", "allowed": []}, {"key": "owner", "allowed": []}]
    assert tag["optional_tags"] == [{"key": "environment", "allowed": ["development", "production", "staging"]}]
    assert tag["scope_kinds"] == ["vm", "node"] and tag["scope_providers"] == []
    assert tag["instance_type_patterns"] is None and tag["os_releases"] is None
    assert rows["QLRF-ENC-001"]["minimum_encryption"] == "platform_managed"
    bionic = next(r for r in rows["QLRF-EOL-001"]["os_releases"] if r["match"] == "*ubuntu*18.04*")
    assert bionic == {"match": "*ubuntu*18.04*", "regex": ".*ubuntu.*18\\.04.*", "end_of_life": date(2023, 5, 31)}
    assert rows["QLRF-SIZE-001"]["instance_type_regexes"][0] == "m5\\..*"
    assert rows["QLRF-K8S-001"]["check_json"] == '{"type":"image_pinned_by_digest"}'
    assert len({row["rule_sha256"] for row in rows.values()}) == len(rows)
    schema = ENTITY_SCHEMAS["drift_rules"]
    assert set(schema.names) == {"snapshot_id", "snapshot_at", *tag}


def test_land_drift_rules_writes_only_when_the_rules_change(tmp_path, monkeypatch):
    monkeypatch.delenv(DRIFT_RULES_ENV, raising=False)
    monkeypatch.delenv("QLRF_LAKE_URI", raising=False)
    lake = tmp_path / "lake"
    assert latest_rule_set_sha256(lake) is None

    first = land_drift_rules(lake, now=datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc))
    assert [(f.entity, f.site_id, f.snapshot_id, f.rows) for f in first] == [
        ("drift_rules", CONFIG_SITE_ID, "20261101T060000000000Z", 8)
    ]
    assert first[0].path == lake / "raw" / "drift_rules" / "site=config" / "snapshot=20261101T060000000000Z.parquet"
    table = pq.read_table(first[0].path)
    assert table.schema.equals(ENTITY_SCHEMAS["drift_rules"], check_metadata=False)
    assert set(table.column("source").to_pylist()) == {BUNDLED_SOURCE}

    assert land_drift_rules(lake, now=datetime(2026, 11, 2, tzinfo=timezone.utc)) == []

    mine = tmp_path / "mine.yaml"
    mine.write_text("version: 1\nrules:\n  - {id: QLRF-NET-001, enabled: false}\n")
    monkeypatch.setenv(DRIFT_RULES_ENV, str(mine))
    second = land_drift_rules(lake, now=datetime(2026, 11, 3, tzinfo=timezone.utc))
    assert len(second) == 1 and second[0].snapshot_id == "20261103T000000000000Z"
    landed = {r["rule_id"]: r for r in pq.read_table(second[0].path).to_pylist()}
    assert landed["QLRF-NET-001"]["enabled"] is False and landed["QLRF-NET-001"]["source"] == str(mine)
    assert latest_rule_set_sha256(lake) == landed["QLRF-NET-001"]["rule_set_sha256"]
    assert land_drift_rules(lake) == []
    # extra paths (config) merge after the environment's files
    on = tmp_path / "on.yaml"
    on.write_text("version: 1\nrules:\n  - {id: QLRF-NET-001, enabled: true}\n")
    assert len(land_drift_rules(lake, [str(on)], now=datetime(2026, 11, 4, tzinfo=timezone.utc))) == 1
    assert len(list_snapshots(lake, "drift_rules", CONFIG_SITE_ID)) == 3


def test_a_file_of_an_older_schema_is_landed_again(tmp_path, monkeypatch):
    monkeypatch.delenv(DRIFT_RULES_ENV, raising=False)
    lake = tmp_path / "lake"
    (first,) = land_drift_rules(lake, now=datetime(2026, 11, 1, tzinfo=timezone.utc))
    older = pq.read_table(first.path).drop_columns(["instance_type_regexes"])
    pq.write_table(older, first.path)
    assert latest_rule_set_sha256(lake) is None
    assert len(land_drift_rules(lake, now=datetime(2026, 11, 2, tzinfo=timezone.utc))) == 1
    assert land_drift_rules(lake) == []


def test_a_bad_user_file_lands_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("QLRF_LAKE_URI", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - {id: ACME-1, description: d, severity: low, check: {type: nope}}\n")
    monkeypatch.setenv(DRIFT_RULES_ENV, str(bad))
    with pytest.raises(DriftRulesError, match="unknown check type 'nope'"):
        land_drift_rules(tmp_path / "lake")
    assert not (tmp_path / "lake").exists()
