"""The rule-based planner: move drifting assets to their family's current golden image.

Pure functions of warehouse rows (plain dicts), no I/O, so the same rows always give the same
plans (and plan hashes). The rules:

- Only drift a move to the current golden image fixes: image_outdated, image_deprecated and
  image_revoked. Not image_unknown (no golden image to move from or to) nor
  image_testing_in_production (the asset runs a *newer* testing version; moving it back is a
  rollback a person should decide on). Rows without a family or current image are skipped.
- One plan per (site, family, environment) group, to_image_id = the family's current image.
  When a group has more targets than max_plan_share_of_fleet of the site's fleet allows, it is
  split into the fewest plans within that cap, of near-equal size, in asset order; each is
  approved (and canaried) on its own, and their evidence lists only their own drift items.
- Assets are ordered by (asset_name, asset_id); phases take them in that order. A production plan
  (environment in limits.production_environments) starts with a canary of
  limits.canary_size(targets) assets, then waves; other environments have waves only. Every phase
  holds at most min(max_batch_size, max_wave_share_of_site of the fleet) assets.
- Health checks per phase: asset_running and image_matches_target, tolerating no failure in the
  canary and limits.wave_failure_tolerance in a wave. Rollback when any health check fails:
  restore the previous image on the assets of the failed phase and every earlier phase (one
  restore_image step per phase, latest phase first).
- The provider image to move to is the golden artifact of to_image_id discovered at the target's
  site: the one in the asset's region, else a global one (no region), else the only one when the
  asset's region is unknown; None when none fits (the safety check then denies the plan).
- Risk from the worst drift severity and the environment:
  production: critical -> high, high -> high, medium -> medium, low -> low;
  elsewhere one step lower: critical -> medium, high -> medium, medium -> low, low -> low.
  ("critical" is left to people and LLM planners.)
- The fleet of a site is fleet_sizes[site] (in-scope assets), but never less than the number of
  distinct drifting assets seen at the site.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping, Sequence

from qlrf_pipelines.planning.inputs import PlanningInputs
from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.plan import (
    Evidence,
    HealthCheck,
    Phase,
    Plan,
    RiskLevel,
    Rollback,
    RollbackStep,
    TargetAsset,
    TaskSpec,
)
from qlrf_pipelines.planning.queries import DRIFT_ITEMS_SQL, FIXABLE_DRIFT_TYPES, TOOLS

AGENT = "rule_based"
ROLLBACK_CRITERIA = ["any health check fails"]
DEFAULT_TOOLS: tuple[str, ...] = tuple(TOOLS)
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
RISK_BY_SEVERITY: dict[bool, dict[str, RiskLevel]] = {
    True: {"critical": "high", "high": "high", "medium": "medium", "low": "low"},
    False: {"critical": "medium", "high": "medium", "medium": "low", "low": "low"},
}

Row = Mapping[str, Any]


def plan_remediations(
    drift_items: Iterable[Row],
    artifacts: Iterable[Row],
    fleet_sizes: Mapping[str, int],
    snapshot_ids: Mapping[str, str],
    *,
    snapshot_key: str,
    requested_by: str = "system",
    limits: PlanningLimits | None = None,
    asset_regions: Mapping[str, str | None] | None = None,
    query: str = DRIFT_ITEMS_SQL,
    tools_used: Sequence[str] = DEFAULT_TOOLS,
) -> list[Plan]:
    """Plans for every fixable drift group, ordered by (site, family, environment, part)."""
    limits = limits or PlanningLimits.load()
    rows = [dict(r) for r in drift_items]
    drifting_per_site = Counter(site for site, _ in {(r.get("site_id"), r.get("asset_id")) for r in rows})
    images = _artifact_index(artifacts)

    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in _fixable(rows):
        key = (row["site_id"], row["family"], row.get("environment") or "", row["current_image_id"])
        groups[key].append(row)

    plans: list[Plan] = []
    for key in sorted(groups):
        site_id = key[0]
        members = sorted(groups[key], key=lambda r: (r.get("asset_name") or "", r["asset_id"]))
        fleet_size = max(int(fleet_sizes.get(site_id) or 0), drifting_per_site[site_id])
        parts = split_evenly(members, limits.plan_cap(fleet_size))
        for number, part in enumerate(parts, start=1):
            plans.append(_plan(
                part, (number, len(parts)), fleet_size, limits, images, asset_regions or {},
                snapshot_ids, snapshot_key, requested_by, query, list(tools_used),
            ))
    return plans


def plan_from_inputs(
    inputs: PlanningInputs,
    *,
    requested_by: str = "system",
    limits: PlanningLimits | None = None,
    snapshot_key: str | None = None,
) -> list[Plan]:
    """plan_remediations over what load_planning_inputs read (tools_used = the reads it made)."""
    return plan_remediations(
        inputs.drift_items,
        inputs.artifacts,
        inputs.fleet_sizes,
        inputs.snapshot_ids,
        snapshot_key=snapshot_key or inputs.snapshot_key,
        requested_by=requested_by,
        limits=limits,
        asset_regions=inputs.asset_regions,
        query=inputs.drift_query,
        tools_used=inputs.tools_used or DEFAULT_TOOLS,
    )


# -- selection ------------------------------------------------------------------------------------

def _fixable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fixable rows, one per (site, asset): the worst severity wins, then the smallest drift_id."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if row.get("drift_type") not in FIXABLE_DRIFT_TYPES:
            continue
        if not (row.get("site_id") and row.get("asset_id") and row.get("family") and row.get("current_image_id")):
            continue
        if row.get("image_id") == row["current_image_id"]:
            continue
        key = (row["site_id"], row["asset_id"])
        if key not in best or _row_order(row) < _row_order(best[key]):
            best[key] = row
    return list(best.values())


def _row_order(row: Row) -> tuple[int, str]:
    return (-SEVERITY_RANK.get(row.get("severity") or "", -1), str(row.get("drift_id") or ""))


def split_evenly(items: list, cap: int) -> list[list]:
    """The fewest chunks of at most `cap` items, sizes differing by at most one, order kept."""
    if not items:
        return []
    count = math.ceil(len(items) / max(1, cap))
    base, extra = divmod(len(items), count)
    chunks, start = [], 0
    for index in range(count):
        size = base + (1 if index < extra else 0)
        chunks.append(items[start:start + size])
        start += size
    return chunks


# -- target images ----------------------------------------------------------------------------------

def _artifact_index(artifacts: Iterable[Row]) -> dict[tuple[str, str], list[Row]]:
    index: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for artifact in artifacts:
        if artifact.get("image_id") and artifact.get("site_id") and artifact.get("provider_image_id"):
            index[(artifact["site_id"], artifact["image_id"])].append(artifact)
    for candidates in index.values():
        candidates.sort(key=lambda a: (a.get("region") or "", a["provider_image_id"]))
    return index


def resolve_target_image(candidates: Sequence[Row], asset_region: str | None) -> str | None:
    """The provider image of the target golden image for an asset (see the module docstring)."""
    if not candidates:
        return None
    region = (asset_region or "").strip().lower()
    if region:
        same = [c for c in candidates if (c.get("region") or "").strip().lower() == region]
        if same:
            return same[0]["provider_image_id"]
    unregioned = [c for c in candidates if not c.get("region")]
    if unregioned:
        return unregioned[0]["provider_image_id"]
    if not region and len(candidates) == 1:
        return candidates[0]["provider_image_id"]
    return None


# -- one plan --------------------------------------------------------------------------------------

def _plan(
    rows: list[dict[str, Any]],
    part: tuple[int, int],
    fleet_size: int,
    limits: PlanningLimits,
    images: dict[tuple[str, str], list[Row]],
    asset_regions: Mapping[str, str | None],
    snapshot_ids: Mapping[str, str],
    snapshot_key: str,
    requested_by: str,
    query: str,
    tools_used: list[str],
) -> Plan:
    first = rows[0]
    site_id, family, environment = first["site_id"], first["family"], first.get("environment") or ""
    to_image_id = first["current_image_id"]
    to_version = first.get("current_version") or _version_of(to_image_id) or to_image_id
    candidates = images.get((site_id, to_image_id), [])
    production = limits.is_production(environment)

    targets = [
        TargetAsset(
            asset_id=r["asset_id"],
            site_id=site_id,
            provider=r.get("provider") or "",
            name=r.get("asset_name") or r["asset_id"],
            environment=environment,
            from_image_ref=r.get("image_ref"),
            from_image_id=r.get("image_id"),
            to_image_ref=resolve_target_image(candidates, asset_regions.get(r["asset_id"])),
            to_image_id=to_image_id,
        )
        for r in rows
    ]
    phases = build_phases([t.asset_id for t in targets], fleet_size, production, limits, to_image_id)

    versions = Counter(r.get("asset_version") or _version_of(r.get("image_id")) or "unknown" for r in rows)
    count = len(rows)
    noun = "asset" if count == 1 else "assets"
    ascending = sorted(versions, key=_version_key)
    suffix = f" (part {part[0]} of {part[1]})" if part[1] > 1 else ""
    intent = (
        f"Move {count} {environment} {noun} at {site_id} from {family} {'/'.join(ascending)} "
        f"to {to_version}{suffix}"
    )
    change = describe_move(versions, family, to_version)
    worst = max((r.get("severity") or "low" for r in rows), key=lambda s: SEVERITY_RANK.get(s, 0))
    risk = RISK_BY_SEVERITY[production].get(worst, "medium")
    snapshot_id = snapshot_ids.get(site_id) or max(str(r.get("snapshot_id") or "") for r in rows)

    return Plan(
        task=TaskSpec(intent=intent, agent=AGENT, tools_used=tools_used, risk=risk, requested_by=requested_by),
        site_id=site_id,
        environment=environment,
        family=family,
        to_image_id=to_image_id,
        change=change,
        fleet_size=fleet_size,
        targets=targets,
        phases=phases,
        rollback=build_rollback(phases),
        evidence=Evidence(
            drift_item_ids=sorted(str(r["drift_id"]) for r in rows if r.get("drift_id")),
            snapshot_key=snapshot_key,
            snapshot_ids={site_id: snapshot_id} if snapshot_id else {},
            query=query,
        ),
    )


def describe_move(versions: Counter, family: str, to_version: str) -> str:
    """'move 3 assets from ubuntu 1.2.0 (2), 1.1.0 (1) to 1.3.0': most assets first, then newest."""
    count = sum(versions.values())
    by_count = sorted(sorted(versions, key=_version_key)[::-1], key=lambda v: -versions[v])
    return (
        f"move {count} {'asset' if count == 1 else 'assets'} from {family} "
        + ", ".join(f"{v} ({versions[v]})" for v in by_count) + f" to {to_version}"
    )


def build_phases(
    asset_ids: list[str], fleet_size: int, production: bool, limits: PlanningLimits, to_image_id: str
) -> list[Phase]:
    """A canary first in production, then waves within the batch and wave-share caps."""
    phases: list[Phase] = []
    rest = list(asset_ids)
    if production and rest:
        size = limits.canary_size(len(rest), fleet_size)
        phases.append(Phase(name="canary", kind="canary", asset_ids=rest[:size],
                            health_checks=health_checks(0.0, to_image_id)))
        rest = rest[size:]
    wave_size = limits.wave_cap(fleet_size)
    for number, start in enumerate(range(0, len(rest), wave_size), start=1):
        phases.append(Phase(name=f"wave-{number}", kind="wave", asset_ids=rest[start:start + wave_size],
                            health_checks=health_checks(limits.wave_failure_tolerance, to_image_id)))
    return phases


def health_checks(max_failed_share: float, to_image_id: str) -> list[HealthCheck]:
    return [
        HealthCheck(kind="asset_running", max_failed_share=max_failed_share,
                    description="every asset of the phase is running again after the change"),
        HealthCheck(kind="image_matches_target", max_failed_share=max_failed_share,
                    description=f"every asset of the phase runs {to_image_id} (its to_image_ref)"),
    ]


def build_rollback(phases: list[Phase]) -> Rollback:
    """Restore the previous image on the failed phase's assets and every earlier phase's."""
    steps = [
        RollbackStep(
            action="restore_image",
            description=(
                f"if {phase.name} or a later phase started: restore the {len(phase.asset_ids)} "
                f"asset(s) of {phase.name} to the image they ran before (from_image_ref)"
            ),
        )
        for phase in reversed(phases)
    ]
    return Rollback(criteria=list(ROLLBACK_CRITERIA), steps=steps)


# -- versions ----------------------------------------------------------------------------------------

def _version_of(image_id: str | None) -> str | None:
    return image_id.split("@", 1)[1] if image_id and "@" in image_id else None


def _version_key(version: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", version) if p)
