"""The Dagster instance: SQLite under QLRF_HOME unless DAGSTER_HOME points elsewhere.

The generated dagster.yaml turns telemetry off and caps the `warehouse` pool at one op at a
time (DuckDB allows one writing process). For PostgreSQL see docs/dagster-postgres.yaml.
"""

from __future__ import annotations

import os
from pathlib import Path

from qlrf_pipelines.settings import Paths

DEFAULT_INSTANCE_YAML = """\
# Written by qlrf for the embedded default: SQLite storage under this folder.
# For PostgreSQL (dagster-postgres) see docs/dagster-postgres.yaml in the repository.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    # The only pool is `warehouse`: DuckDB allows one writer, so one warehouse op at a time.
    default_limit: 1
"""


def ensure_dagster_home(paths: Paths) -> Path:
    """DAGSTER_HOME if the user set it, else QLRF_HOME/dagster with a default dagster.yaml."""
    configured = os.environ.get("DAGSTER_HOME")
    home = Path(configured) if configured else paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DEFAULT_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def get_instance(paths: Paths):
    from dagster import DagsterInstance

    ensure_dagster_home(paths)
    return DagsterInstance.get()
