"""Where local state lives.

Everything a run writes (lake, warehouse, control store, Dagster home when DAGSTER_HOME is not
set) sits under one directory, QLRF_HOME, so two checkouts or two test runs never share state.
Paths are computed when asked for, never at import, so tests can point QLRF_HOME elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
BUNDLED_SITES_FILE = PACKAGE_DIR / "sample_data" / "sites.yaml"


def _telemetry_off() -> None:
    """No phone-home: users on locked-down networks expect none, and this machine has none."""
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def control_store_path(self) -> Path:
        return self.home / "control.sqlite"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt-target"


def qlrf_home() -> Path:
    return Path(os.environ.get("QLRF_HOME", ".qlrf")).expanduser().resolve()


def paths() -> Paths:
    return Paths(home=qlrf_home())


def sites_file() -> Path:
    configured = os.environ.get("QLRF_SITES")
    return Path(configured).expanduser().resolve() if configured else BUNDLED_SITES_FILE


def dbt_project_dir() -> Path:
    configured = os.environ.get("QLRF_DBT_PROJECT_DIR")
    return Path(configured).expanduser().resolve() if configured else REPO_DIR / "dbt"


_telemetry_off()
