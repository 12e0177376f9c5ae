"""refresh_estate_job: discover every site (in parallel under the multiprocess executor), land
the snapshots, then build the warehouse once.

A site that fails is reported and skipped; the others still land and the warehouse is still
built (so the failed site's last good snapshot stays current). The run then fails, naming every
failed site, so schedules and `qlrf run` surface it.

Beside discovery, the control store (tasks, plans, tool calls, waivers) is exported to the lake
before the warehouse is built, so ai_tasks and friends are as fresh as the inventory, and so is
the configuration (desired-state drift rules, compliance catalog). An export that fails is
logged and skipped: the warehouse then builds from the previous snapshot.

After the build, `evaluate_compliance` runs every compliance check on the warehouse, lands the
evidence and reports one asset check evaluation per check (assets/compliance.py). A failed
blocking check (e.g. inventory_fresh) fails that step, after the evidence is written.
"""


import re
from dataclasses import dataclass

from dagster import (
    AssetMaterialization,
    DynamicOut,
    DynamicOutput,
    Failure,
    In,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    job,
    op,
)
from dagster_dbt import DbtCliResource

from qlrf_pipelines.assets.compliance import check_evaluations, evidence_events, run_evaluation
from qlrf_pipelines.assets.control_export import export_metadata, land_control_snapshot
from qlrf_pipelines.assets.discovery import LAKE_ENTITIES, lake_asset_key, snapshot_metadata
from qlrf_pipelines.assets.warehouse import WAREHOUSE_POOL, translator, with_drift_summary, with_lineage_tree
from qlrf_pipelines.compliance.landing import land_configuration
from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.discovery import discover_site, record_failure
from qlrf_pipelines.lake import LakeError
from qlrf_pipelines.resources.control import ControlStoreResource
from qlrf_pipelines.resources.dbt import dbt_project
from qlrf_pipelines.resources.estate import EstateResource


@dataclass
class SiteOutcome:
    site_id: str
    ok: bool
    snapshot_id: str | None = None
    asset_count: int = 0
    error: str | None = None


def mapping_key(site_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", site_id)


@op(out=DynamicOut(str), description="Read the sites file and fan out one discovery per site.")
def plan_discovery(context: OpExecutionContext, estate: EstateResource):
    sites = estate.load_sites()
    context.log.info(f"{len(sites.sites)} sites in {sites.path}")
    for site_id in sites.site_ids:
        yield DynamicOutput(site_id, mapping_key=mapping_key(site_id))


def _record_failure(context, estate: EstateResource, site_id: str, exc: Exception) -> None:
    error = exc if isinstance(exc, ConnectorError) else ConnectorError(site_id, "write lake snapshot", str(exc))
    try:
        record_failure(estate.paths.lake_dir, estate.load_sites().site(site_id), error)
    except Exception as record_exc:  # noqa: BLE001 - the failure itself is already logged; never mask it
        context.log.warning(f"could not record the failure of {site_id} in the lake: {record_exc}")


@op(out=Out(SiteOutcome), description="Discover one site and land its lake snapshot.")
def discover_one_site(context: OpExecutionContext, estate: EstateResource, site_id: str):
    try:
        snapshot = discover_site(estate.load_sites(), site_id, estate.paths.lake_dir)
    except (ConnectorError, LakeError) as exc:
        context.log.error(f"discovery failed, no snapshot written for this site: {exc}")
        _record_failure(context, estate, site_id, exc)
        return SiteOutcome(site_id=site_id, ok=False, error=str(exc))
    for entity in LAKE_ENTITIES:
        context.log_event(
            AssetMaterialization(
                asset_key=lake_asset_key(entity),
                partition=site_id,
                metadata=snapshot_metadata(snapshot, entity),
            )
        )
    context.log.info(f"site {site_id}: {snapshot.asset_count} assets -> snapshot {snapshot.snapshot_id}")
    return SiteOutcome(site_id, True, snapshot.snapshot_id, snapshot.asset_count)


@op(
    out=Out(Nothing),
    description="Export the control store (tasks, plans, tool calls) to the lake; a failure is logged, not raised.",
)
def export_control_store(context: OpExecutionContext, control: ControlStoreResource, estate: EstateResource):
    try:
        files, summary = land_control_snapshot(control, estate.paths.lake_dir)
    except Exception as exc:  # noqa: BLE001 - discovery and the warehouse must not depend on the export
        context.log.error(
            f"control store export failed, nothing written; the warehouse keeps the previous control snapshot: "
            f"{type(exc).__name__}: {exc}"
        )
        return
    for file in files:
        context.log_event(AssetMaterialization(asset_key=lake_asset_key(file.entity), metadata=export_metadata(file)))
    context.log.info(summary)


@op(
    out=Out(Nothing),
    description="Land the desired-state drift rules, the compliance catalog and the DR pairs in the lake when they changed; "
    "a failure is logged, not raised.",
)
def export_configuration(context: OpExecutionContext, estate: EstateResource):
    landed = land_configuration(
        estate.paths.lake_dir, context.log, estate.drift_rules_files, estate.compliance_catalog_files,
            sites_file=estate.sites_file,
    )
    for file in landed:
        context.log_event(AssetMaterialization(asset_key=lake_asset_key(file.entity), metadata=export_metadata(file)))


@op(
    ins={"outcomes": In(list[SiteOutcome]), "control_export": In(Nothing), "configuration": In(Nothing)},
    out=Out(list[SiteOutcome]),
    pool=WAREHOUSE_POOL,
    description="dbt build: staging, inventory, images and drift models with their tests.",
)
def build_warehouse(context: OpExecutionContext, estate: EstateResource, dbt: DbtCliResource, outcomes):
    if not any(outcome.ok for outcome in outcomes):
        raise Failure("no site was discovered; the warehouse was left as it was")
    estate.sync_lake(context.log)  # a remote lake: every site's snapshots, from any machine
    project = dbt_project()
    with estate.dbt_environment():
        invocation = dbt.cli(
            ["build"],
            manifest=project.manifest_path,
            dagster_dbt_translator=translator(),
            context=context,
            target_path=estate.dbt_target_path(context.run_id),
        )
        # In an op, dagster-dbt yields materializations, observations and check evaluations
        # for the dbt assets, so the asset graph shows this run's results.
        events = with_lineage_tree(invocation.stream(), estate.paths.lake_dir, context.log)
        yield from with_drift_summary(events, estate.paths.warehouse_path, context.log)
    yield Output(outcomes)


@op(
    ins={"outcomes": In(list[SiteOutcome])},
    out={},
    pool=WAREHOUSE_POOL,
    description="Evaluate every compliance check on the warehouse, land the evidence, report the asset checks.",
)
def evaluate_compliance(context: OpExecutionContext, estate: EstateResource, control: ControlStoreResource, outcomes):
    evaluation = run_evaluation(estate, control, context.run_id, context.log)
    for event in evidence_events(evaluation):
        yield event
    yield from check_evaluations(evaluation)


@op(description="Fail the run if any site failed, after the other sites and the warehouse are done.")
def report_outcomes(context: OpExecutionContext, outcomes: list[SiteOutcome]):
    failed = [o for o in outcomes if not o.ok]
    landed = [o for o in outcomes if o.ok]
    context.log.info(f"{len(landed)} sites landed, {sum(o.asset_count for o in landed)} assets")
    if failed:
        raise Failure(
            description=f"{len(failed)} of {len(outcomes)} sites failed: "
            + "; ".join(o.error or o.site_id for o in failed),
            metadata={"failed_sites": MetadataValue.json([o.site_id for o in failed])},
        )


@job(
    description="Discover every site, land the snapshots in the lake, build the warehouse (main job).",
    tags={"domain": "inventory"},
)
def refresh_estate_job():
    outcomes = plan_discovery().map(discover_one_site).collect()
    built = build_warehouse(outcomes, control_export=export_control_store(), configuration=export_configuration())
    evaluate_compliance(built)
    report_outcomes(built)
