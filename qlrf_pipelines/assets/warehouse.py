"""The warehouse: dbt models as Dagster assets, dbt tests as asset checks.

Every warehouse writer runs in the `warehouse` pool (limit 1 in the instance config), because
DuckDB allows one writing process per file.
"""


from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from dagster import AssetExecutionContext, AssetMaterialization, MetadataValue, Output
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from qlrf_pipelines.drift.report import read_drift_summary, summary_metadata
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
        from qlrf_pipelines.compliance.landing import land_configuration

        # drift rules, compliance catalog: a failure is logged, never raised
        land_configuration(
            estate.paths.lake_dir, context.log, estate.drift_rules_files, estate.compliance_catalog_files,
            sites_file=estate.sites_file,
        )
        with estate.dbt_environment():
            events = dbt.cli(["build"], context=context, target_path=estate.dbt_target_path(context.run_id)).stream()
            events = with_lineage_tree(events, estate.paths.lake_dir, context.log)
            yield from with_drift_summary(events, estate.paths.warehouse_path, context.log)

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


DRIFT_SUMMARY_ASSET = "drift_items"


def with_drift_summary(events: Iterable[Any], warehouse_path: Path, log) -> Iterator[Any]:
    """Pass dbt's events through, adding the drift numbers and trend chart to `drift_items`.

    They come from drift_reports and drift_trends, built after drift_items, and dbt holds the
    DuckDB file for writing until the build ends. So from drift_items' result on, events are held
    back (in order: a multi-asset must yield its assets in topological order) and replayed once
    the stream is exhausted and the file can be opened read-only."""
    since = datetime.now(timezone.utc)
    held: list[Any] = []
    try:
        for event in events:
            if held or _asset_name(event) == DRIFT_SUMMARY_ASSET:
                held.append(event)
            else:
                yield event
    except Exception:
        yield from held  # the build failed: the results as dbt reported them, without the summary
        raise
    if not held:
        return
    try:
        values = summary_metadata(read_drift_summary(warehouse_path, since))
        extra = {k: MetadataValue.md(v) if k == "drift_trend" else v for k, v in values.items()}
    except Exception as exc:  # noqa: BLE001 - metadata must never fail the build
        log.warning(f"drift summary metadata skipped: {type(exc).__name__}: {exc}")
        extra = {}
    for event in held:
        if _asset_name(event) != DRIFT_SUMMARY_ASSET:
            yield event
        elif isinstance(event, AssetMaterialization):
            yield AssetMaterialization(
                asset_key=event.asset_key, description=event.description, partition=event.partition,
                tags=event.tags, metadata={**event.metadata, **extra},
            )
        else:
            yield event.with_metadata({**event.metadata, **extra})


def _asset_name(event: Any) -> str | None:
    if isinstance(event, AssetMaterialization):
        return event.asset_key.path[-1]
    if isinstance(event, Output):
        return event.output_name
    return None
