"""Validate plans and store them as tasks, with the tool calls that made them.

Shared by every planner: the rule-based plan job, the LLM planner behind the sensors and
`qlrf ask`. A plan is stored whatever its verdicts say: pending_approval when every verdict allows
it, policy_denied (with the reasons) otherwise, so a refused plan is still visible and audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from qlrf_pipelines.planning.plan import Plan

REFUSED_KEY = "_refused"  # a tool call the platform refused records its reason under this key


@dataclass(frozen=True)
class ToolCall:
    tool: str
    arguments: dict[str, Any]
    result_size: int
    duration_ms: float
    step: int
    error: str | None = None

    def arguments_to_record(self) -> dict[str, Any]:
        return self.arguments | ({REFUSED_KEY: self.error} if self.error else {})


@dataclass(frozen=True)
class StoredTask:
    task_id: str
    status: str
    change: str
    new: bool


def store_plans(
    store,
    plans: Sequence[Plan],
    *,
    requested_by: str,
    known_asset_ids: set[str] | None,
    tool_calls: Iterable[ToolCall],
    run_id: str,
) -> list[StoredTask]:
    """Validate (schema, Rego, safety; `known_asset_ids` feeds safety.targets_known) and store each
    plan, deduplicated by plan hash; record the tool calls on every task this run created, or
    without a task when no plan was made (so a refused or answered request still shows its calls)."""
    from qlrf_pipelines.policy.validate import validate_plan

    calls = list(tool_calls)
    stored: list[StoredTask] = []
    for plan in plans:
        others = [p for p in plans if p is not plan]
        _, verdicts = validate_plan(plan, known_asset_ids=known_asset_ids, other_plans=others)
        task = store.create_task(
            plan, verdicts, requested_by=requested_by, dedupe_key=plan.plan_hash(), source_run_id=run_id
        )
        new = task.source_run_id == run_id
        if new:
            _record(store, task.task_id, calls, run_id)
        stored.append(StoredTask(task.task_id, task.status, plan.change, new))
    if not plans:
        _record(store, None, calls, run_id)
    return stored


def calls_markdown(calls: Iterable[ToolCall], limit: int = 50) -> str:
    """The tool calls as a Markdown table for run metadata (the Dagster UI shows it with the run)."""
    calls = list(calls)
    if not calls:
        return "no tool calls"
    lines = ["| step | tool | arguments | rows | ms |", "|---|---|---|---|---|"]
    for call in calls[:limit]:
        arguments = json.dumps(call.arguments, sort_keys=True, default=str).replace("|", "\\|")
        rows = f"refused: {call.error}".replace("|", "\\|") if call.error else str(call.result_size)
        lines.append(f"| {call.step} | `{call.tool}` | `{arguments[:200]}` | {rows} | {call.duration_ms:.0f} |")
    if len(calls) > limit:
        lines.append(f"\n{len(calls) - limit} more calls in ai_tool_invocations")
    return "\n".join(lines)


def _record(store, task_id: str | None, calls: list[ToolCall], run_id: str) -> None:
    for call in calls:
        store.record_tool_invocation(
            task_id, call.tool, call.arguments_to_record(), call.result_size, int(round(call.duration_ms)),
            call.step, run_id=run_id,
        )
