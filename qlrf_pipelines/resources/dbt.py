"""The dbt project as Dagster sees it.

The manifest is prepared once (`qlrf prepare`, or lazily the first time the code location loads
without one) and cached in dbt/target/manifest.json; later loads only read it. `dagster dev`
re-parses on load so model edits show up while developing.
"""

from __future__ import annotations

import os
from functools import lru_cache

from dagster_dbt import DbtProject

from qlrf_pipelines.settings import dbt_project_dir


@lru_cache(maxsize=1)
def dbt_project() -> DbtProject:
    project_dir = dbt_project_dir()
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir)


def ensure_manifest(force: bool = False) -> DbtProject:
    project = dbt_project()
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    if force or not project.manifest_path.exists():
        project.preparer.prepare(project)
    else:
        project.prepare_if_dev()
    return project
