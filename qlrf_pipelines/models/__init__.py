"""Canonical records every connector produces, and the Arrow schemas of the lake files."""

from qlrf_pipelines.models.records import (
    ENTITY_SCHEMAS,
    AssetRecord,
    Discovery,
    ImageRecord,
    Tag,
    tags_from_mapping,
    version_sort_key,
)

__all__ = [
    "ENTITY_SCHEMAS",
    "AssetRecord",
    "Discovery",
    "ImageRecord",
    "Tag",
    "tags_from_mapping",
    "version_sort_key",
]
