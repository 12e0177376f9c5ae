"""The estate resource: which sites file to discover and which QLRF_HOME to write."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dagster import ConfigurableResource
from pydantic import Field

from qlrf_pipelines.settings import Paths
from qlrf_pipelines.sites import SitesFile, load_sites


class EstateResource(ConfigurableResource):
    """Where the estate is described and where its data lands.

    Defaults come from QLRF_HOME / QLRF_SITES when the definitions are built; either can be
    set per run in the launchpad.
    """

    home: str = Field(description="QLRF_HOME: lake, warehouse, control store live under it")
    sites_file: str = Field(description="YAML sites file (QLRF_SITES); the bundled sample by default")

    @property
    def paths(self) -> Paths:
        return Paths(home=Path(self.home))

    def load_sites(self) -> SitesFile:
        return load_sites(self.sites_file)

    def dbt_target_path(self, run_id: str) -> Path:
        """Per-run dbt artifacts (run_results, compiled SQL) stay with the data, not the repo."""
        return self.paths.dbt_target_dir / run_id

    @contextmanager
    def dbt_environment(self) -> Iterator[dict[str, str]]:
        """dbt reads the lake and warehouse locations from its environment (profiles.yml and
        sources use env_var), and dagster-dbt starts dbt with this process's environment."""
        wanted = {
            "QLRF_LAKE_DIR": str(self.paths.lake_dir),
            "QLRF_WAREHOUSE_PATH": str(self.paths.warehouse_path),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        }
        previous = {key: os.environ.get(key) for key in wanted}
        os.environ.update(wanted)
        try:
            yield wanted
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
