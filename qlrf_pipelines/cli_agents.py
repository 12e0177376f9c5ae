"""`qlrf tools` and `qlrf agents`: the planner tool registry and the specialist agents."""

from __future__ import annotations

import getpass
import json
import os

import click



def _registry():
    from qlrf_pipelines.planning import tools

    return tools


@click.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def tools(ctx: click.Context, fmt: str) -> None:
    """List the planner tools (name, effect, agents, description; JSON adds each input schema)."""
    if ctx.invoked_subcommand is not None:
        return
    registry = _registry().REGISTRY
    if fmt == "json":
        click.echo(json.dumps([t.describe(with_schema=True) for t in registry.values()], indent=2))
        return
    from tabulate import tabulate

    rows = [(t.name, t.effect, ", ".join(t.agents), t.description) for t in registry.values()]
    click.echo(tabulate(rows, headers=["tool", "effect", "agents", "description"], maxcolwidths=[None, None, 30, 60]))


@tools.command("call")
@click.argument("name")
@click.option("--args", "raw_args", default="{}", show_default=True, help="Tool arguments as a JSON object.")
@click.option("--max-rows", type=click.IntRange(min=1), default=200, show_default=True)
def call(name: str, raw_args: str, max_rows: int) -> None:
    """Run tool NAME on the warehouse (read-only) and print the result as JSON."""
    registry = _registry()
    try:
        arguments = json.loads(raw_args)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"--args is not valid JSON: {exc}") from None
    context = registry.ToolContext.from_settings()
    try:
        result = registry.call_tool(context, name, arguments, max_rows=max_rows)
    except registry.ToolError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result.to_dict(), indent=2, default=str))


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def agents(fmt: str) -> None:
    """List the specialist agents with their purpose and tools."""
    registry = _registry()
    rows = [
        {"agent": name, "purpose": purpose, "tools": [t.name for t in registry.tools_for_agent(name)]}
        for name, purpose in registry.AGENTS.items()
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from tabulate import tabulate

    click.echo(tabulate(
        [(r["agent"], r["purpose"], ", ".join(r["tools"])) for r in rows],
        headers=["agent", "purpose", "tools"], maxcolwidths=[None, 50, 50],
    ))


@click.command()
@click.argument("request", nargs=-1, required=True)
@click.option("--user", default=lambda: os.environ.get("QLRF_USER") or getpass.getuser(), show_default="$QLRF_USER or you",
              help="Who asks; recorded on the task (an approver must be someone else).")
@click.option("--json", "as_json", is_flag=True, help="The outcome as JSON.")
@click.option("--verbose", is_flag=True, help="Show Dagster's run log.")
def ask(request: tuple[str, ...], user: str, as_json: bool, verbose: bool) -> None:
    """Ask the LLM planner in plain words, e.g. qlrf ask "patch production web servers in eu-west
    to the latest ubuntu-22 golden image, canary first".

    Runs ask_planner_job: the request becomes a task spec, the specialist agent gathers facts with
    read-only tools, and any plan it proposes is validated and stored pending a person's approval.
    Needs QLRF_LLM_BASE_URL and QLRF_LLM_MODEL (any OpenAI-compatible server)."""
    from dagster import DagsterEventType

    from qlrf_pipelines import settings
    from qlrf_pipelines.definitions import build_definitions
    from qlrf_pipelines.instance import get_instance

    from qlrf_pipelines.planning.llm.settings import LLMNotConfigured, LLMSettings

    text = " ".join(request).strip()
    try:
        LLMSettings.from_env()
    except LLMNotConfigured as exc:
        raise click.ClickException(str(exc)) from None
    paths = settings.paths()
    defs = build_definitions()
    job = defs.resolve_job_def("ask_planner_job")
    run_config = {
        "ops": {"plan_request": {"config": {"request": text, "requested_by": user}}},
        "loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}},
    }
    result = job.execute_in_process(
        instance=get_instance(paths), resources=defs.resources, run_config=run_config, raise_on_error=False,
    )
    if not result.success:
        reasons = [
            event.event_specific_data.error.message.strip()
            for event in result.all_events
            if event.event_type == DagsterEventType.STEP_FAILURE and event.event_specific_data.error
        ]
        _echo_calls(result.run_id, as_json)
        raise click.ClickException(f"run {result.run_id}: " + ("; ".join(reasons) or "failed"))
    outcome = result.output_for_node("plan_request")
    if as_json:
        click.echo(json.dumps(outcome | {"run_id": result.run_id, "tool_invocations": _calls(result.run_id)},
                              indent=2, default=str))
        return
    click.echo(f"agent: {outcome['agent'] or '-'} · intent: {outcome['intent'] or '-'} · risk: {outcome['risk'] or '-'}"
               f" · {outcome['tool_calls']} tool calls, {outcome['model_steps']} model calls, {outcome['tokens']} tokens")
    _echo_calls(result.run_id, as_json)
    if outcome["answer"]:
        click.echo(f"\n{outcome['answer']}\n")
    for task in outcome["tasks"]:
        click.echo(f"{task['task_id']} [{task['status']}] {task['change']}")
    if outcome["tasks"]:
        click.echo("Review with: qlrf tasks show <task>; approve with: qlrf tasks approve <task> --user <approver> --reason ...")


def _calls(run_id: str) -> list[dict]:
    from qlrf_pipelines.cli_tasks import _store

    with _store() as store:
        return store.tool_invocations(run_id=run_id)


def _echo_calls(run_id: str, as_json: bool) -> None:
    if as_json:
        return
    for row in _calls(run_id):
        refused = row["arguments"].get("_refused")
        rows = f"{row['result_size']} row{'' if row['result_size'] == 1 else 's'}"
        what = f"refused: {refused}" if refused else f"{rows}, {row['duration_ms']} ms"
        arguments = {k: v for k, v in row["arguments"].items() if k != "_refused"}
        click.echo(f"  step {row['step']}: {row['tool']}({json.dumps(arguments, sort_keys=True)}) -> {what}")
