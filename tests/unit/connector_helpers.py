"""Scaffolding shared by the connector tests (tests/unit/test_*_connector.py): test sites, the
hand-written fixture payloads, and sample payloads from the generators with their records."""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from qlrf_pipelines.models import Discovery
from qlrf_pipelines.sites import Site

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

ANCHORS = ["anchor-current-01", "anchor-behind-01", "anchor-revoked-01", "anchor-unknown-01"]
"""The anchor VMs every generated VM site starts with (see qlrf_pipelines.sample.common)."""

GeneratePayload = Callable[[Site, int, random.Random], dict]
Normalize = Callable[[Any, Site, datetime], Discovery]


def production_site(id: str, provider: str, name: str, location: str, account: str, **fields: Any) -> Site:
    """A production Site with the fields every connector test sets (plus any others)."""
    return Site(
        id=id, provider=provider, name=name, location=location, environment="production", account=account, **fields
    )


def payload_fixture(path: str):
    """A `payload` fixture giving each test its own copy of tests/fixtures/<path> (tests mutate
    it). Bind it at module level: `payload = payload_fixture("aws/describe.json")`."""

    @pytest.fixture()
    def payload() -> dict:
        return json.loads((FIXTURES / path).read_text())

    return payload


def by_name(records: Iterable) -> dict:
    return {record.name: record for record in records}


def images_by_id(found: Discovery) -> dict:
    return {image.provider_image_id: image for image in found.images}


def generated(
    generate_payload: GeneratePayload, normalize: Normalize, site: Site, n: int, seed: int, at: datetime
) -> tuple[dict, Discovery]:
    """A generated payload of n assets (rng seeded with `seed`) and its records."""
    payload = generate_payload(site, n, random.Random(seed))
    return payload, normalize(payload, site, at)


def generated_json(generate_payload: GeneratePayload, site: Site, n: int, seed: int) -> str:
    """A generated payload as canonical JSON text, to compare two runs of a generator."""
    return json.dumps(generate_payload(site, n, random.Random(seed)), sort_keys=True)


# -- the sample estate's deliberate drift -----------------------------------------------------

SAMPLE_DRIFT_EXPECTATIONS = FIXTURES / "sample_drift_expectations.yaml"

_ALLOWED_SIZES = ("t3.*", "m6i.*", "c6i.*", "r6i.*", "standard_b*", "standard_d*", "standard_e*", "e2-*", "n2-*", "c3-*")
_END_OF_LIFE = ("*centos*7 *", "*ubuntu*18.04*", "*ubuntu-1804*", "*windows server 2012*")


def sample_rule_results(site: Site, assets: Iterable) -> dict[str, dict[str, bool]]:
    """Rule id -> {name of an asset in the rule's scope: whether it passes}, judged on the records
    alone: a plain reading of each bundled rule (qlrf_pipelines/drift/default_rules.yaml) written
    independently of the drift engine, to check that the generators write the drift the
    expectations file promises."""
    import fnmatch

    production = site.environment == "production"
    results: dict[str, dict[str, bool]] = {}
    for asset in assets:
        tags = {t.key.lower() for t in asset.tags}
        attributes = json.loads(asset.attributes_json or "{}")
        checks: dict[str, bool] = {}
        if production and asset.kind in ("vm", "node"):
            checks["QLRF-TAG-001"] = {"owner", "cost-center"} <= tags
            if asset.instance_type:
                checks["QLRF-SIZE-001"] = any(fnmatch.fnmatch(asset.instance_type.lower(), p) for p in _ALLOWED_SIZES)
        if production and asset.kind == "vm":
            checks["QLRF-NET-001"] = asset.public_ip is None
            checks["QLRF-BAK-001"] = "backup-policy" in tags
            if asset.disk_encryption is not None:
                checks["QLRF-ENC-001"] = asset.disk_encryption != "none"
        if asset.kind == "workload":
            refs = [c["image"] for c in (attributes.get("containers") or []) + (attributes.get("initContainers") or [])]
            checks["QLRF-K8S-001"] = all("@sha256:" in ref for ref in refs)
        if asset.provider == "vsphere" and asset.state == "running":
            checks["QLRF-VSP-001"] = attributes.get("toolsRunningStatus") == "guestToolsRunning"
        if asset.os and asset.kind in ("vm", "node"):
            checks["QLRF-EOL-001"] = not any(fnmatch.fnmatch(asset.os.lower() + " ", p) for p in _END_OF_LIFE)
        for rule, passed in checks.items():
            results.setdefault(rule, {})[asset.name] = passed
    return results


def assert_sample_drift_as_expected(site: Site, assets: list) -> None:
    """The bundled site's assets break exactly the rules the expectations file lists for it, and
    the passes it lists are in the rule's scope and pass."""
    import yaml

    expectations = yaml.safe_load(SAMPLE_DRIFT_EXPECTATIONS.read_text())
    results = sample_rule_results(site, assets)
    for rule, expected in expectations.items():
        fails = {name for site_id, name in expected["fail"] if site_id == site.id}
        passes = {name for site_id, name in expected["pass"] if site_id == site.id}
        judged = results.get(rule, {})
        broken = {name for name, passed in judged.items() if not passed}
        assert broken == fails, f"{rule} on {site.id}: breaking {sorted(broken)}, listed {sorted(fails)}"
        bad = passes - {name for name, passed in judged.items() if passed}
        assert not bad, f"{rule} on {site.id}: listed passes out of scope or failing: {sorted(bad)}"


def check_bundled_sample_drift(site_id: str, at: datetime) -> None:
    """Discover a bundled sample site from its stored payload and check its deliberate drift."""
    from qlrf_pipelines.connectors.sample import discover_from_sample
    from qlrf_pipelines.settings import BUNDLED_SITES_FILE
    from qlrf_pipelines.sites import load_sites

    site = load_sites(BUNDLED_SITES_FILE).site(site_id)
    found = discover_from_sample(site, BUNDLED_SITES_FILE.parent / site.sample, at)
    assert_sample_drift_as_expected(site, found.assets)
