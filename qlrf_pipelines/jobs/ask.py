"""ask_planner_job: a natural-language request, as run config, becomes tasks pending approval.

The op runs in the warehouse pool (its tools read DuckDB), refuses while a blocking compliance
check fails (like plan_remediation), and stores the LLM's plans through the same validation as
every planner. A request the platform cannot serve, a question, or "nothing to change" ends the
run successfully with the answer in the output metadata; a model that fails (endpoint down, too
slow, invalid output after retries, budget spent) fails the run with that reason, and the tool
calls it made are recorded either way.
"""


from dagster import Config, Failure, MetadataValue, OpExecutionContext, in_process_executor, job, op
from pydantic import Field

from qlrf_pipelines.assets.warehouse import WAREHOUSE_POOL
from qlrf_pipelines.jobs.remediation import refuse_on_blocking_checks, tool_context_for
from qlrf_pipelines.resources.control import ControlStoreResource
from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.resources.llm import LLMResource


class AskConfig(Config):
    request: str = Field(description="What to do, in plain words, e.g. 'patch production web servers in eu-west'")
    requested_by: str = Field(default="system", description="who asks (recorded on the task and in the audit log)")


@op(pool=WAREHOUSE_POOL, description="Turn a request into a task spec, gather facts with tools, store proposed plans.")
def plan_request(
    context: OpExecutionContext, config: AskConfig, estate: EstateResource, control: ControlStoreResource,
    llm: LLMResource,
):
    from qlrf_pipelines.jobs.plan_tasks import ToolCall, calls_markdown, store_plans
    from qlrf_pipelines.planning.llm.orchestrator import ask
    from qlrf_pipelines.planning.llm.settings import LLMNotConfigured

    try:
        settings = llm.settings()
    except LLMNotConfigured as exc:
        raise Failure(description=str(exc)) from None
    refuse_on_blocking_checks(estate)
    outcome = ask(
        config.request, requested_by=config.requested_by, settings=settings, tool_context=tool_context_for(estate)
    )
    calls = [ToolCall(i.tool, i.arguments, i.result_size, i.duration_ms, i.step, i.error) for i in outcome.invocations]
    with control.open() as store:
        created = store_plans(
            store, outcome.plans, requested_by=config.requested_by, known_asset_ids=outcome.grounded_asset_ids,
            tool_calls=calls, run_id=context.run_id,
        )
        store.audit(config.requested_by, "llm_request", None, {
            "request": config.request, "run_id": context.run_id, "outcome": outcome.kind,
            "tasks": [t.task_id for t in created], "error": outcome.error,
        })
    for call in outcome.invocations:
        context.log.info(f"step {call.step}: {call.tool} -> {call.error or f'{call.result_size} rows'}")
    for task in created:
        context.log.info(f"{task.task_id} [{task.status}] {task.change}")
    summary = outcome.summary() | {"tasks": [{"task_id": t.task_id, "status": t.status, "change": t.change} for t in created]}
    if outcome.error:
        raise Failure(
            description=f"request not served: {outcome.error}",
            metadata={"outcome": MetadataValue.json(summary), "tool_call_log": MetadataValue.md(calls_markdown(calls))},
        )
    context.add_output_metadata({
        "outcome": MetadataValue.json(summary),
        "answer": MetadataValue.md(outcome.answer or ""),
        "tasks": MetadataValue.int(len(created)),
        "pending_approval": MetadataValue.int(sum(1 for t in created if t.status == "pending_approval")),
        "tool_calls": MetadataValue.int(len(calls)),
        "tool_call_log": MetadataValue.md(calls_markdown(calls)),
        "model_steps": MetadataValue.int(outcome.steps),
        "tokens": MetadataValue.int(outcome.tokens),
    })
    return summary


@job(
    description="Serve a natural-language request with the LLM planner: task spec, agent, tools, plans pending approval.",
    tags={"domain": "remediation"},
    executor_def=in_process_executor,
)
def ask_planner_job():
    plan_request()
