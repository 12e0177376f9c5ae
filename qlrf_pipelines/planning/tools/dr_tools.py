"""Disaster-recovery tools: DR pair status and failover simulation (read-only).

DR pairs are declared in the sites file (`dr_pairs:`) and reach the warehouse as `dr_pairs`. The
tools judge readiness from the warehouse alone (sites, assets, image_artifacts,
golden_image_families, drift_items); the rules are pure functions in qlrf_pipelines/dr/readiness.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from qlrf_pipelines.dr.readiness import (
    INACTIVE_STATES,
    family_readiness,
    family_reasons,
    plan_failover,
    site_reasons,
)
from qlrf_pipelines.planning.tools.registry import Tool, ToolContext, ToolError, register
from qlrf_pipelines.planning.tools.warehouse_tools import _Args, _equal_filters, _where

AGENTS = ("dr", "incident")
# Asset kinds a failover rebuilds (containers come back with their workload).
RECOVERABLE_KINDS = ("vm", "node", "workload")
_PAIR_COLUMNS = (
    "pair_id, primary_site_id, primary_provider, primary_location, primary_environment, dr_site_id, dr_provider, "
    "dr_location, dr_environment, rpo_minutes, rto_minutes, families, description, config_snapshot_at"
)
_IN_SCOPE = (
    f"kind IN ({', '.join(repr(k) for k in RECOVERABLE_KINDS)}) "
    f"AND coalesce(state, '') NOT IN ({', '.join(repr(s) for s in INACTIVE_STATES)})"
)


def _pair(ctx: ToolContext, pair_id: str) -> dict[str, Any]:
    rows = ctx.rows(f"SELECT {_PAIR_COLUMNS} FROM dr_pairs WHERE pair_id = ?", [pair_id])
    if rows:
        return rows[0]
    known = [r["pair_id"] for r in ctx.rows("SELECT pair_id FROM dr_pairs ORDER BY pair_id")]
    if not known:
        raise ToolError(f"unknown DR pair {pair_id!r}: no DR pairs are declared (add dr_pairs to the sites file)")
    raise ToolError(f"unknown DR pair {pair_id!r}; known DR pairs: {', '.join(known)}")


def _site(ctx: ToolContext, site_id: str) -> dict[str, Any] | None:
    rows = ctx.rows(
        "SELECT site_id, provider, name, location, environment, last_snapshot_id, last_snapshot_at, "
        "round(date_diff('second', last_snapshot_at, now()) / 60.0, 1) AS snapshot_age_minutes, "
        "is_stale, last_failure_at FROM sites WHERE site_id = ?",
        [site_id],
    )
    if not rows:
        return None
    site = rows[0]
    counts = ctx.rows(
        "SELECT count(*) AS assets, count(*) FILTER (WHERE state = 'running') AS running_assets, "
        "sum(cpu_count) FILTER (WHERE state = 'running') AS running_vcpus, "
        "count(*) FILTER (WHERE state = 'running' AND cpu_count IS NULL) AS running_assets_unknown_vcpus "
        "FROM assets WHERE site_id = ?",
        [site_id],
    )[0]
    site.update(counts)
    if not site["running_assets"]:
        site["running_vcpus"] = 0  # else null when no running asset reports its vCPUs (Azure sizes)
    return site


def _catalog(ctx: ToolContext) -> dict[str, dict[str, Any]]:
    return {
        r["family"]: r
        for r in ctx.rows("SELECT family, current_version, current_image_id FROM golden_image_families")
    }


def _published(ctx: ToolContext, site_id: str) -> dict[str, set[str]]:
    """family -> golden versions discovered at the site (image_artifacts, latest snapshot)."""
    published: dict[str, set[str]] = {}
    for row in ctx.rows(
        "SELECT DISTINCT family, version FROM image_artifacts WHERE site_id = ? AND image_id IS NOT NULL", [site_id]
    ):
        published.setdefault(row["family"], set()).add(row["version"])
    return published


# ---------------------------------------------------------------- list_dr_pairs

class ListDrPairsArgs(_Args):
    site_id: str | None = Field(None, description="Only pairs with this site on either side (primary or DR).")


def _list_dr_pairs(ctx: ToolContext, args: ListDrPairsArgs) -> list[dict[str, Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if args.site_id is not None:
        clauses.append("(primary_site_id = ? OR dr_site_id = ?)")
        params += [args.site_id, args.site_id]
    return ctx.rows(f"SELECT {_PAIR_COLUMNS} FROM dr_pairs" + _where(clauses) + " ORDER BY pair_id", params)


register(Tool(
    name="list_dr_pairs",
    description="List the disaster-recovery pairs declared in the sites file: primary and DR site (provider, "
                "location, environment), RPO and RTO in minutes, and the image families that must be recoverable "
                "(null: every family running at the primary).",
    input_model=ListDrPairsArgs, run=_list_dr_pairs, agents=AGENTS,
))


# ---------------------------------------------------------------- dr_pair_status

class PairArgs(_Args):
    pair_id: str = Field(..., min_length=1, description="DR pair id from list_dr_pairs, e.g. dc1-to-weu.")


def _dr_pair_status(ctx: ToolContext, args: PairArgs) -> dict[str, Any]:
    pair = _pair(ctx, args.pair_id)
    primary_id, dr_id, rpo = pair["primary_site_id"], pair["dr_site_id"], pair["rpo_minutes"]
    primary, dr = _site(ctx, primary_id), _site(ctx, dr_id)
    running = {
        r["family"]: r["assets"]
        for r in ctx.rows(
            f"SELECT image_family AS family, count(*) AS assets FROM assets WHERE site_id = ? AND {_IN_SCOPE} "
            "AND image_family IS NOT NULL GROUP BY image_family",
            [primary_id],
        )
    }
    unmanaged = ctx.rows(
        f"SELECT count(*) AS n FROM assets WHERE site_id = ? AND {_IN_SCOPE} AND image_family IS NULL", [primary_id]
    )[0]["n"]
    drift = ctx.rows(
        "SELECT severity, family, count(*) AS items FROM drift_items WHERE site_id = ? AND status = 'open' "
        "GROUP BY severity, family",
        [dr_id],
    )
    by_severity: dict[str, int] = {}
    by_family: dict[str, int] = {}
    for row in drift:
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + row["items"]
        if row["family"]:
            by_family[row["family"]] = by_family.get(row["family"], 0) + row["items"]
    required = pair["families"] if pair["families"] is not None else list(running)
    families = family_readiness(required, running, _catalog(ctx), _published(ctx, dr_id), by_family)

    reasons = site_reasons("primary", primary_id, primary, rpo) + site_reasons("DR", dr_id, dr, rpo)
    reasons += family_reasons(families, dr_id)
    if unmanaged:
        reasons.append(
            f"{unmanaged} active asset(s) at the primary run no golden image, so none can be rebuilt at {dr_id}"
        )
    if by_severity.get("critical"):
        reasons.append(f"DR site {dr_id} has {by_severity['critical']} open critical drift item(s)")
    return {
        "pair": pair,
        "primary": primary,
        "dr": dr,
        "rpo_minutes": rpo,
        "rto_minutes": pair["rto_minutes"],
        "families_basis": "declared" if pair["families"] is not None else "running_at_primary",
        "families": families,
        "primary_assets_without_golden_image": unmanaged,
        "dr_open_drift": {"total": sum(by_severity.values()), "by_severity": by_severity},
        "ready": not reasons,
        "reasons": reasons,
    }


register(Tool(
    name="dr_pair_status",
    description="Get the readiness of one DR pair: both sites (latest snapshot and its age against the RPO, "
                "asset and vCPU counts), per image family that must be recoverable whether its current golden image "
                "is published at the DR site, open drift at the DR site, and ready true/false with the reasons. "
                "Not ready when a side is undiscovered, failing discovery or older than the RPO, a family's current "
                "image is missing at the DR site, an active primary asset runs no golden image, or the DR site has "
                "open critical drift.",
    input_model=PairArgs, run=_dr_pair_status, agents=AGENTS,
))


# ---------------------------------------------------------------- simulate_failover

class SimulateFailoverArgs(PairArgs):
    environment: str | None = Field(None, description="Only primary assets of this environment, e.g. production.")
    family: str | None = Field(None, description="Only primary assets on this golden image family.")
    include_stopped: bool = Field(False, description="Also recover stopped assets (default: only active ones).")
    restore_minutes_per_asset: int = Field(
        15, ge=1, le=1440, description="Assumed minutes to restore one asset from its golden image at the DR site."
    )
    parallel_restores: int = Field(4, ge=1, le=1000, description="Assumed number of restores running at once.")


def _simulate_failover(ctx: ToolContext, args: SimulateFailoverArgs) -> dict[str, Any]:
    pair = _pair(ctx, args.pair_id)
    primary_id, dr_id = pair["primary_site_id"], pair["dr_site_id"]
    clauses, params = _equal_filters((
        ("site_id", primary_id), ("environment", args.environment), ("image_family", args.family),
    ))
    clauses.append(f"kind IN ({', '.join(repr(k) for k in RECOVERABLE_KINDS)})")
    clauses.append("coalesce(state, '') <> 'terminated'" if args.include_stopped else
                   f"coalesce(state, '') NOT IN ({', '.join(repr(s) for s in INACTIVE_STATES)})")
    assets = ctx.rows(
        "SELECT asset_id, name, kind, state, environment, image_ref, image_id, image_family, image_version, "
        "instance_type, cpu_count, memory_mb FROM assets" + _where(clauses) + " ORDER BY name, asset_id",
        params,
    )
    revoked = {r["image_id"] for r in ctx.rows("SELECT image_id FROM golden_images WHERE status = 'revoked'")}
    plan = plan_failover(
        assets, _catalog(ctx), _published(ctx, dr_id), dr_id, pair["rto_minutes"],
        args.restore_minutes_per_asset, args.parallel_restores, pair["families"], revoked,
    )
    dr = _site(ctx, dr_id)
    return {
        "pair_id": pair["pair_id"],
        "primary_site_id": primary_id,
        "dr_site_id": dr_id,
        "filters": {"environment": args.environment, "family": args.family, "include_stopped": args.include_stopped},
        **plan,
        "dr_site_running_assets": dr["running_assets"] if dr else None,
        "dr_site_running_vcpus": dr["running_vcpus"] if dr else None,
        "dr_site_assets_with_unknown_vcpus": dr["running_assets_unknown_vcpus"] if dr else None,
    }


register(Tool(
    name="simulate_failover",
    description="Simulate losing the primary site of a DR pair now (read-only, changes nothing): which primary "
                "assets need recovery (grouped by image family and version, with vCPUs), which have a recoverable "
                "golden image at the DR site (same version unless revoked, else the family's current) and which "
                "do not, the recovery order (production first, then by name) and whether the RTO is plausibly met "
                "under the stated per-asset restore time and parallelism.",
    input_model=SimulateFailoverArgs, run=_simulate_failover, agents=AGENTS,
))
