"""Validate a plan before anyone is asked to approve it: schema, then Rego policies, then safety.

A plan that does not match the schema gets one "schema" Verdict (denied, with pydantic's error)
and nothing else, because policies and safety checks cannot judge a plan they cannot read.
Otherwise the verdicts are: one allowed schema verdict, one per policy rule, one per safety check.
The plan passes when every verdict is allowed (`verdicts.all_allowed`).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from pydantic import ValidationError

from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.plan import PLAN_SCHEMA_VERSION, Plan
from qlrf_pipelines.policy.engine import evaluate_policies
from qlrf_pipelines.policy.safety import BUILTIN, safety_checks
from qlrf_pipelines.policy.verdicts import Verdict

SCHEMA_RULE = "schema.plan"


def _schema_error(message: str) -> tuple[None, list[Verdict]]:
    return None, [Verdict("schema", SCHEMA_RULE, False, message, BUILTIN)]


def parse_plan_input(plan_or_json: Plan | str | bytes | dict[str, Any]) -> Plan:
    """A Plan from a Plan, JSON text or a dict; raises ValidationError / ValueError / TypeError.

    A Plan object is validated again from its data, in case it was built without validation
    (`model_construct`) or by a planner that bypassed the schema.
    """
    if isinstance(plan_or_json, Plan):
        return Plan.model_validate(plan_or_json.model_dump(mode="json"))
    if isinstance(plan_or_json, (str, bytes)):
        return Plan.model_validate_json(plan_or_json)
    if isinstance(plan_or_json, dict):
        return Plan.model_validate(plan_or_json)
    raise TypeError(f"expected a Plan, JSON text or a dict, got {type(plan_or_json).__name__}")


def validate_plan(
    plan_or_json: Plan | str | bytes | dict[str, Any],
    known_asset_ids: set[str] | None = None,
    *,
    limits: PlanningLimits | None = None,
    other_plans: Iterable[Plan] = (),
) -> tuple[Plan | None, list[Verdict]]:
    try:
        plan = parse_plan_input(plan_or_json)
    except ValidationError as exc:
        return _schema_error(f"the plan does not match schema v{PLAN_SCHEMA_VERSION}: {exc}")
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        return _schema_error(f"the plan cannot be read: {exc}")
    if plan.schema_version != PLAN_SCHEMA_VERSION:
        return _schema_error(f"plan schema version {plan.schema_version}, expected {PLAN_SCHEMA_VERSION}")
    verdicts = [Verdict("schema", SCHEMA_RULE, True, f"the plan matches schema v{PLAN_SCHEMA_VERSION}", BUILTIN)]
    verdicts += evaluate_policies(plan, limits)
    verdicts += safety_checks(plan, known_asset_ids, other_plans)
    return plan, verdicts
