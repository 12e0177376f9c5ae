"""Each bundled desired-state rule on the sample estate: its known failures are open config drift
items, its known passes are not (tests/fixtures/sample_drift_expectations.yaml)."""

from __future__ import annotations

from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
import yaml

from qlrf_pipelines.drift.rules import load_rule_set
from tests.conftest import sql

pytestmark = pytest.mark.integration

EXPECTATIONS = Path(__file__).resolve().parents[1] / "fixtures" / "sample_drift_expectations.yaml"
BUNDLED = [loaded.rule.id for loaded in load_rule_set(environ={}).rules]


def past_end_of_life(home: Path, day: date) -> set[tuple[str, str]]:
    """Independent of the SQL under test: the in-scope assets whose OS the bundled rule's first
    matching release (fnmatch on the lower-cased OS text plus one space) puts past its end of
    life on `day`. The fixture's EOL fail list is complete for the day it was written; as the
    calendar moves on, more sample OS releases reach their end (Windows Server 2016 on 2027-01-12,
    ...), and those extra failures are right, not regressions."""
    (rule,) = [loaded.rule for loaded in load_rule_set(environ={}).rules if loaded.rule.id == "QLRF-EOL-001"]
    releases = [(release.match.lower(), release.end_of_life) for release in rule.check.releases]
    kinds = tuple(rule.scope.kinds)
    past = set()
    for site_id, name, os_text in sql(
        home, f"SELECT site_id, name, os FROM assets WHERE os IS NOT NULL AND kind IN {kinds!r}"
    ):
        ends = [end for pattern, end in releases if fnmatchcase(os_text.lower() + " ", pattern)]
        if ends and ends[0] < day:
            past.add((site_id, name))
    return past


def expectations() -> dict:
    return yaml.safe_load(EXPECTATIONS.read_text())


def pairs(items) -> set[tuple[str, str]]:
    return {(site_id, name) for site_id, name in items or []}


def test_every_bundled_rule_has_known_passes_and_failures():
    expected = expectations()
    assert sorted(expected) == sorted(BUNDLED)
    for rule_id in BUNDLED:
        assert expected[rule_id]["fail"] and expected[rule_id]["pass"], rule_id
        assert not pairs(expected[rule_id]["fail"]) & pairs(expected[rule_id]["pass"]), rule_id


@pytest.mark.parametrize("rule_id", BUNDLED)
def test_bundled_rule_on_the_sample_estate(sample_runs, rule_id):
    expected = expectations()[rule_id]
    found = set(sql(
        sample_runs.home,
        "SELECT site_id, asset_name FROM drift_items WHERE status = 'open' AND drift_type = 'config' AND rule_id = ?",
        [rule_id],
    ))
    fails, passes = pairs(expected["fail"]), pairs(expected["pass"])
    assert fails <= found, f"{rule_id}: expected failures without an open item: {sorted(fails - found)}"
    assert not passes & found, f"{rule_id}: expected passes with an open item: {sorted(passes & found)}"
    # the fail lists are complete: nothing else in the sample estate breaks the rule
    (snapshot_day,) = sql(sample_runs.home, "SELECT max(CAST(snapshot_at AS DATE)) FROM drift_items")[0]
    allowed_extra = past_end_of_life(sample_runs.home, snapshot_day) if rule_id == "QLRF-EOL-001" else set()
    assert found - fails <= allowed_extra, f"{rule_id}: unexpected failures {sorted(found - fails - allowed_extra)}"


def test_config_drift_items_describe_the_violation(sample_runs):
    rows = sql(
        sample_runs.home,
        "SELECT rule_id, severity, expected, actual, detail, drift_key FROM drift_items "
        "WHERE status = 'open' AND drift_type = 'config' AND site_id = 'aws-prod-use1' AND asset_name = 'api-prod-0039'",
    )
    (net,) = [row for row in rows if row[0] == "QLRF-NET-001"]
    assert net[1:3] == ("high", "no public IP")
    assert net[3].startswith("public IP ") and net[4].startswith("QLRF-NET-001: public IP ")
    assert net[5] == "config:QLRF-NET-001"


def test_drift_reports_and_trends_include_config_drift(sample_runs):
    (config, total), = sql(
        sample_runs.home,
        "SELECT sum(config_drift), sum(drift_items) FROM drift_reports WHERE snapshot_id IN "
        "(SELECT max(snapshot_id) FROM drift_reports GROUP BY site_id)",
    )
    assert 0 < config < total
    (open_items, opened), = sql(
        sample_runs.home,
        "SELECT open_items, (SELECT sum(opened) FROM drift_trends WHERE severity = 'all') FROM drift_trends "
        "WHERE severity = 'all' ORDER BY day DESC LIMIT 1",
    )
    assert open_items == opened == sql(sample_runs.home, "SELECT count(*) FROM drift_items WHERE status = 'open'")[0][0]
