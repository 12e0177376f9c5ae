"""The Dagster code location.

Building the definitions reads only configuration (the sites file, for the site partitions,
the compliance catalog's YAML, for one asset check per compliance check, and the cached dbt
manifest); it opens no database and calls no provider.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from qlrf_pipelines import settings
from qlrf_pipelines.assets.compliance import build_compliance_checks, spec_catalog
from qlrf_pipelines.assets.control_export import control_store_export
from qlrf_pipelines.assets.discovery import build_discovery_assets
from qlrf_pipelines.assets.warehouse import build_warehouse_assets
from qlrf_pipelines.jobs.ask import ask_planner_job
from qlrf_pipelines.jobs.imports import IMPORTED_LAKE_ASSETS, import_supply_chain_job
from qlrf_pipelines.jobs.refresh import refresh_estate_job
from qlrf_pipelines.jobs.remediation import execute_remediation_job, plan_remediation_job
from qlrf_pipelines.jobs.schedules import refresh_estate_schedule
from qlrf_pipelines.resources.dbt import ensure_manifest
from qlrf_pipelines.resources.control import ControlStoreResource, default_rbac_file
from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.resources.llm import llm_resource_from_env
from qlrf_pipelines.sensors.inbox import inbox_sensor
from qlrf_pipelines.sensors.compliance import compliance_sensor
from qlrf_pipelines.sensors.remediation import approval_sensor, drift_sensor
from qlrf_pipelines.sites import load_sites


def dbt_executable() -> str:
    """The dbt next to this interpreter, so runs work without the virtualenv on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def build_definitions() -> dg.Definitions:
    sites = load_sites(settings.sites_file())
    project = ensure_manifest()
    site_discovery, site_partitions = build_discovery_assets(sites.site_ids)
    warehouse_models = build_warehouse_assets(project)
    compliance_checks = build_compliance_checks(spec_catalog())

    discover_sites_job = dg.define_asset_job(
        "discover_sites_job",
        selection=dg.AssetSelection.assets(site_discovery),
        partitions_def=site_partitions,
        description="Discover the selected site partition(s) into the lake.",
    )
    build_warehouse_job = dg.define_asset_job(
        "build_warehouse_job",
        # dbt only (with dbt's tests); the compliance checks run in evaluate_compliance_job
        selection=dg.AssetSelection.assets(warehouse_models) - dg.AssetSelection.checks(compliance_checks),
        description="Rebuild the DuckDB warehouse from the lake with dbt.",
    )
    evaluate_compliance_job = dg.define_asset_job(
        "evaluate_compliance_job",
        selection=dg.AssetSelection.checks(compliance_checks),
        description="Evaluate every compliance check on the warehouse and land the evidence (no rebuild).",
        tags={"domain": "compliance"},
    )
    home = settings.qlrf_home()
    return dg.Definitions(
        assets=[site_discovery, control_store_export, warehouse_models, *IMPORTED_LAKE_ASSETS],
        asset_checks=[compliance_checks],
        jobs=[refresh_estate_job, discover_sites_job, build_warehouse_job, plan_remediation_job, execute_remediation_job,
              import_supply_chain_job, evaluate_compliance_job, ask_planner_job],
        schedules=[refresh_estate_schedule()],
        sensors=[drift_sensor, approval_sensor, inbox_sensor, compliance_sensor],
        resources={
            "estate": EstateResource(
                home=str(home),
                sites_file=str(sites.path),
                lake_uri=settings.lake_uri(),
                lake_endpoint_url=settings.lake_endpoint_url(),
            ),
            "control": ControlStoreResource(
                home=str(home), url=os.environ.get("QLRF_CONTROL_URL"), rbac_file=default_rbac_file()
            ),
            "llm": llm_resource_from_env(),
            "dbt": DbtCliResource(
                project_dir=project, profiles_dir=str(project.profiles_dir), dbt_executable=dbt_executable()
            ),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
