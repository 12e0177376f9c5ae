"""Errors and small helpers shared by the provider connectors (no Dagster, no I/O)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping


class PayloadError(ValueError):
    """A provider payload does not have the shape the provider's API documents.

    `where` is a JSONPath-like pointer into the payload so the user can find the bad record.
    """

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where = where


class ConnectorError(RuntimeError):
    """Discovery of one site failed; names the site and the API call (or file) that failed."""

    def __init__(self, site_id: str, call: str, message: str):
        super().__init__(f"site {site_id}: {call}: {message}")
        self.site_id = site_id
        self.call = call


def require(mapping: Any, key: str, where: str) -> Any:
    """mapping[key], or a PayloadError naming where in the payload it was missing."""
    if not isinstance(mapping, Mapping):
        raise PayloadError(where, f"expected an object, got {type(mapping).__name__}")
    if key not in mapping or mapping[key] is None:
        raise PayloadError(f"{where}.{key}", "required field is missing")
    return mapping[key]


def require_list(mapping: Any, key: str, where: str) -> list:
    value = require(mapping, key, where)
    if not isinstance(value, list):
        raise PayloadError(f"{where}.{key}", f"expected a list, got {type(value).__name__}")
    return value


def parse_timestamp(value: Any, where: str) -> datetime | None:
    """Provider timestamps (ISO 8601 with Z or offset, or epoch seconds) to aware UTC datetimes."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PayloadError(where, f"not a timestamp: {value!r}") from exc
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def compact_json(data: Mapping[str, Any]) -> str | None:
    """Provider-specific extras, kept as compact JSON; None when there are none."""
    cleaned = {k: v for k, v in data.items() if v is not None}
    return json.dumps(cleaned, sort_keys=True, separators=(",", ":"), default=str) if cleaned else None
