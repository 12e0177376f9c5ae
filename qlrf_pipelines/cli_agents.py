"""`qlrf tools` and `qlrf agents`: the planner tool registry and the specialist agents."""

from __future__ import annotations

import json

import click

from qlrf_pipelines import settings


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
    paths = settings.paths()
    context = registry.ToolContext(warehouse_path=paths.warehouse_path, lake_dir=paths.lake_dir)
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
