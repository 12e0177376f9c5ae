"""The warehouse: dbt models as Dagster assets, dbt tests as asset checks.

Every warehouse writer runs in the `warehouse` pool (limit 1 in the instance config), because
DuckDB allows one writing process per file.
"""


from typing import Any, Mapping

from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from qlrf_pipelines.resources.estate import EstateResource

WAREHOUSE_POOL = "warehouse"


class QlrfDbtTranslator(DagsterDbtTranslator):
    """Groups follow the model folder (inventory, images, drift, staging); sources stay as the
    lake assets the discovery step produces."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "model":
            fqn = dbt_resource_props.get("fqn") or []
            if len(fqn) > 2:
                return fqn[1]
        return super().get_group_name(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:platform"]


def translator() -> QlrfDbtTranslator:
    return QlrfDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def build_warehouse_assets(project: DbtProject):
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator(),
        pool=WAREHOUSE_POOL,
        name="warehouse_models",
    )
    def warehouse_models(context: AssetExecutionContext, dbt: DbtCliResource, estate: EstateResource):
        estate.sync_lake(context.log)  # a remote lake: every site's snapshots, from any machine
        with estate.dbt_environment():
            yield from dbt.cli(["build"], context=context, target_path=estate.dbt_target_path(context.run_id)).stream()

    return warehouse_models
