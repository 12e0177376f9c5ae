"""What execution reads from the lake: the latest snapshot of a site, only the columns it needs.

Health checks read the *latest* published snapshot of each involved site (the max snapshot id:
ids sort by time). Hidden staging files never match `snapshot=*.parquet`, so a snapshot being
written is never read half-done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pyarrow.parquet as pq

from qlrf_pipelines.lake import entity_dir
from qlrf_pipelines.planning.plan import Plan

# Kubernetes workload kinds (attributes_json.kind) -> API resource plural.
_K8S_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets", "CronJob": "cronjobs"}


def latest_snapshot(lake_dir: Path, entity: str, site_id: str) -> Path | None:
    files = sorted((entity_dir(Path(lake_dir), entity) / f"site={site_id}").glob("snapshot=*.parquet"))
    return files[-1] if files else None


def latest_rows(
    lake_dir: Path, entity: str, site_id: str, columns: list[str], asset_ids: Iterable[str] | None = None
) -> tuple[str | None, list[dict]]:
    """(snapshot_id, rows) of the site's latest snapshot; (None, []) when the site has none."""
    path = latest_snapshot(lake_dir, entity, site_id)
    if path is None:
        return None, []
    filters = None
    if asset_ids is not None:
        filters = [("asset_id", "in", sorted(set(asset_ids)))]
    table = pq.read_table(path, columns=columns, filters=filters)
    return path.stem.removeprefix("snapshot="), table.to_pylist()


def action_hints(lake_dir: Path, plan: Plan) -> dict[str, dict[str, str]]:
    """asset_id -> the coordinates actions need beyond the plan's TargetAsset, from the latest
    snapshot of the plan's sites: AWS region, Azure VM resource id, GCP project (the site's
    account) and zone, Kubernetes workload kind and first container name."""
    hints: dict[str, dict[str, str]] = {}
    by_site: dict[str, list[str]] = {}
    for target in plan.targets:
        by_site.setdefault(target.site_id, []).append(target.asset_id)
    for site_id, asset_ids in by_site.items():
        _, sites = latest_rows(lake_dir, "sites", site_id, ["site_id", "account"])
        account = next((row["account"] for row in sites if row["site_id"] == site_id and row["account"]), None)
        _, rows = latest_rows(
            lake_dir, "assets", site_id, ["asset_id", "provider", "region", "zone", "attributes_json"], asset_ids
        )
        for row in rows:
            hints[row["asset_id"]] = _hints_for(row, account)
    return hints


def _hints_for(row: dict, account: str | None) -> dict[str, str]:
    try:
        attributes = json.loads(row.get("attributes_json") or "{}") or {}
    except ValueError:
        attributes = {}
    provider = row["provider"]
    found: dict[str, str | None] = {}
    if provider == "aws":
        found["region"] = row.get("region")
    elif provider == "azure":
        found["resource_id"] = attributes.get("resourceId")
        found["resource_group"] = attributes.get("resourceGroup")
        found["subscription"] = account
    elif provider == "gcp":
        found["project"] = account
        found["zone"] = row.get("zone")
    elif provider == "kubernetes":
        found["workload_kind"] = _K8S_PLURALS.get(attributes.get("kind") or "")
        containers = attributes.get("containers") or []
        if containers and isinstance(containers[0], dict):
            found["container"] = containers[0].get("name")
    return {key: str(value) for key, value in found.items() if value}
