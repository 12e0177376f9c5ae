"""More read-only warehouse tools: asset details, drift trends, compliance failures, waivers, tasks,
policy limits and cost. (Golden image tools are in image_tools.)

Same conventions as warehouse_tools: parameterized SQL only (user input is never formatted into
SQL), a ToolError naming the argument (and the known values, where cheap) when an argument names
nothing, lists for row-shaped results and a dict for one object. Nothing here writes anything.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from qlrf_pipelines.planning.limits import LIMITS_FILE, PlanningLimits
from qlrf_pipelines.planning.pricing import PriceCatalogError, estimate, load_price_catalog
from qlrf_pipelines.planning.queries import SITE_FLEET_SQL
from qlrf_pipelines.planning.tools.registry import Tool, ToolContext, ToolError, register
from qlrf_pipelines.planning.tools.warehouse_tools import _Args, _equal_filters, _where

ALL_AGENTS = ("drift", "patch", "compliance", "incident", "dr", "cost", "security", "image")
_MAX_KNOWN = 30  # known values listed in an error message


def _known(values: list[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:_MAX_KNOWN])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _MAX_KNOWN else "")


def _families(ctx: ToolContext) -> list[str]:
    return [r["family"] for r in ctx.rows("SELECT family FROM golden_image_families ORDER BY family")]


def _require_family(ctx: ToolContext, family: str, argument: str = "family") -> None:
    if not ctx.rows("SELECT 1 FROM golden_image_families WHERE family = ?", [family]):
        raise ToolError(f"unknown image family {argument}={family!r}; known families: {_known(_families(ctx))}")


def _require_image(ctx: ToolContext, image_id: str, argument: str = "image_id") -> dict[str, Any]:
    rows = ctx.rows(
        "SELECT image_id, family, version, version_key, status, is_current, created_at, assets_running "
        "FROM golden_images WHERE image_id = ?",
        [image_id],
    )
    if rows:
        return rows[0]
    family = image_id.split("@", 1)[0]
    versions = [r["image_id"] for r in ctx.rows(
        "SELECT image_id FROM golden_images WHERE family = ? ORDER BY version_key", [family])]
    if versions:
        raise ToolError(f"unknown golden image {argument}={image_id!r}; images of {family}: {_known(versions)}")
    raise ToolError(
        f"unknown golden image {argument}={image_id!r} (ids are family@version); known families: "
        f"{_known(_families(ctx))}"
    )


# ---------------------------------------------------------------- asset_details

class AssetDetailsArgs(_Args):
    asset_id: str = Field(..., min_length=1, description=(
        "Asset id as query_assets returns it, <provider>:<site_id>:<native id>, e.g. "
        "aws:aws-prod-use1:i-0123456789abcdef0."
    ))


_ASSET_COLUMNS = (
    "asset_id, site_id, provider, environment, native_id, kind, name, state, image_ref, image_id, image_family, "
    "image_version, image_status, platform, os, instance_type, cpu_count, memory_mb, region, zone, network, "
    "private_ip, public_ip, disk_encryption, launched_at, discovered_at, snapshot_id, snapshot_at"
)


def _asset_details(ctx: ToolContext, args: AssetDetailsArgs) -> dict[str, Any]:
    rows = ctx.rows(f"SELECT {_ASSET_COLUMNS} FROM assets WHERE asset_id = ?", [args.asset_id])
    if not rows:
        named = ctx.rows(
            "SELECT asset_id FROM assets WHERE name = ? OR native_id = ? ORDER BY asset_id LIMIT 5",
            [args.asset_id, args.asset_id],
        )
        hint = (f"; assets with that name or native id: {', '.join(r['asset_id'] for r in named)}" if named
                else "; find ids with query_assets")
        raise ToolError(f"unknown asset_id {args.asset_id!r} (not in the latest snapshot of any site){hint}")
    asset = rows[0]
    asset["tags"] = {
        r["key"]: r["value"]
        for r in ctx.rows("SELECT key, value FROM asset_tags WHERE asset_id = ? ORDER BY key", [args.asset_id])
    }
    image = None
    if asset["image_id"]:
        found = ctx.rows(
            "SELECT g.image_id, g.family, g.version, g.status, g.is_current, g.created_at, f.current_version, "
            "f.current_image_id, f.latest_version FROM golden_images AS g "
            "LEFT JOIN golden_image_families AS f ON f.family = g.family WHERE g.image_id = ?",
            [asset["image_id"]],
        )
        image = found[0] if found else None
    asset["image"] = image
    asset["open_drift"] = ctx.rows(
        "SELECT drift_id, drift_type, severity, rule_id, detail, expected, actual, versions_behind, days_behind, "
        "first_seen_at, age_days FROM drift_items WHERE asset_id = ? AND status = 'open' "
        "ORDER BY drift_type, rule_id, drift_id",
        [args.asset_id],
    )
    asset["failing_controls"] = ctx.rows(
        "SELECT framework_id, control_id, check_id, detail, is_waived, waiver_id, evaluated_at "
        "FROM control_evidence_failures WHERE asset_id = ? "
        "AND evidence_id IN (SELECT evidence_id FROM v_compliance_status) "
        "ORDER BY framework_id, control_id, check_id",
        [args.asset_id],
    )
    return asset


register(Tool(
    name="asset_details",
    description="Get everything known about one asset: its inventory row (site, kind, state, instance type, "
                "size, region, network, IPs, disk_encryption), its tags, the golden image it runs (family, "
                "version, status, and the family's current version), its open drift items, and the compliance "
                "checks it fails at the latest evaluation (waived ones marked).",
    input_model=AssetDetailsArgs, run=_asset_details, agents=ALL_AGENTS,
))


# ---------------------------------------------------------------- drift_trends

class DriftTrendsArgs(_Args):
    site_id: str | None = Field(None, description="Per-day drift of this site (its last snapshot of each day); "
                                                  "without it, the estate-wide daily trend.")
    days: int = Field(30, ge=1, le=366, description="How many days back from the latest day with data.")
    severity: Literal["all", "critical", "high", "medium", "low"] = Field(
        "all", description="Estate-wide trend only: count drift of this severity (all: any drift)."
    )


def _drift_trends(ctx: ToolContext, args: DriftTrendsArgs) -> list[dict[str, Any]]:
    if args.site_id is None:
        return ctx.rows(
            "SELECT day, severity, assets_total, assets_drifted, drift_rate, open_items, opened, closed, "
            "mean_age_days, mean_days_to_fix FROM drift_trends WHERE severity = ? "
            "AND day > (SELECT max(day) FROM drift_trends) - ? ORDER BY day",
            [args.severity, args.days],
        )
    if not ctx.rows("SELECT 1 FROM sites WHERE site_id = ?", [args.site_id]):
        known = [r["site_id"] for r in ctx.rows("SELECT site_id FROM sites ORDER BY site_id")]
        raise ToolError(f"unknown site_id {args.site_id!r}; known sites: {_known(known)}")
    return ctx.rows(
        "WITH daily AS (SELECT CAST(timezone('UTC', snapshot_at) AS DATE) AS day, * FROM drift_reports "
        "WHERE site_id = ?) "
        "SELECT day, site_id, snapshot_id, snapshot_at, assets_total, assets_drifted, drift_rate, drift_items, "
        "critical, high, medium, low, config_drift, opened, closed FROM daily "
        "WHERE day > (SELECT max(day) FROM daily) - ? "
        "QUALIFY row_number() OVER (PARTITION BY day ORDER BY snapshot_at DESC) = 1 ORDER BY day",
        [args.site_id, args.days],
    )


register(Tool(
    name="drift_trends",
    description="Show how drift evolved day by day: estate-wide (assets drifted, drift rate, open, opened and "
                "closed items, mean age, mean days to fix) for a severity, or for one site (its last snapshot of "
                "each day, with counts by severity). Covers the last `days` days with data.",
    input_model=DriftTrendsArgs, run=_drift_trends, agents=("drift", "compliance", "patch", "incident"),
))


# ---------------------------------------------------------------- compliance_failures

class ComplianceFailuresArgs(_Args):
    control_id: str = Field(..., min_length=1, description="Control id, e.g. CM-6, CC7.1 or QCIS-2.1.")
    framework: str | None = Field(None, description="Framework id, e.g. nist-800-53, soc2 or cis-qlrf (a control "
                                                    "id in several frameworks is reported for each without it).")
    site_id: str | None = Field(None, description="Only failing assets of this site.")
    include_waived: bool = Field(True, description="Include failures a waiver in force accepted (marked is_waived).")


def _compliance_failures(ctx: ToolContext, args: ComplianceFailuresArgs) -> list[dict[str, Any]]:
    clauses, params = _equal_filters((("control_id", args.control_id), ("framework_id", args.framework)))
    if not ctx.rows("SELECT 1 FROM compliance_controls" + _where(clauses), params):
        known = [f"{r['framework_id']}/{r['control_id']}" for r in ctx.rows(
            "SELECT framework_id, control_id FROM compliance_controls"
            + _where(_equal_filters((("framework_id", args.framework),))[0])
            + " ORDER BY framework_id, position", _equal_filters((("framework_id", args.framework),))[1])]
        raise ToolError(f"unknown control_id {args.control_id!r}"
                        + (f" in framework {args.framework!r}" if args.framework else "")
                        + f"; known controls: {_known(known)}")
    outer, outer_params = _equal_filters((("f.site_id", args.site_id),))
    if not args.include_waived:
        outer.append("NOT f.is_waived")
    return ctx.rows(
        "WITH latest AS (SELECT * FROM control_evidence_failures" + _where(clauses)
        + " QUALIFY evaluated_at = max(evaluated_at) OVER (PARTITION BY framework_id, control_id)) "
        "SELECT f.framework_id, f.control_id, f.check_id, f.evaluated_at, f.asset_id, a.name AS asset_name, "
        "f.site_id, a.environment, a.kind, f.detail, f.is_waived, f.waiver_id FROM latest AS f "
        "LEFT JOIN assets AS a ON a.asset_id = f.asset_id" + _where(outer)
        + " ORDER BY f.framework_id, f.check_id, f.site_id NULLS LAST, f.asset_id",
        params + outer_params,
    )


register(Tool(
    name="compliance_failures",
    description="List what fails a compliance control at its latest evaluation: each failing asset (or image, "
                "DR pair) per check, with why it fails, its site and environment, and whether a waiver accepted "
                "the failure.",
    input_model=ComplianceFailuresArgs, run=_compliance_failures, agents=("compliance", "security", "drift", "dr"),
))


# ---------------------------------------------------------------- waivers_in_force

class WaiversArgs(_Args):
    control_id: str | None = Field(None, description="Only waivers of this control, e.g. CM-6.")
    asset_id: str | None = Field(None, description="Only waivers of this asset.")
    include_inactive: bool = Field(False, description="Also list expired and revoked waivers (with their state).")


_IN_FORCE = "(revoked_at IS NULL AND expires_on >= CAST(timezone('UTC', now()) AS DATE))"


def _waivers_in_force(ctx: ToolContext, args: WaiversArgs) -> list[dict[str, Any]]:
    clauses, params = _equal_filters((("w.control_id", args.control_id), ("w.asset_id", args.asset_id)))
    if not args.include_inactive:
        clauses.append(_IN_FORCE)
    return ctx.rows(
        "SELECT w.waiver_id, w.framework_id, w.control_id, w.asset_id, a.name AS asset_name, a.site_id, w.reason, "
        "w.created_by, w.created_at, w.expires_on, "
        "w.expires_on - CAST(timezone('UTC', now()) AS DATE) AS days_left, "
        f"CASE WHEN w.revoked_at IS NOT NULL THEN 'revoked' WHEN {_IN_FORCE} THEN 'active' ELSE 'expired' END "
        "AS state, w.revoked_at, w.revoked_by, w.revoke_reason FROM compliance_waivers AS w "
        "LEFT JOIN assets AS a ON a.asset_id = w.asset_id" + _where(clauses)
        + " ORDER BY w.expires_on, w.waiver_id",
        params,
    )


register(Tool(
    name="waivers_in_force",
    description="List the compliance waivers in force today (accepted failures of one asset for one control, "
                "with reason, who added it and when it expires), optionally for one control or asset; "
                "include_inactive adds expired and revoked ones.",
    input_model=WaiversArgs, run=_waivers_in_force, agents=("compliance", "security", "drift"),
))


# ---------------------------------------------------------------- list_tasks



class ListTasksArgs(_Args):
    status: Literal[
        "pending_approval", "policy_denied", "approved", "rejected", "running", "succeeded", "failed", "rolled_back"
    ] | None = Field(None, description="Only tasks in this status.")
    site_id: str | None = Field(None, description="Only tasks of this site.")
    family: str | None = Field(None, description="Only tasks moving assets of this golden image family.")


def _list_tasks(ctx: ToolContext, args: ListTasksArgs) -> list[dict[str, Any]]:
    clauses, params = _equal_filters((("t.status", args.status), ("t.site_id", args.site_id), ("t.family", args.family)))
    return ctx.rows(
        "SELECT t.task_id, t.title, t.status, t.risk, t.site_id, t.environment, t.family, t.requested_by, "
        "t.plan_version, t.plan_valid, p.target_count, p.phase_count, t.approved_by, t.approved_at, "
        "t.approval_expires_at, t.created_at, t.updated_at, t.started_at, t.finished_at FROM ai_tasks AS t "
        "LEFT JOIN ai_task_plans AS p ON p.task_id = t.task_id AND p.is_current" + _where(clauses)
        + " ORDER BY t.created_at DESC, t.task_id DESC",
        params,
    )


register(Tool(
    name="list_tasks",
    description="List remediation tasks as of the warehouse's latest control store export (newest first): title, "
                "status, risk, site, environment, family, requester, plan version and validity, targets and "
                "phases, approval. Filter by status, site or family, e.g. to avoid planning a change already "
                "pending approval.",
    input_model=ListTasksArgs, run=_list_tasks, agents=ALL_AGENTS,
))


# ---------------------------------------------------------------- policy_limits

class PolicyLimitsArgs(_Args):
    site_id: str | None = Field(None, description="Also compute the caps for this site's fleet (its in-scope "
                                                  "assets that are not terminated).")
    target_count: int | None = Field(None, ge=1, description="With site_id: the canary size of a plan with this "
                                                             "many targets.")


def _policy_limits(ctx: ToolContext, args: PolicyLimitsArgs) -> dict[str, Any]:
    limits = PlanningLimits.load()
    result: dict[str, Any] = {
        "limits": limits.to_data(),
        "limits_file": str(LIMITS_FILE),
        "read_by": "the rule-based planner (PlanningLimits) and the Rego policy (data.qlrf.limits): one file, "
                   "so a plan within these limits is not denied for its size",
        "rules": {
            "max_batch_size": "most assets in one phase (canary or wave)",
            "max_wave_share_of_site": "one phase changes at most floor(share x site fleet) assets (at least 1)",
            "max_plan_share_of_fleet": "one plan targets at most floor(share x site fleet) assets (at least 1); "
                                       "bigger groups are split into several plans",
            "canary_share": "canary = floor(share x targets), at least 1, at most canary_max_size and the wave cap",
            "canary_max_size": "most assets in a canary phase",
            "wave_failure_tolerance": "share of a wave's assets allowed to fail health checks (the canary: none)",
            "production_environments": "site environments whose plans need a canary first",
        },
    }
    if args.target_count is not None and args.site_id is None:
        raise ToolError("target_count needs site_id (the caps depend on the site's fleet size)")
    if args.site_id is not None:
        fleets = {r["site_id"]: r for r in ctx.rows(SITE_FLEET_SQL)}
        if args.site_id not in fleets:
            raise ToolError(f"unknown site_id {args.site_id!r}; known sites: {_known(sorted(fleets))}")
        fleet = int(fleets[args.site_id]["fleet_size"] or 0)
        environment = ctx.rows("SELECT environment FROM sites WHERE site_id = ?", [args.site_id])
        env = environment[0]["environment"] if environment else None
        plan_cap = limits.plan_cap(fleet)
        targets = args.target_count if args.target_count is not None else plan_cap
        result["site"] = {
            "site_id": args.site_id, "environment": env, "fleet_size": fleet,
            "is_production": limits.is_production(env),
            "plan_cap": plan_cap, "wave_cap": limits.wave_cap(fleet),
            "target_count": targets, "canary_size": limits.canary_size(targets, fleet),
        }
    return result


register(Tool(
    name="policy_limits",
    description="Get the remediation limits in force (the planner's and the Rego policy's, from one limits.json): "
                "max batch size, max share of a site's fleet per wave and per plan, canary share and max size, "
                "wave failure tolerance, production environments; with site_id, the resulting caps (plan cap, "
                "wave cap, canary size) for that site's fleet.",
    input_model=PolicyLimitsArgs, run=_policy_limits, agents=("patch", "drift", "compliance", "dr", "incident", "cost"),
))


# ---------------------------------------------------------------- cost_estimate

class CostEstimateArgs(_Args):
    asset_ids: list[str] | None = Field(None, max_length=1000, description=(
        "Price exactly these assets (ids as query_assets returns them). Without it, the assets matching the "
        "filters below (all of them when no filter is given)."
    ))
    site_id: str | None = Field(None, description="Only assets of this site.")
    environment: str | None = Field(None, description="Only assets of this environment, e.g. production.")
    provider: str | None = Field(None, description="Only assets of this provider: aws, azure, gcp, vsphere or kubernetes.")
    image_family: str | None = Field(None, description="Only assets on this golden image family.")
    instance_type: str | None = Field(None, description="Only assets of this instance type / VM size, e.g. m6i.xlarge.")
    to_instance_type: str | None = Field(None, description=(
        "Also price the assets resized to this instance type / VM size / machine type (same provider and region), "
        "e.g. m6i.large, and give the monthly difference."
    ))


def _cost_estimate(ctx: ToolContext, args: CostEstimateArgs) -> dict[str, Any]:
    try:
        catalog = load_price_catalog()
    except PriceCatalogError as exc:
        raise ToolError(str(exc)) from None
    clauses, params = _equal_filters((
        ("site_id", args.site_id), ("environment", args.environment), ("provider", args.provider),
        ("image_family", args.image_family), ("instance_type", args.instance_type),
    ))
    if args.asset_ids is not None:
        wanted = list(dict.fromkeys(args.asset_ids))
        clauses.append("list_contains(?, asset_id)")
        params.append(wanted)
    assets = ctx.rows(
        "SELECT asset_id, name, site_id, provider, kind, state, platform, instance_type, region, cpu_count, memory_mb "
        "FROM assets" + _where(clauses) + " ORDER BY asset_id",
        params,
    )
    if args.asset_ids is not None:
        missing = sorted(set(wanted) - {a["asset_id"] for a in assets})
        if missing and not any([args.site_id, args.environment, args.provider, args.image_family, args.instance_type]):
            raise ToolError(f"unknown asset_ids (not in the latest snapshot of any site): {_known(missing)}")
    if args.to_instance_type is not None:
        providers = sorted({catalog.provider_of_type(a["instance_type"]) or a["provider"] for a in assets
                            if a["kind"] in ("vm", "node")} & {"aws", "azure", "gcp"})
        if providers and catalog.provider_of_type(args.to_instance_type) not in providers:
            known = {p: catalog.instance_types(p) for p in providers}
            raise ToolError(
                f"to_instance_type {args.to_instance_type!r} is not in the price catalog for "
                f"{', '.join(providers)}, so it cannot be priced (set QLRF_INSTANCE_PRICES to add it); known: "
                + "; ".join(f"{p}: {', '.join(t)}" for p, t in known.items())
            )
    result = estimate(catalog, assets, args.to_instance_type)
    windows = sum(line["count"] for line in result["lines"] if line.get("platform") == "windows")
    if windows:
        result["note"] = f"{windows} Windows assets priced at Linux list prices: the Windows licence is extra"
    return result


register(Tool(
    name="cost_estimate",
    description="Estimate the monthly on-demand compute cost (USD, list prices, 730 h/month) of selected assets "
                "(by ids, or by site, environment, provider, image family or instance type), and with "
                "to_instance_type the cost after resizing them and the difference. Stopped assets are left out; "
                "instance types the price catalog does not list are reported as unpriced, never guessed.",
    input_model=CostEstimateArgs, run=_cost_estimate, agents=("cost", "patch", "dr"),
))
