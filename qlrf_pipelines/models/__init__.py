"""Canonical records every connector produces, and the Arrow schemas of the lake files.

The names below load `records` (and so pyarrow) on first use, not at package import, so light
modules such as `models.vocabulary` can be imported by the CLI without it."""

from typing import Any

__all__ = [
    "ENTITY_SCHEMAS",
    "AssetRecord",
    "Discovery",
    "ImageRecord",
    "Tag",
    "tags_from_mapping",
    "version_sort_key",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from qlrf_pipelines.models import records

        return getattr(records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
