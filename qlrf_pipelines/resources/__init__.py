"""Dagster resources: typed configuration for where state lives and how dbt runs."""

from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.resources.dbt import dbt_project, ensure_manifest

__all__ = ["EstateResource", "dbt_project", "ensure_manifest"]
