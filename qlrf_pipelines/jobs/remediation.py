"""Remediation jobs: plan from drift (pending a person's approval), then execute an approved plan.

plan_remediation_job reads the warehouse (inside a run, in the warehouse pool), plans with the
rule-based planner (or the LLM drift agent when QLRF_PLANNER=llm and a model endpoint is set),
validates every plan (schema, Rego, safety) and stores it as a task.
execute_remediation_job re-authorizes the task, then runs one op per phase (canary, then waves)
with its health checks; the first failed phase routes to the rollback op.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

from dagster import Config, Failure, In, in_process_executor, MetadataValue, OpExecutionContext, Out, Output, job, op

from qlrf_pipelines.assets.warehouse import WAREHOUSE_POOL
from qlrf_pipelines.execution.backends import ExecutionUnavailable, backend_for
from qlrf_pipelines.execution.engine import run_phase, run_rollback
from qlrf_pipelines.execution.health import LakeHealthChecker
from qlrf_pipelines.execution.lake_view import action_hints
from qlrf_pipelines.planning.plan import Plan, parse_plan
from qlrf_pipelines.resources.control import ControlStoreResource
from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.resources.llm import LLMResource

PHASE_OPS = 8  # the last phase op runs any phases beyond this count, in order


class PlanRemediationConfig(Config):
    snapshot_key: str = ""
    requested_by: str = "system"


def refuse_on_blocking_checks(estate: EstateResource) -> None:
    """Blocking compliance checks gate planning: while the latest evidence in the lake shows one
    failed or errored (e.g. inventory_fresh), no plan is made from that data."""
    from qlrf_pipelines.compliance.gate import blocking_failures

    failures = blocking_failures(estate.paths.lake_dir)
    if failures:
        raise Failure(
            description="remediation planning refused: blocking compliance checks failed in the latest evidence: "
            + "; ".join(f.describe() for f in failures),
            metadata={"blocking_checks": MetadataValue.json([f.check_id for f in failures])},
        )


@op(pool=WAREHOUSE_POOL, description="Plan remediation of open image drift; every plan waits for approval.")
def plan_remediation(
    context: OpExecutionContext,
    config: PlanRemediationConfig,
    estate: EstateResource,
    control: ControlStoreResource,
    llm: LLMResource,
):
    from qlrf_pipelines.jobs.plan_tasks import calls_markdown, store_plans

    refuse_on_blocking_checks(estate)
    plans, known, calls, planner = _plan_drift(context, config, estate, llm)
    with control.open() as store:
        created = store_plans(
            store, plans, requested_by=config.requested_by, known_asset_ids=known, tool_calls=calls,
            run_id=context.run_id,
        )
    for task in created:
        context.log.info(f"{task.task_id} [{task.status}] {task.change}")
    pending = sum(1 for t in created if t.status == "pending_approval")
    context.add_output_metadata(
        {
            "planner": planner,
            "tasks": MetadataValue.int(len(created)),
            "pending_approval": MetadataValue.int(pending),
            "policy_denied": MetadataValue.int(len(created) - pending),
            "tool_calls": MetadataValue.int(len(calls)),
            "tool_call_log": MetadataValue.md(calls_markdown(calls)),
            "snapshot_key": config.snapshot_key,
            "summary": MetadataValue.md(
                "\n".join(f"- `{t.task_id}` **{t.status}**: {t.change}" for t in created) or "no fixable drift"
            ),
        }
    )
    return [t.task_id for t in created]


def _plan_drift(context: OpExecutionContext, config: PlanRemediationConfig, estate: EstateResource, llm: LLMResource):
    """(plans, known asset ids, tool calls, planner name): the LLM drift agent when configured
    (QLRF_PLANNER=llm and an endpoint), else - or when the model fails - the rule-based planner."""
    from qlrf_pipelines.jobs.plan_tasks import ToolCall
    from qlrf_pipelines.planning.rule_based import plan_from_inputs
    from qlrf_pipelines.planning.warehouse_inputs import load_planning_inputs

    llm_calls: list[ToolCall] = []
    if llm.sensors_use_llm():
        if not llm.configured:
            context.log.warning("QLRF_PLANNER=llm but no model endpoint is configured: using the rule-based planner")
        else:
            from qlrf_pipelines.planning.llm.orchestrator import plan_drift

            outcome = plan_drift(
                config.snapshot_key or "latest", requested_by=config.requested_by, settings=llm.settings(),
                tool_context=tool_context_for(estate),
            )
            llm_calls = [
                ToolCall(i.tool, i.arguments, i.result_size, i.duration_ms, i.step, i.error) for i in outcome.invocations
            ]
            if outcome.error is None:
                context.log.info(f"LLM drift agent: {len(outcome.plans)} plan(s), {len(llm_calls)} tool calls, "
                                 f"{outcome.steps} model calls, {outcome.tokens} tokens")
                return outcome.plans, outcome.grounded_asset_ids, llm_calls, f"llm:{llm.model}"
            context.log.warning(f"LLM drift agent failed ({outcome.error}): using the rule-based planner")
    inputs = load_planning_inputs(estate.paths.warehouse_path)
    plans = plan_from_inputs(inputs, requested_by=config.requested_by, snapshot_key=config.snapshot_key or None)
    # the failed agent's calls stay on record before the rule-based planner's reads
    first = max((c.step for c in llm_calls), default=0) + 1
    calls = llm_calls + [
        ToolCall(i.tool, i.arguments, i.result_size, i.duration_ms, step)
        for step, i in enumerate(inputs.invocations, start=first)
    ]
    return plans, {row["asset_id"] for row in inputs.drift_items}, calls, "rule_based"


def tool_context_for(estate: EstateResource):
    """What the planner tools read inside a run: this estate's warehouse, lake, sites file, catalog."""
    from qlrf_pipelines.planning.tools.registry import ToolContext

    return ToolContext(
        warehouse_path=estate.paths.warehouse_path, lake_dir=estate.paths.lake_dir, sites_file=Path(estate.sites_file),
        compliance_catalog_paths=tuple(Path(p) for p in estate.compliance_catalog_files),
    )


# Both jobs are sequential by nature; one process avoids a worker start-up per op.
@job(
    description="Plan remediation of open drift into tasks pending a person's approval.",
    tags={"domain": "remediation"},
    executor_def=in_process_executor,
)
def plan_remediation_job():
    plan_remediation()


class ExecuteRemediationConfig(Config):
    task_id: str
    plan_hash: str
    dry_run: bool | None = None  # None: dry run unless the site has execution_enabled


@dataclass(frozen=True)
class ExecutionState:
    task_id: str
    plan_json: str
    plan_hash: str
    dry_run: bool
    completed: tuple[str, ...] = ()
    failed_phase: str | None = None
    reason: str | None = None
    status: str = "running"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def plan(self) -> Plan:
        return parse_plan(self.plan_json)


class StoreJournal:
    """The control store's action journal, keyed by dry run too (a dry run never counts as done
    for a real run)."""

    def __init__(self, store):
        self.store = store

    def record(self, task_id, plan_hash, phase, asset_id, action, dry_run, status, details) -> bool:
        return self.store.record_action(task_id, plan_hash, phase, asset_id, action, dry_run, status, details)

    def recorded(self, task_id, plan_hash, *, dry_run):
        return {
            (a["phase"], a["asset_id"], a["action"])
            for a in self.store.actions(task_id)
            if a["plan_hash"] == plan_hash and a["dry_run"] == bool(dry_run)
        }


@op(out=Out(ExecutionState), description="Re-check plan hash, approval, expiry and policy before any action.")
def authorize_task(
    context: OpExecutionContext, config: ExecuteRemediationConfig, estate: EstateResource, control: ControlStoreResource
):
    from qlrf_pipelines.control.errors import ExecutionRefused
    from qlrf_pipelines.policy.validate import validate_plan
    from qlrf_pipelines.policy.verdicts import all_allowed

    with control.open() as store:
        try:
            plan = store.authorize_execution(config.task_id, control.rbac())
        except ExecutionRefused as exc:
            raise Failure(f"{config.task_id}: execution refused: {exc}") from None
        refusal = None
        if plan.plan_hash() != config.plan_hash:
            refusal = f"the approved plan is {plan.plan_hash()[:12]}, not the requested {config.plan_hash[:12]}"
        else:
            _, verdicts = validate_plan(plan)
            denied = [v for v in verdicts if not v.allowed]
            if not all_allowed(verdicts):
                refusal = "policy no longer allows the plan: " + "; ".join(f"{v.rule}: {v.message}" for v in denied)
        site = estate.load_sites().site(plan.site_id)
        dry_run = config.dry_run if config.dry_run is not None else not site.execution_enabled
        if refusal is None:
            try:
                backend_for(site, dry_run_requested=dry_run)
            except ExecutionUnavailable as exc:
                refusal = str(exc)
        if refusal:
            store.audit("system", "execution_refused", config.task_id, {"reason": refusal, "run_id": context.run_id})
            raise Failure(f"{config.task_id}: execution refused: {refusal}")
        store.mark_started(config.task_id, context.run_id, plan_hash=config.plan_hash)
    context.log.info(f"{config.task_id}: authorized ({'dry run' if dry_run else 'REAL'}), {len(plan.phases)} phases")
    return ExecutionState(config.task_id, plan.canonical_json(), config.plan_hash, dry_run)


def phase_op(index: int):
    last = index == PHASE_OPS - 1
    what = f"phases {index + 1} and later" if last else f"phase {index + 1}"

    @op(
        name=f"phase_{index + 1}",
        out={"next": Out(ExecutionState, is_required=False), "failed": Out(ExecutionState, is_required=False)},
        description=f"Run {what} of the plan (phase 1 is the canary in production), then its health checks.",
    )
    def _phase(context: OpExecutionContext, estate: EstateResource, control: ControlStoreResource, state: ExecutionState):
        plan = state.plan()
        phases = plan.phases[index:] if last else plan.phases[index : index + 1]
        if not phases:
            yield Output(state, "next", metadata={"phase": "none (plan has fewer phases)"})
            return
        site = estate.load_sites().site(plan.site_id)
        backend = backend_for(site, dry_run_requested=state.dry_run)
        checker = LakeHealthChecker(estate.paths.lake_dir, dry_run=state.dry_run)
        hints = action_hints(estate.paths.lake_dir, plan)
        with control.open() as store:
            journal = StoreJournal(store)
            for phase in phases:
                outcome = run_phase(
                    plan, state.plan_hash, state.task_id, phase, backend, checker, journal, state.dry_run, hints
                )
                health = [f"{h.kind}: {'passed' if h.passed else 'FAILED'} ({h.details})" for h in outcome.health]
                store.record_phase(state.task_id, phase.name, outcome.passed, outcome.to_dict())
                for line in [f"{phase.name} ({phase.kind}, {len(phase.asset_ids)} assets)"] + health:
                    context.log.info(line)
                for action in outcome.actions:
                    context.log.info(f"  {action['asset_id']}: {action['details'].get('call', action['status'])}")
                metadata = {
                    "phase": phase.name,
                    "kind": phase.kind,
                    "assets": MetadataValue.int(len(phase.asset_ids)),
                    "actions": MetadataValue.json(outcome.actions),
                    "health_checks": MetadataValue.md("\n".join(f"- {h}" for h in health) or "none"),
                    "dry_run": state.dry_run,
                }
                if not outcome.passed:
                    context.log.warning(f"{phase.name} failed: {outcome.reason}; rolling back")
                    failed = replace(state, failed_phase=phase.name, reason=outcome.reason)
                    yield Output(failed, "failed", metadata=metadata | {"reason": outcome.reason or ""})
                    return
                state = replace(state, completed=state.completed + (phase.name,))
        yield Output(state, "next", metadata=metadata)

    return _phase


PHASES = [phase_op(i) for i in range(PHASE_OPS)]


@op(
    ins={"failures": In(list[ExecutionState])},
    out=Out(ExecutionState),
    description="Restore the previous image on every asset a replace was attempted on, newest first.",
)
def rollback(context: OpExecutionContext, estate: EstateResource, control: ControlStoreResource, failures):
    state = failures[0]
    plan = state.plan()
    touched = [p for p in plan.phases if p.name in state.completed or p.name == state.failed_phase]
    site = estate.load_sites().site(plan.site_id)
    backend = backend_for(site, dry_run_requested=state.dry_run)
    with control.open() as store:
        restored = run_rollback(
            plan, state.plan_hash, state.task_id, touched, backend, StoreJournal(store), state.dry_run,
            action_hints(estate.paths.lake_dir, plan),
        )
        ok = all(a["status"] != "failed" for a in restored)
        store.mark_rolled_back(state.task_id, {"failed_phase": state.failed_phase, "restored": len(restored), "ok": ok})
    for action in restored:
        context.log.info(f"  restore {action['asset_id']}: {action['details'].get('call', action['status'])}")
    context.add_output_metadata({"restored": MetadataValue.int(len(restored)), "failed_phase": state.failed_phase or ""})
    return replace(state, status="rolled_back" if ok else "failed")


@op(ins={"outcomes": In(list[ExecutionState])}, description="Record how the task ended; fail the run unless it succeeded.")
def finish_task(context: OpExecutionContext, control: ControlStoreResource, outcomes):
    state = outcomes[0]
    status = "succeeded" if state.status == "running" else state.status
    with control.open() as store:
        store.mark_finished(state.task_id, status)
    context.log.info(f"{state.task_id}: {status}")
    if status != "succeeded":
        raise Failure(f"{state.task_id} ended {status}: {state.reason}")


@job(
    description="Execute an approved remediation task: canary, waves, health checks, rollback.",
    tags={"domain": "remediation"},
    executor_def=in_process_executor,
)
def execute_remediation_job():
    state = authorize_task()
    failures = []
    for phase in PHASES:
        state, failed = phase(state)
        failures.append(failed)
    finish_task([state, rollback(failures)])
