"""Small helpers shared by the parsers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qlrf_pipelines.supply_chain.records import ImportRejected


@dataclass
class ImageIdentity:
    """Which image a document says it is about: ``ref`` (best identifier, or None) + aliases."""

    ref: str | None
    aliases: list[str] = field(default_factory=list)


def obj(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImportRejected(f"{where} is {type(value).__name__}, expected an object")
    return value


def arr(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ImportRejected(f"{where} is {type(value).__name__}, expected a list")
    return value


def text(value: Any) -> str | None:
    """A string field, or None when absent / empty. Numbers are turned into strings."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value if value.strip() else None
    return None


def dedupe(values: list[str | None]) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v and v not in seen:
            seen.append(v)
    return seen
