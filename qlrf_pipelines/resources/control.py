"""The control store resource: tasks, plans, approvals and the audit log, plus the RBAC file."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dagster import ConfigurableResource
from pydantic import Field

from qlrf_pipelines.settings import PACKAGE_DIR

BUNDLED_RBAC_FILE = PACKAGE_DIR / "sample_data" / "rbac.yaml"


def default_rbac_file() -> str:
    return os.environ.get("QLRF_RBAC", str(BUNDLED_RBAC_FILE))


class ControlStoreResource(ConfigurableResource):
    """SQLite under QLRF_HOME unless `url` (QLRF_CONTROL_URL) names a PostgreSQL database."""

    home: str = Field(description="QLRF_HOME; the SQLite control store lives at QLRF_HOME/control.sqlite")
    url: str | None = Field(default=None, description="SQLAlchemy URL, e.g. postgresql+psycopg2://host/db")
    rbac_file: str = Field(description="users and roles (QLRF_RBAC); the bundled sample by default")

    @contextmanager
    def open(self) -> Iterator["ControlStore"]:  # noqa: F821
        from qlrf_pipelines.control.store import ControlStore

        store = ControlStore.open(url=self.url, home=Path(self.home))
        try:
            yield store
        finally:
            store.close()

    def rbac(self):
        from qlrf_pipelines.control.rbac import Rbac

        return Rbac.load(Path(self.rbac_file))
