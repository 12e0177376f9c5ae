"""Tools that draft a change for a person to review: patch and rollback plans, blast radius,
SOPs, control checks. They propose; they never act.

Nothing here writes: no control store, no lake, no warehouse. Warehouse reads go through
`ctx.rows` (one short read-only connection each); `check_control` opens the warehouse read-only
once for its checks and records no evidence. A drafted plan becomes a task only when the plan
job stores it, and runs only after a person approves it.

Patch plans are the rule-based planner's (planning/rule_based.py) over the planner's own reads
(planning/queries.py) with the tool's filters applied, and with the planner's fleet sizes and
snapshot key for the whole estate: a drafted plan of a group is the plan the plan job would store
for it (same plan hash) as long as the filters do not split the group (`asset_ids` may).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pydantic import Field, ValidationError

from qlrf_pipelines.planning.inputs import snapshot_key_of
from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.plan import Plan
from qlrf_pipelines.planning.queries import (
    ASSET_REGIONS_SQL,
    DRIFT_ITEMS_SQL,
    FIXABLE_DRIFT_TYPES,
    IMAGE_ARTIFACTS_SQL,
    SITE_FLEET_SQL,
)
from qlrf_pipelines.planning.tools.registry import Tool, ToolContext, ToolError, register
from qlrf_pipelines.planning.tools.warehouse_tools import _Args, _equal_filters, _where

IN_SCOPE_KINDS = ("vm", "node", "workload")  # the fleet a share limit is measured against (SITE_FLEET_SQL)
SHOWN_FAILING = 20  # failing ids quoted per check by check_control
MAX_ASSET_IDS = 1000
SHOWN_PHASES = 20  # phases listed in a plan summary (a plan of 10,000 assets has 1,000 waves)
MAX_UNPLANNED = 200  # unplanned drift rows listed by generate_patch_plan (the count says how many)

_ASSET_IDS_DESCRIPTION = "Asset ids (as query_assets returns them, e.g. aws:aws-prod-use1:i-0abc...)."


def _ids_clause(column: str, asset_ids: Sequence[str] | None) -> tuple[list[str], list[Any]]:
    """`list_contains(?, column)` with the ids as one list parameter (none when not given)."""
    if not asset_ids:
        return [], []
    return [f"list_contains(?::VARCHAR[], {column})"], [list(asset_ids)]


def _limits() -> PlanningLimits:
    return PlanningLimits.load()


# ================================================================ pure helpers

def in_scope(asset: Mapping[str, Any]) -> bool:
    """Counted in its site's fleet, as SITE_FLEET_SQL counts: kind vm/node/workload, not terminated."""
    return asset.get("kind") in IN_SCOPE_KINDS and (asset.get("state") or "") != "terminated"


def planner_fleet_sizes(fleet_sizes: Mapping[str, int], drifting: Mapping[str, int]) -> dict[str, int]:
    """The fleet the rule-based planner measures each site's share limits against: the in-scope
    assets, never less than the distinct drifting assets of the site (plan_remediations)."""
    sites = set(fleet_sizes) | set(drifting)
    return {s: max(int(fleet_sizes.get(s) or 0), int(drifting.get(s) or 0)) for s in sorted(sites)}


def _count(values: Iterable[Any]) -> dict[str, int]:
    counts = Counter("(none)" if v is None else str(v) for v in values)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def blast_radius(
    assets: Sequence[Mapping[str, Any]],
    fleet_sizes: Mapping[str, int],
    limits: PlanningLimits,
    unknown_asset_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """What a change to `assets` touches, against each site's fleet and the policy caps.

    A site's selection "exceeds the plan cap" when its in-scope assets are more than one plan
    may target (max_plan_share_of_fleet of the fleet): one plan of them would be denied by the
    policy rule remediation.fleet_share_capped, so the rule-based planner splits it into
    `plans_needed` plans, each approved and canaried on its own.
    """
    total = len(assets)
    production = [a for a in assets if limits.is_production(a.get("environment"))]
    per_site: dict[str, list[Mapping[str, Any]]] = {}
    for asset in assets:
        per_site.setdefault(str(asset.get("site_id")), []).append(asset)
    sites = []
    for site_id in sorted(per_site):
        members = per_site[site_id]
        scoped = sum(1 for a in members if in_scope(a))
        fleet = int(fleet_sizes.get(site_id) or 0)
        cap = limits.plan_cap(fleet)
        environments = sorted({str(a.get("environment")) for a in members if a.get("environment")})
        sites.append({
            "site_id": site_id,
            "environment": ", ".join(environments) or None,
            "assets": len(members),
            "in_scope_assets": scoped,
            "fleet_size": fleet,
            "share_of_fleet": round(scoped / fleet, 4) if fleet else None,
            "plan_cap": cap,
            "exceeds_plan_cap": scoped > cap,
            "plans_needed": math.ceil(scoped / cap) if scoped else 0,
            "phase_cap": limits.wave_cap(fleet),
            "production": any(limits.is_production(a.get("environment")) for a in members),
        })
    over = [s for s in sites if s["exceeds_plan_cap"]]
    notes = [
        f"{s['site_id']}: {s['in_scope_assets']} in-scope assets exceed the plan cap of {s['plan_cap']} "
        f"({limits.max_plan_share_of_fleet:.0%} of a fleet of {s['fleet_size']}): one plan of them would be "
        f"denied (remediation.fleet_share_capped); the planner splits them into {s['plans_needed']} plans"
        for s in over
    ]
    out_of_scope = total - sum(s["in_scope_assets"] for s in sites)
    if out_of_scope:
        notes.append(f"{out_of_scope} selected asset(s) are outside the fleet (not vm/node/workload, or terminated)")
    if unknown_asset_ids:
        notes.append(f"{len(unknown_asset_ids)} asset id(s) are not in the warehouse")
    return {
        "selected_assets": total,
        "in_scope_assets": sum(s["in_scope_assets"] for s in sites),
        "unknown_asset_ids": sorted(set(unknown_asset_ids)),
        "production_assets": len(production),
        "production_share": round(len(production) / total, 4) if total else 0.0,
        "by_site": sites,
        "by_environment": _count(a.get("environment") for a in assets),
        "by_provider": _count(a.get("provider") for a in assets),
        "by_kind": _count(a.get("kind") for a in assets),
        "exceeds_policy_caps": bool(over),
        "policy_caps": {
            "max_plan_share_of_fleet": limits.max_plan_share_of_fleet,
            "max_wave_share_of_site": limits.max_wave_share_of_site,
            "max_batch_size": limits.max_batch_size,
        },
        "notes": notes,
    }


def rollback_order(plan: Plan | None, asset_ids: Sequence[str] | None = None) -> list[tuple[str | None, str]]:
    """(phase name or None, asset id) in the order to restore them: the plan's latest phase first
    (its assets in plan order), then any other asset id as given; each asset once.

    With a plan and asset ids, only those ids of the plan are kept (ids not in the plan follow)."""
    wanted = list(dict.fromkeys(asset_ids or []))
    order: list[tuple[str | None, str]] = []
    seen: set[str] = set()
    if plan is not None:
        for phase in reversed(plan.phases):
            for asset_id in phase.asset_ids:
                if (not wanted or asset_id in wanted) and asset_id not in seen:
                    order.append((phase.name, asset_id))
                    seen.add(asset_id)
    for asset_id in wanted:
        if asset_id not in seen:
            order.append((None, asset_id))
            seen.add(asset_id)
    return order


def previous_image(history: Sequence[Mapping[str, Any]], current_ref: str | None) -> dict[str, Any] | None:
    """The image an asset ran before its current one: the newest snapshot whose image_ref
    differs from `current_ref`, looking back from the latest (history rows newest first or not:
    they are sorted by snapshot_id here). None when every snapshot shows the current image."""
    for row in sorted(history, key=lambda r: str(r.get("snapshot_id") or ""), reverse=True):
        if row.get("image_ref") and row.get("image_ref") != current_ref:
            return {
                "image_ref": row.get("image_ref"),
                "image_id": row.get("image_id"),
                "snapshot_id": row.get("snapshot_id"),
                "snapshot_at": row.get("snapshot_at"),
            }
    return None


def rollback_entry(
    order: int,
    phase: str | None,
    asset_id: str,
    current: Mapping[str, Any] | None,
    plan: Plan | None,
    history: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """What asset `asset_id` runs now and what a rollback restores (status explains the why)."""
    entry: dict[str, Any] = {"order": order, "phase": phase, "asset_id": asset_id}
    if current is None:
        return entry | {
            "known": False, "status": "unknown",
            "note": "not in the warehouse (latest snapshot of every site): nothing to restore from here",
        }
    now_ref, now_id = current.get("image_ref"), current.get("image_id")
    entry |= {
        "known": True, "name": current.get("name"), "site_id": current.get("site_id"),
        "environment": current.get("environment"), "state": current.get("state"),
        "current_image_ref": now_ref, "current_image_id": now_id,
    }
    target = next((t for t in plan.targets if t.asset_id == asset_id), None) if plan is not None else None
    if target is not None:
        entry |= {"restore_image_ref": target.from_image_ref, "restore_image_id": target.from_image_id,
                  "restore_source": "plan"}
        on_from = (target.from_image_ref is not None and now_ref == target.from_image_ref) or (
            target.from_image_ref is None and target.from_image_id is not None and now_id == target.from_image_id)
        on_to = (target.to_image_ref is not None and now_ref == target.to_image_ref) or (
            target.to_image_ref is None and now_id == target.to_image_id)
        if on_from:
            entry |= {"status": "not_changed",
                      "note": "still runs the image it ran before the plan: nothing to restore"}
        elif on_to:
            entry |= {"status": "restore", "note": f"runs the plan's target {target.to_image_id}: restore its previous image"}
        else:
            entry |= {"status": "diverged",
                      "note": "runs neither the plan's previous nor its target image: check by hand before restoring"}
        return entry
    earlier = previous_image(history, now_ref)
    if earlier is None:
        return entry | {
            "restore_image_ref": None, "restore_image_id": None, "restore_source": None,
            "status": "no_earlier_image",
            "note": "every snapshot in the lake shows the current image: no earlier image to restore",
        }
    return entry | {
        "restore_image_ref": earlier["image_ref"], "restore_image_id": earlier["image_id"],
        "restore_source": "history", "restore_seen_in_snapshot": earlier["snapshot_id"],
        "status": "restore",
        "note": f"ran {earlier['image_id'] or earlier['image_ref']} in snapshot {earlier['snapshot_id']} "
                "(the latest snapshot with a different image)",
    }


def plan_summary(plan: Plan, verdicts: Sequence[Any]) -> dict[str, Any]:
    """The reviewable summary of a drafted plan, its verdicts and the plan JSON."""
    checked = [v.to_dict() if hasattr(v, "to_dict") else dict(v) for v in verdicts]
    return {
        "plan_hash": plan.plan_hash(),
        "site_id": plan.site_id,
        "environment": plan.environment,
        "family": plan.family,
        "to_image_id": plan.to_image_id,
        "change": plan.change,
        "intent": plan.task.intent,
        "risk": plan.task.risk,
        "targets": len(plan.targets),
        "fleet_size": plan.fleet_size,
        "phase_count": len(plan.phases),
        "phases": [{"name": p.name, "kind": p.kind, "size": len(p.asset_ids)} for p in plan.phases[:SHOWN_PHASES]]
        + ([f"{len(plan.phases) - SHOWN_PHASES} more phases"] if len(plan.phases) > SHOWN_PHASES else []),
        "allowed": all(v["allowed"] for v in checked),
        "verdicts": [{"rule": v["rule"], "allowed": v["allowed"], "message": v["message"]} for v in checked],
        "plan": plan.model_dump(mode="json"),
    }


# ================================================================ shared warehouse reads

def _known_values(ctx: ToolContext, sql: str, column: str) -> list[str]:
    return [r[column] for r in ctx.rows(sql)]


def _check_site_and_family(ctx: ToolContext, site_id: str | None, family: str | None) -> None:
    if site_id is not None and not ctx.rows("SELECT 1 FROM sites WHERE site_id = ?", [site_id]):
        known = _known_values(ctx, "SELECT site_id FROM sites ORDER BY site_id", "site_id")
        raise ToolError(f"unknown site_id {site_id!r}; known sites: {', '.join(known)}")
    if family is not None and not ctx.rows("SELECT 1 FROM golden_image_families WHERE family = ?", [family]):
        known = _known_values(ctx, "SELECT family FROM golden_image_families ORDER BY family", "family")
        raise ToolError(f"unknown family {family!r}; known families: {', '.join(known)}")


def _current_assets(ctx: ToolContext, asset_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    clauses, params = _ids_clause("asset_id", asset_ids)
    rows = ctx.rows(
        "SELECT asset_id, site_id, provider, environment, kind, name, state, image_ref, image_id, image_family, "
        "image_version, region FROM assets" + _where(clauses) + " ORDER BY asset_id",
        params,
    )
    return {r["asset_id"]: r for r in rows}


def _planner_fleet(ctx: ToolContext) -> tuple[dict[str, int], dict[str, str]]:
    """(site -> fleet as the planner measures it, site -> latest snapshot id) for every site."""
    fleet = ctx.rows(SITE_FLEET_SQL)
    drifting = ctx.rows(
        f"SELECT site_id, count(DISTINCT asset_id) AS drifting FROM ({DRIFT_ITEMS_SQL}) AS drift GROUP BY site_id"
    )
    sizes = planner_fleet_sizes(
        {r["site_id"]: int(r["fleet_size"]) for r in fleet}, {r["site_id"]: int(r["drifting"]) for r in drifting}
    )
    snapshots = {r["site_id"]: r["snapshot_id"] for r in fleet if r["snapshot_id"] is not None}
    return sizes, snapshots


@dataclass
class Draft:
    plans: list[Plan]
    verdicts: list[list[Any]]
    drift_rows: list[dict[str, Any]]
    unknown_asset_ids: list[str] = field(default_factory=list)
    unplanned: list[dict[str, Any]] = field(default_factory=list)


def draft_plans(
    ctx: ToolContext,
    site_id: str | None = None,
    environment: str | None = None,
    family: str | None = None,
    asset_ids: Sequence[str] | None = None,
) -> Draft:
    """The rule-based planner's plans over the open image drift the filters select, validated
    as the plan job validates them (known assets = the drift rows read; other plans = the rest)."""
    from qlrf_pipelines.planning.rule_based import DEFAULT_TOOLS, plan_remediations
    from qlrf_pipelines.policy.validate import validate_plan

    _check_site_and_family(ctx, site_id, family)
    clauses, params = _equal_filters((("site_id", site_id), ("environment", environment), ("family", family)))
    ids_clauses, ids_params = _ids_clause("asset_id", asset_ids)
    drift = ctx.rows(
        f"SELECT * FROM ({DRIFT_ITEMS_SQL}) AS drift" + _where(clauses + ids_clauses) + " ORDER BY site_id, asset_id",
        params + ids_params,
    )
    site_clauses, site_params = _equal_filters((("site_id", site_id),))
    artifacts = ctx.rows(
        f"SELECT * FROM ({IMAGE_ARTIFACTS_SQL}) AS artifacts" + _where(site_clauses)
        + " ORDER BY site_id, image_id, region, provider_image_id",
        site_params,
    )
    fleet_sizes, snapshot_ids = _planner_fleet(ctx)
    drifting_ids = sorted({r["asset_id"] for r in drift})
    region_clauses, region_params = _ids_clause("asset_id", drifting_ids)
    regions = {
        r["asset_id"]: r["region"]
        for r in (ctx.rows(f"SELECT * FROM ({ASSET_REGIONS_SQL}) AS regions" + _where(region_clauses), region_params)
                  if drifting_ids else [])
    }
    plans = plan_remediations(
        drift, artifacts, fleet_sizes, snapshot_ids,
        snapshot_key=snapshot_key_of(snapshot_ids), requested_by="system", limits=_limits(),
        asset_regions=regions, query=DRIFT_ITEMS_SQL, tools_used=DEFAULT_TOOLS,
    )
    known = {r["asset_id"] for r in drift}
    verdicts = []
    for plan in plans:
        _, checked = validate_plan(plan, known_asset_ids=known, other_plans=[p for p in plans if p is not plan])
        verdicts.append(checked)

    planned = {t.asset_id for p in plans for t in p.targets}
    unplanned: dict[str, dict[str, Any]] = {}
    for row in drift:
        if row["asset_id"] in planned:
            continue
        reason = (
            f"{row['drift_type']} is not fixed by moving to the current golden image"
            if row["drift_type"] not in FIXABLE_DRIFT_TYPES else "no family or current golden image to move to"
        )
        unplanned.setdefault(row["asset_id"], {
            "asset_id": row["asset_id"], "site_id": row["site_id"], "asset_name": row.get("asset_name"),
            "drift_type": row["drift_type"], "image_id": row.get("image_id"), "reason": reason,
        })
    unknown: list[str] = []
    if asset_ids:
        current = _current_assets(ctx, asset_ids)
        unknown = sorted(set(asset_ids) - set(current))
        for asset_id in sorted(set(asset_ids) & set(current) - known):
            unplanned.setdefault(asset_id, {
                "asset_id": asset_id, "site_id": current[asset_id]["site_id"],
                "asset_name": current[asset_id]["name"], "drift_type": None,
                "image_id": current[asset_id]["image_id"],
                "reason": "no open image drift on a running asset (outside the filters, or nothing to fix)",
            })
    return Draft(plans, verdicts, drift, unknown, [unplanned[k] for k in sorted(unplanned)])


def _planning_gate(ctx: ToolContext) -> list[str]:
    """Blocking compliance checks whose latest evidence failed: the plan job refuses to plan."""
    if ctx.lake_dir is None or not Path(ctx.lake_dir).exists():
        return []
    from qlrf_pipelines.compliance.gate import blocking_failures

    try:
        return [f.describe() for f in blocking_failures(Path(ctx.lake_dir))]
    except Exception as exc:  # noqa: BLE001 - an unreadable evidence lake is worth a note, not a failed draft
        return [f"could not read the compliance evidence in the lake: {exc}"]


def _parse_plan(data: Mapping[str, Any]) -> Plan:
    from qlrf_pipelines.policy.validate import parse_plan_input

    try:
        return parse_plan_input(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'plan'}: {e.get('msg')}" for e in exc.errors()[:5]
        )
        raise ToolError(f"plan: not a valid plan (pass the `plan` object generate_patch_plan returns): {problems}") from None
    except (ValueError, TypeError) as exc:
        raise ToolError(f"plan: not a valid plan: {exc}") from None


# ================================================================ generate_patch_plan

class PatchFilterArgs(_Args):
    site_id: str | None = Field(None, description="Only drift of this site (e.g. aws-prod-use1).")
    environment: str | None = Field(None, description="Only drift of this environment, e.g. production or staging.")
    family: str | None = Field(None, description="Only assets on this golden image family, e.g. ubuntu-22.04-base.")
    asset_ids: list[str] | None = Field(
        None, min_length=1, max_length=MAX_ASSET_IDS,
        description="Only these assets. " + _ASSET_IDS_DESCRIPTION,
    )
    max_plans: int = Field(
        5, ge=1, le=50, description="Return the whole plan JSON (or write the runbook) for at most this many "
                                    "plans; the others are summarised. Narrow the filters to see them.",
    )


def _generate_patch_plan(ctx: ToolContext, args: PatchFilterArgs) -> dict[str, Any]:
    draft = draft_plans(ctx, args.site_id, args.environment, args.family, args.asset_ids)
    plans = [plan_summary(p, v) for p, v in zip(draft.plans, draft.verdicts)]
    for summary in plans[args.max_plans:]:  # a large estate drafts many plans: keep the answer readable
        summary["plan"] = f"not included: only the first {args.max_plans} plans carry their JSON (max_plans)"
    unplanned = draft.unplanned[:MAX_UNPLANNED]
    return {
        "stored": False,
        "plan_count": len(plans),
        "target_count": sum(p["targets"] for p in plans),
        "all_allowed": all(p["allowed"] for p in plans),
        "drift_rows_selected": len(draft.drift_rows),
        "unplanned": unplanned,
        "unplanned_count": len(draft.unplanned),
        "unknown_asset_ids": draft.unknown_asset_ids,
        "planning_blocked_by": _planning_gate(ctx),
        "plans": plans,
        "note": (
            "draft only: nothing was stored. The plan job (drift_sensor after a refresh, or "
            "`qlrf tick --sensor drift_sensor`) stores these plans as tasks pending approval."
            if plans else "no fixable image drift matches these filters"
        ),
    }


register(Tool(
    name="generate_patch_plan",
    description="Draft patch plans (the rule-based planner's: canary first in production, waves within the "
                "policy caps, rollback) that move drifting assets to their family's current golden image, filtered "
                "by site, environment, family or asset ids; each plan is validated (schema, Rego policy, safety) and "
                "returned with its verdicts, summary and plan JSON. Nothing is stored.",
    input_model=PatchFilterArgs, run=_generate_patch_plan, effect="propose",
    agents=("patch", "drift", "security", "image"),
))


# ================================================================ generate_rollback_plan

class RollbackArgs(_Args):
    asset_ids: list[str] | None = Field(
        None, min_length=1, max_length=MAX_ASSET_IDS,
        description="Assets to roll back (with `plan`: only these of its targets). " + _ASSET_IDS_DESCRIPTION,
    )
    plan: dict[str, Any] | None = Field(
        None, description="A plan JSON object as generate_patch_plan returns it (its `plan`): roll back its targets, "
                          "latest phase first, to the images they ran before.",
    )


def _generate_rollback_plan(ctx: ToolContext, args: RollbackArgs) -> list[dict[str, Any]]:
    if not args.asset_ids and args.plan is None:
        raise ToolError("give asset_ids or a plan (as generate_patch_plan returns it)")
    plan = _parse_plan(args.plan) if args.plan is not None else None
    order = rollback_order(plan, args.asset_ids)
    ids = [asset_id for _, asset_id in order]
    current = _current_assets(ctx, ids)
    planned = {t.asset_id for t in plan.targets} if plan is not None else set()
    need_history = sorted(a for a in ids if a in current and a not in planned)
    history: dict[str, list[dict[str, Any]]] = {}
    if need_history:
        clauses, params = _ids_clause("asset_id", need_history)
        for row in ctx.rows(
            "SELECT asset_id, snapshot_id, snapshot_at, image_ref, image_id FROM image_deployments"
            + _where(clauses) + " ORDER BY asset_id, snapshot_id DESC",
            params,
        ):
            history.setdefault(row["asset_id"], []).append(row)
    entries = []
    for number, (phase, asset_id) in enumerate(order, start=1):
        entry = rollback_entry(number, phase, asset_id, current.get(asset_id), plan, history.get(asset_id, []))
        if plan is not None:
            entry["plan_hash"] = plan.plan_hash()
        entries.append(entry)
    return entries


register(Tool(
    name="generate_rollback_plan",
    description="Draft a rollback for assets or for a plan from generate_patch_plan: per asset (latest phase first) "
                "what it runs now (image_ref, image_id) and what a rollback would restore (the plan's previous image, "
                "else the latest different image in the snapshot history); unknown asset ids are listed as unknown. "
                "Nothing is stored or changed.",
    input_model=RollbackArgs, run=_generate_rollback_plan, effect="propose",
    agents=("patch", "incident", "image"),
))


# ================================================================ estimate_blast_radius

class BlastRadiusArgs(_Args):
    asset_ids: list[str] | None = Field(
        None, min_length=1, max_length=MAX_ASSET_IDS, description="The assets a change would touch. " + _ASSET_IDS_DESCRIPTION,
    )
    site_id: str | None = Field(None, description="Or: every asset of this site.")
    environment: str | None = Field(None, description="Or: every asset of this environment, e.g. production.")
    family: str | None = Field(None, description="Or: every asset on this golden image family, e.g. ubuntu-22.04-base.")


def _estimate_blast_radius(ctx: ToolContext, args: BlastRadiusArgs) -> dict[str, Any]:
    if not (args.asset_ids or args.site_id or args.environment or args.family):
        raise ToolError("give asset_ids, or at least one of site_id, environment and family")
    _check_site_and_family(ctx, args.site_id, args.family)
    clauses, params = _equal_filters((
        ("site_id", args.site_id), ("environment", args.environment), ("image_family", args.family),
    ))
    ids_clauses, ids_params = _ids_clause("asset_id", args.asset_ids)
    assets = ctx.rows(
        "SELECT asset_id, site_id, provider, environment, kind, state FROM assets"
        + _where(clauses + ids_clauses) + " ORDER BY site_id, asset_id",
        params + ids_params,
    )
    unknown: list[str] = []
    if args.asset_ids:
        known = set(_current_assets(ctx, args.asset_ids))
        unknown = sorted(set(args.asset_ids) - known)
    fleet_sizes, _ = _planner_fleet(ctx)
    return blast_radius(assets, fleet_sizes, _limits(), unknown)


register(Tool(
    name="estimate_blast_radius",
    description="Estimate what a change to some assets touches: counts by site, environment, provider and kind, the "
                "share of each site's fleet, the production share, and whether the selection exceeds the policy cap "
                "of one plan (so the planner would split it, or one plan would be denied); unknown asset ids listed.",
    input_model=BlastRadiusArgs, run=_estimate_blast_radius,
    agents=("patch", "drift", "incident", "security", "dr"),
))


# ================================================================ check_control

class CheckControlArgs(_Args):
    framework: str = Field(..., min_length=1, description="Framework id, e.g. nist-800-53, soc2 or cis-qlrf.")
    control: str = Field(..., min_length=1, description="Control id of the framework, e.g. CM-8 or CC6.1.")


def _check_control(ctx: ToolContext, args: CheckControlArgs) -> dict[str, Any]:
    from qlrf_pipelines.compliance.catalog import CatalogError, load_catalog
    from qlrf_pipelines.compliance.evaluate import rollup
    from qlrf_pipelines.compliance.runner import evaluate, unavailable
    from qlrf_pipelines.warehouse import WarehouseError, read_only

    try:
        catalog = load_catalog(ctx.compliance_catalog_paths)
    except CatalogError as exc:
        raise ToolError(f"the compliance catalog cannot be read: {exc}") from None
    framework = catalog.frameworks.get(args.framework)
    if framework is None:
        raise ToolError(f"unknown framework {args.framework!r}; known frameworks: {', '.join(sorted(catalog.frameworks))}")
    control = framework.controls.get(args.control)
    if control is None:
        raise ToolError(
            f"unknown control {args.control!r} of framework {args.framework!r}; known controls: "
            + ", ".join(framework.controls)
        )
    evaluated_at = datetime.now(timezone.utc)
    check_ids = list(control.checks)
    try:
        # Read-only connection; the runner only sets session variables on it (SET VARIABLE).
        with read_only(Path(ctx.warehouse_path)) as connection:
            results = evaluate(connection, catalog, evaluated_at, check_ids)
    except WarehouseError as exc:
        results = {k: v for k, v in unavailable(catalog, f"warehouse unavailable: {exc}").items() if k in check_ids}
    checks = []
    for check_id in check_ids:
        result = results[check_id]
        failing = result.failing_asset_ids
        checks.append({
            "check_id": check_id,
            "title": result.check.title,
            "kind": result.check.kind,
            "blocking": result.check.blocking,
            "status": result.status,
            "checked_count": result.checked_count,
            "failing_count": len(failing),
            "failing_asset_ids": failing[:SHOWN_FAILING],
            "error": result.error,
        })
    return {
        "framework_id": framework.id,
        "control_id": control.id,
        "title": control.title,
        "status": rollup([c["status"] for c in checks]),
        "evaluated_at": evaluated_at.isoformat(),
        "checks": checks,
        "note": "evaluated now on the current warehouse, read-only; waivers are not applied and no evidence was "
                f"recorded (failing ids: the first {SHOWN_FAILING} of each check)",
    }


register(Tool(
    name="check_control",
    description="Evaluate one compliance control's checks now on the current warehouse (read-only, no evidence "
                "recorded, waivers not applied): per check pass/fail/error/not_assessed with the failing count and "
                "the first failing asset ids, and the control's rolled-up status.",
    input_model=CheckControlArgs, run=_check_control, agents=("compliance", "security"),
))


# ================================================================ generate_sop

class SopArgs(PatchFilterArgs):
    plan: dict[str, Any] | None = Field(
        None, description="A plan JSON object as generate_patch_plan returns it (its `plan`). Without it the filters "
                          "select the drift and the plan(s) are drafted as generate_patch_plan drafts them.",
    )


def _generate_sop(ctx: ToolContext, args: SopArgs) -> dict[str, Any]:
    from qlrf_pipelines.planning.sop import render_sop
    from qlrf_pipelines.policy.validate import validate_plan

    filtered = any(v is not None for v in (args.site_id, args.environment, args.family, args.asset_ids))
    if args.plan is not None:
        if filtered:
            raise ToolError("give either a plan or filters (site_id, environment, family, asset_ids), not both")
        plan = _parse_plan(args.plan)
        known = set(_current_assets(ctx, [t.asset_id for t in plan.targets]))
        _, verdicts = validate_plan(plan, known_asset_ids=known)
        plans, checked = [plan], [verdicts]
    else:
        if not filtered:
            raise ToolError("give a plan, or filters (site_id, environment, family, asset_ids) to draft one")
        draft = draft_plans(ctx, args.site_id, args.environment, args.family, args.asset_ids)
        if not draft.plans:
            raise ToolError("no fixable image drift matches these filters, so there is no plan to write a runbook for")
        plans, checked = draft.plans[:args.max_plans], draft.verdicts[:args.max_plans]
        left_out = len(draft.plans) - len(plans)
    title, markdown = render_sop(plans, checked, limits=_limits())
    out: dict[str, Any] = {"title": title, "markdown": markdown}
    if args.plan is None and left_out:
        out["note"] = (f"the filters draft {len(draft.plans)} plans; this runbook covers the first {len(plans)} "
                       "(max_plans): narrow the filters or raise max_plans for the others")
    if len(plans) == 1:
        out["plan_hash"] = plans[0].plan_hash()
    out["plan_hashes"] = [p.plan_hash() for p in plans]
    out["all_allowed"] = all(v.allowed for vs in checked for v in vs)
    return out


register(Tool(
    name="generate_sop",
    description="Draft a runbook (Markdown) for a patch change: purpose, scope (assets table), prerequisites "
                "(approval, maintenance window, backups), pre-checks, one step per phase (canary first) with its "
                "health checks and the exact qlrf commands, rollback, communication and evidence to keep. Input: a "
                "plan from generate_patch_plan, or site/environment/family/asset filters to draft the plan(s).",
    input_model=SopArgs, run=_generate_sop, effect="propose",
    agents=("patch", "drift", "dr", "incident", "compliance"),
))
