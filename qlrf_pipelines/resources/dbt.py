"""The dbt project as Dagster sees it.

The manifest is prepared once (`qlrf prepare`, or lazily the first time the code location loads
without one) and cached in dbt/target/manifest.json; later loads only read it. `dagster dev`
re-parses on load so model edits show up while developing.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from dagster_dbt import DbtProject

from qlrf_pipelines.settings import dbt_project_dir


@lru_cache(maxsize=1)
def dbt_project() -> DbtProject:
    project_dir = dbt_project_dir()
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir)


def ensure_dbt_on_path() -> None:
    """dagster-dbt looks for `dbt` on PATH; put this interpreter's bin/ first so the dbt that
    was installed with QL-RF is found even when the virtualenv is not activated."""
    bin_dir = str(Path(sys.executable).parent)
    if (Path(bin_dir) / "dbt").exists() and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def ensure_manifest(force: bool = False) -> DbtProject:
    ensure_dbt_on_path()
    project = dbt_project()
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    if force or not project.manifest_path.exists():
        project.preparer.prepare(project)
    else:
        project.prepare_if_dev()
    return project
