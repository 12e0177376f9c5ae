"""Turn a model's proposal into full plans, from warehouse facts, never from the model's word.

The model says which assets move to which golden image (and which go first). Everything else a
plan carries comes from the warehouse and the policy limits, exactly as the rule-based planner
builds it: where each asset is, what it runs now, the provider image to move to at its site,
phase sizes, health checks, rollback, the drift items it fixes. One plan per (site, environment,
target image), split like the rule-based planner's when it exceeds the fleet share cap.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from qlrf_pipelines.planning.inputs import snapshot_key_of
from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.llm.schemas import PlanProposal
from qlrf_pipelines.planning.plan import Evidence, Plan, TargetAsset, TaskSpec
from qlrf_pipelines.planning.queries import CURRENT_IMAGE_DRIFT, IMAGE_ARTIFACTS_SQL, SITE_FLEET_SQL
from qlrf_pipelines.planning.rule_based import (
    _artifact_index,
    build_phases,
    build_rollback,
    describe_move,
    resolve_target_image,
    split_evenly,
)
from qlrf_pipelines.warehouse import query

RISK_ORDER = ("low", "medium", "high", "critical")


class ProposalRefused(Exception):
    """The proposal names something the warehouse does not know; no plan is made from it."""


@dataclass
class PlanFacts:
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset_id -> row
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # image_id -> golden image row
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    fleet_sizes: dict[str, int] = field(default_factory=dict)
    snapshot_ids: dict[str, str] = field(default_factory=dict)
    open_drift: dict[str, list[str]] = field(default_factory=dict)  # asset_id -> drift_ids


def _rows(warehouse: Path, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
    result = query(warehouse, sql, list(parameters))
    return [dict(zip(result.columns, row)) for row in result.rows]


def load_plan_facts(warehouse_path: Path | str, asset_ids: Sequence[str], image_ids: Sequence[str]) -> PlanFacts:
    """Read-only warehouse reads for the assets and images a proposal names."""
    warehouse = Path(warehouse_path)
    assets = sorted(set(asset_ids))
    images = sorted(set(image_ids))
    marks_a = ", ".join("?" for _ in assets) or "NULL"
    marks_i = ", ".join("?" for _ in images) or "NULL"
    facts = PlanFacts()
    for row in _rows(warehouse, (
        "SELECT asset_id, site_id, provider, name, environment, state, image_ref, image_id, image_family, "
        f"image_version, region FROM assets WHERE asset_id IN ({marks_a})"
    ), assets):
        facts.assets[row["asset_id"]] = row
    for row in _rows(warehouse, (
        f"SELECT image_id, family, version, status FROM golden_images WHERE image_id IN ({marks_i})"
    ), images):
        facts.images[row["image_id"]] = row
    facts.artifacts = [a for a in _rows(warehouse, IMAGE_ARTIFACTS_SQL) if a["image_id"] in set(images)]
    for row in _rows(warehouse, SITE_FLEET_SQL):
        facts.fleet_sizes[row["site_id"]] = int(row["fleet_size"])
        if row["snapshot_id"] is not None:
            facts.snapshot_ids[row["site_id"]] = row["snapshot_id"]
    for row in _rows(warehouse, (
        f"SELECT asset_id, drift_id FROM drift_items WHERE {CURRENT_IMAGE_DRIFT} AND asset_id IN ({marks_a}) "
        "ORDER BY drift_id"
    ), assets):
        facts.open_drift.setdefault(row["asset_id"], []).append(str(row["drift_id"]))
    return facts


def check_against_estate(proposal: PlanProposal, facts: PlanFacts) -> list[str]:
    """Reasons to refuse the proposal outright: assets or images the warehouse does not hold."""
    problems = []
    for change in proposal.changes:
        missing = [a for a in change.asset_ids if a not in facts.assets]
        if missing:
            problems.append(f"asset(s) not in the estate: {', '.join(sorted(missing))}")
        image = facts.images.get(change.to_image_id)
        if image is None:
            problems.append(f"{change.to_image_id} is not a golden image")
        elif (image.get("status") or "") in ("revoked", "deprecated"):
            problems.append(f"{change.to_image_id} is {image['status']}: no plan may move assets to it")
    return problems


def plans_from_proposal(
    proposal: PlanProposal,
    facts: PlanFacts,
    *,
    agent: str,
    intent: str,
    tools_used: Sequence[str],
    requested_by: str,
    evidence_query: str,
    limits: PlanningLimits | None = None,
) -> list[Plan]:
    """Plans for every change of the proposal; raises ProposalRefused (see check_against_estate)."""
    problems = check_against_estate(proposal, facts)
    if problems:
        raise ProposalRefused("; ".join(problems))
    limits = limits or PlanningLimits.load()
    artifacts = _artifact_index(facts.artifacts)
    snapshot_key = snapshot_key_of(facts.snapshot_ids)
    plans: list[Plan] = []
    for change in proposal.changes:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for asset_id in change.asset_ids:
            row = facts.assets[asset_id]
            groups[(row["site_id"], row.get("environment") or "")].append(row)
        canaries = set(change.canary_asset_ids)
        for (site_id, environment) in sorted(groups):
            # The model's canaries first, then the rest in the rule-based planner's order.
            members = sorted(groups[(site_id, environment)], key=lambda r: (r["asset_id"] not in canaries,
                                                                          r.get("name") or "", r["asset_id"]))
            fleet_size = max(facts.fleet_sizes.get(site_id, 0), len(members))
            parts = split_evenly(members, limits.plan_cap(fleet_size))
            for number, part in enumerate(parts, start=1):
                plans.append(_plan(
                    part, change.to_image_id, site_id, environment, (number, len(parts)), fleet_size, limits,
                    artifacts.get((site_id, change.to_image_id), []), facts, proposal.risk, agent, intent,
                    list(tools_used), requested_by, snapshot_key, evidence_query,
                ))
    return plans


def _plan(
    rows: list[dict[str, Any]],
    to_image_id: str,
    site_id: str,
    environment: str,
    part: tuple[int, int],
    fleet_size: int,
    limits: PlanningLimits,
    candidates: list[Mapping[str, Any]],
    facts: PlanFacts,
    model_risk: str,
    agent: str,
    intent: str,
    tools_used: list[str],
    requested_by: str,
    snapshot_key: str,
    evidence_query: str,
) -> Plan:
    image = facts.images[to_image_id]
    family, to_version = image["family"], image["version"]
    production = limits.is_production(environment)
    targets = [
        TargetAsset(
            asset_id=r["asset_id"], site_id=site_id, provider=r.get("provider") or "", name=r.get("name") or r["asset_id"],
            environment=environment, from_image_ref=r.get("image_ref"), from_image_id=r.get("image_id"),
            to_image_ref=resolve_target_image(candidates, r.get("region")), to_image_id=to_image_id,
        )
        for r in rows
    ]
    phases = build_phases([t.asset_id for t in targets], fleet_size, production, limits, to_image_id)
    suffix = f" (part {part[0]} of {part[1]})" if part[1] > 1 else ""
    change = describe_move(Counter(r.get("image_version") or "unknown" for r in rows), family, to_version) + suffix
    floor = "medium" if production else "low"
    risk = max(model_risk, floor, key=RISK_ORDER.index)
    return Plan(
        task=TaskSpec(intent=intent[:500] + suffix, agent=agent, tools_used=tools_used, risk=risk, requested_by=requested_by),
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
            drift_item_ids=sorted(d for r in rows for d in facts.open_drift.get(r["asset_id"], [])),
            snapshot_key=snapshot_key,
            snapshot_ids={site_id: facts.snapshot_ids[site_id]} if site_id in facts.snapshot_ids else {},
            query=evidence_query,
        ),
    )


__all__ = ["PlanFacts", "ProposalRefused", "check_against_estate", "load_plan_facts", "plans_from_proposal"]
