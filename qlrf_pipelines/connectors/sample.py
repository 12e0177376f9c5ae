"""The sample connector: feeds stored provider payloads through the provider's `normalize`.

It is what the bundled estate runs on (no credentials, no network), and what tests use to
exercise the exact code path a live connector takes after its SDK calls return.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from qlrf_pipelines.connectors import provider_module
from qlrf_pipelines.connectors.base import ConnectorError, PayloadError
from qlrf_pipelines.models import Discovery
from qlrf_pipelines.sites import Site


def load_payload(site: Site, path: Path) -> dict:
    try:
        with path.open() as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise ConnectorError(site.id, f"read {path}", "sample payload file not found") from None
    except json.JSONDecodeError as exc:
        raise ConnectorError(site.id, f"read {path}", f"not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ConnectorError(site.id, f"read {path}", "expected a JSON object at the top level")
    return payload


def discover_from_sample(site: Site, path: Path, discovered_at: datetime) -> Discovery:
    payload = load_payload(site, path)
    normalize = provider_module(site.provider).normalize
    try:
        return normalize(payload, site, discovered_at)
    except PayloadError as exc:
        raise ConnectorError(site.id, f"normalize {path}", str(exc)) from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # A payload shaped in a way no check anticipated is still this site's bad input, not a
        # crash of the whole run: name the site and the file like any other payload error.
        raise ConnectorError(site.id, f"normalize {path}", f"malformed payload ({type(exc).__name__}: {exc})") from None
