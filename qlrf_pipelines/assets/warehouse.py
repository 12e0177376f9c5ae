"""The warehouse: dbt models as Dagster assets, dbt tests as asset checks.

Every warehouse writer runs in the `warehouse` pool (limit 1 in the instance config), because
DuckDB allows one writing process per file.
"""


from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from dagster import AssetExecutionContext, AssetMaterialization, MetadataValue, Output
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from qlrf_pipelines.images.catalog import lineage_from_lake
from qlrf_pipelines.images.lineage import tree_markdown
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
            events = dbt.cli(["build"], context=context, target_path=estate.dbt_target_path(context.run_id)).stream()
            yield from with_lineage_tree(events, estate.paths.lake_dir, context.log)

    return warehouse_models


# The image assets whose materializations carry the lineage tree as Markdown metadata.
LINEAGE_TREE_ASSETS = frozenset({"golden_images", "image_lineage", "v_image_lineage_tree"})


def with_lineage_tree(events: Iterable[Any], lake_dir: Path, log) -> Iterator[Any]:
    """Pass dbt's events through, adding `lineage_tree` (Markdown) to the image assets' results.
    The tree is built from the same lake files dbt read, not the warehouse, which dbt holds open
    for writing until the build ends."""
    tree: MetadataValue | None = None

    def lineage_tree() -> MetadataValue:
        nonlocal tree
        if tree is None:
            try:
                edges, statuses = lineage_from_lake(lake_dir)
                tree = MetadataValue.md(tree_markdown(edges, statuses))
            except Exception as exc:  # noqa: BLE001 - metadata must never fail the build
                log.warning(f"lineage tree metadata skipped: {type(exc).__name__}: {exc}")
                tree = MetadataValue.md("_lineage tree unavailable, see the run log_")
        return tree

    for event in events:
        if isinstance(event, AssetMaterialization) and event.asset_key.path[-1] in LINEAGE_TREE_ASSETS:
            event = AssetMaterialization(
                asset_key=event.asset_key, description=event.description, partition=event.partition,
                tags=event.tags, metadata={**event.metadata, "lineage_tree": lineage_tree()},
            )
        elif isinstance(event, Output) and event.output_name in LINEAGE_TREE_ASSETS:
            event = event.with_metadata({**event.metadata, "lineage_tree": lineage_tree()})
        yield event
