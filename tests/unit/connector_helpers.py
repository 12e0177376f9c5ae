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
