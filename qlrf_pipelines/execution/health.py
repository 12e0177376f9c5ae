"""Health checks after each phase, read from the lake (the estate as discovery last saw it).

`asset_running`: every asset of the phase is in the latest snapshot of its site with state
'running'. `image_matches_target`: every asset runs the target image; a dry run changed nothing,
so it is reported as not verifiable (and passes) rather than failing or faking a match.

After a *real* change the lake only shows it once the site is discovered again: the execute job
must re-discover the phase's sites before it checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from qlrf_pipelines.execution.lake_view import latest_rows
from qlrf_pipelines.planning.plan import HealthCheck, Phase, Plan

DRY_RUN_IMAGE_CHECK = "not verifiable in a dry run (no change was made)"


@dataclass(frozen=True)
class HealthResult:
    passed: bool
    failed_assets: list[str]
    details: str
    kind: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class HealthChecker(Protocol):
    def check(self, plan: Plan, phase: Phase, check: HealthCheck) -> HealthResult: ...


@dataclass
class LakeHealthChecker:
    """Checks against the latest lake snapshot of each site involved in the phase.

    dry_run must match the execution's mode (the engine refuses a mismatch): in a dry run the
    image check cannot be verified and says so.
    """

    lake_dir: Path
    dry_run: bool = True

    def check(self, plan: Plan, phase: Phase, check: HealthCheck) -> HealthResult:
        if check.kind == "image_matches_target" and self.dry_run:
            return HealthResult(True, [], DRY_RUN_IMAGE_CHECK, check.kind)
        if check.kind not in ("asset_running", "image_matches_target"):
            return HealthResult(False, list(phase.asset_ids), f"unknown health check {check.kind!r}", check.kind)
        if not phase.asset_ids:
            return HealthResult(True, [], "the phase has no assets", check.kind)

        observed, snapshots = self._observe(plan, phase)
        failed: list[str] = []
        reasons: list[str] = []
        for asset_id in phase.asset_ids:
            target = plan.target(asset_id)
            row = observed.get(asset_id)
            if row is None:
                failed.append(asset_id)
                where = "no snapshot of its site" if snapshots.get(target.site_id) is None else "not in the latest snapshot"
                reasons.append(f"{asset_id}: {where}")
            elif check.kind == "asset_running" and row.get("state") != "running":
                failed.append(asset_id)
                reasons.append(f"{asset_id}: state {row.get('state')!r}")
            elif check.kind == "image_matches_target" and row.get("image_ref") != target.to_image_ref:
                failed.append(asset_id)
                reasons.append(f"{asset_id}: runs {row.get('image_ref')!r}, expected {target.to_image_ref!r}")

        share = len(failed) / len(phase.asset_ids)
        passed = share <= check.max_failed_share
        read = ", ".join(f"{site}@{snap or 'none'}" for site, snap in sorted(snapshots.items()))
        summary = (
            f"{check.kind}: {len(failed)}/{len(phase.asset_ids)} failed "
            f"(share {share:.2f}, allowed {check.max_failed_share:.2f}); latest snapshots {read}"
        )
        if reasons:
            summary += "; " + "; ".join(reasons)
        return HealthResult(passed, failed, summary, check.kind)

    def _observe(self, plan: Plan, phase: Phase) -> tuple[dict[str, dict], dict[str, str | None]]:
        """asset_id -> latest row (asset_id, name, state, image_ref), and site_id -> the snapshot
        id read (None when the site has no snapshot).

        vSphere replaces a VM by a clone of the same name (a new instance uuid, so a new asset id),
        so vSphere targets are found by name, preferring the asset id when it is still there.
        """
        by_site: dict[str, list[str]] = {}
        for asset_id in phase.asset_ids:
            by_site.setdefault(plan.target(asset_id).site_id, []).append(asset_id)
        observed: dict[str, dict] = {}
        snapshots: dict[str, str | None] = {}
        for site_id, asset_ids in by_site.items():
            targets = [plan.target(a) for a in asset_ids]
            by_name = any(t.provider == "vsphere" for t in targets)
            snapshot_id, rows = latest_rows(
                self.lake_dir,
                "assets",
                site_id,
                ["asset_id", "name", "state", "image_ref"],
                None if by_name else asset_ids,
            )
            snapshots[site_id] = snapshot_id
            if snapshot_id is None:
                continue
            ids = {row["asset_id"]: row for row in rows}
            names = {row["name"]: row for row in rows if row.get("name")}
            for target in targets:
                row = ids.get(target.asset_id)
                if target.provider == "vsphere":
                    row = names.get(target.name) or row
                if row is not None:
                    observed[target.asset_id] = row
        return observed, snapshots
