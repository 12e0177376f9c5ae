"""DR readiness and failover simulation as pure functions over warehouse rows (no SQL, no I/O), so
the rules are tested on their own; qlrf_pipelines/planning/tools/dr_tools.py feeds them.

The judgement, in words:
- RPO proxy: an inventory older than the pair's RPO cannot show the data is recoverable, so each
  side's latest snapshot must be younger than `rpo_minutes` (and its latest discovery not failed).
- A family is recoverable at the DR site when the family's current golden image is published
  there (an image artifact discovered at the DR site).
- An asset is recoverable when the DR site has its exact version (not revoked), else the family's
  current image (a restore that also upgrades it); an asset running no golden image cannot be
  rebuilt from one.
- Critical open drift at the DR site (revoked or badly drifted machines) makes it unfit to take over.
"""

from __future__ import annotations

import math
from typing import Any, Collection, Iterable, Mapping

# Assets in a state that needs recovering when their site fails (stopped ones only on request).
INACTIVE_STATES = ("stopped", "terminated")


def site_reasons(side: str, site_id: str, site: Mapping[str, Any] | None, rpo_minutes: int) -> list[str]:
    """Why one side of a pair cannot be trusted: never discovered, discovery failing, or an
    inventory older than the RPO."""
    if site is None:
        return [f"{side} site {site_id} has no snapshot in the warehouse (not discovered yet)"]
    reasons = []
    if site.get("is_stale"):
        reasons.append(
            f"{side} site {site_id}: the latest discovery failed ({site.get('last_failure_at')}), "
            f"the data shown is from {site.get('last_snapshot_at')}"
        )
    age = site.get("snapshot_age_minutes")
    if age is not None and age > rpo_minutes:
        reasons.append(
            f"{side} site {site_id}: latest snapshot is {age:.0f} min old, older than the RPO of {rpo_minutes} min"
        )
    return reasons


def family_readiness(
    families: Iterable[str],
    running_at_primary: Mapping[str, int],
    catalog: Mapping[str, Mapping[str, Any]],
    published_at_dr: Mapping[str, set[str]],
    dr_drift_by_family: Mapping[str, int],
) -> list[dict[str, Any]]:
    """One row per family that must be recoverable: its current image and whether the DR site has it.

    `catalog`: family -> golden_image_families row (current_version, current_image_id);
    `published_at_dr`: family -> versions discovered at the DR site."""
    rows = []
    for family in sorted(families):
        known = catalog.get(family)
        current_version = known.get("current_version") if known else None
        published = sorted(published_at_dr.get(family, set()))
        rows.append({
            "family": family,
            "known_family": known is not None,
            "current_version": current_version,
            "current_image_id": known.get("current_image_id") if known else None,
            "primary_assets": running_at_primary.get(family, 0),
            "current_published_at_dr": current_version is not None and current_version in published,
            "versions_published_at_dr": published,
            "dr_open_drift": dr_drift_by_family.get(family, 0),
        })
    return rows


def family_reasons(rows: Iterable[Mapping[str, Any]], dr_site_id: str) -> list[str]:
    reasons = []
    for row in rows:
        if not row["known_family"]:
            reasons.append(f"family {row['family']}: not a known golden image family")
        elif row["current_version"] is None:
            reasons.append(f"family {row['family']}: has no current golden image")
        elif not row["current_published_at_dr"]:
            published = ", ".join(row["versions_published_at_dr"]) or "none"
            reasons.append(
                f"family {row['family']}: current image {row['current_image_id']} is not published at DR site "
                f"{dr_site_id} (versions there: {published})"
            )
    return reasons


def restore_image(
    asset: Mapping[str, Any],
    catalog: Mapping[str, Mapping[str, Any]],
    published_at_dr: Mapping[str, set[str]],
    dr_site_id: str,
    revoked: Collection[str] = (),
) -> tuple[str | None, str | None, str]:
    """(image id to restore with, basis, why) for one primary asset: the same version when the DR
    site has it and it is not revoked, else the family's current image; (None, None, why not)
    when neither is there."""
    family, version = asset.get("image_family"), asset.get("image_version")
    if not family:
        ref = asset.get("image_ref")
        return None, None, f"runs no golden image ({'image_ref ' + ref if ref else 'no image_ref'})"
    there = published_at_dr.get(family, set())
    own = f"{family}@{version}"
    if version in there and own not in revoked:
        return own, "same_version", f"{own} is published at {dr_site_id}"
    current = (catalog.get(family) or {}).get("current_version")
    if current is not None and current in there:
        why = "is revoked" if own in revoked else f"is not at {dr_site_id}"
        return f"{family}@{current}", "family_current", f"{own} {why}; restore on the current {current}"
    return None, None, f"neither {own} nor the family's current image is published at {dr_site_id}"


def plan_failover(
    assets: list[Mapping[str, Any]],
    catalog: Mapping[str, Mapping[str, Any]],
    published_at_dr: Mapping[str, set[str]],
    dr_site_id: str,
    rto_minutes: int,
    restore_minutes_per_asset: int,
    parallel_restores: int,
    families: list[str] | None = None,
    revoked: Collection[str] = (),
    max_listed: int = 200,
) -> dict[str, Any]:
    """What failing over `assets` (the primary's, already filtered) to the DR site would take.

    Assets outside the pair's declared `families` are counted as not covered and left out;
    recovery order is production first, then by name; restores run `parallel_restores` at a time,
    each taking `restore_minutes_per_asset`."""
    covered, not_covered = [], 0
    for asset in assets:
        if families is not None and asset.get("image_family") not in families:
            not_covered += 1
        else:
            covered.append(asset)
    covered.sort(key=lambda a: (a.get("environment") != "production", a.get("name") or "", a.get("asset_id")))

    groups: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    recoverable, not_recoverable = [], []
    for asset in covered:
        image, basis, why = restore_image(asset, catalog, published_at_dr, dr_site_id, revoked)
        key = (asset.get("image_family"), asset.get("image_version"))
        group = groups.setdefault(key, {
            "family": key[0], "version": key[1], "image_id": asset.get("image_id"), "assets": 0, "vcpus": 0,
            "vcpus_unknown": 0, "recoverable": image is not None, "restore_image_id": image, "basis": basis,
        })
        group["assets"] += 1
        if asset.get("cpu_count") is None:
            group["vcpus_unknown"] += 1
        else:
            group["vcpus"] += asset["cpu_count"]
        entry = {
            "asset_id": asset.get("asset_id"), "name": asset.get("name"), "environment": asset.get("environment"),
            "family": key[0], "version": key[1], "instance_type": asset.get("instance_type"),
            "cpu_count": asset.get("cpu_count"),
        }
        if image is None:
            not_recoverable.append(dict(entry, reason=why))
        else:
            recoverable.append(dict(entry, restore_image_id=image, basis=basis))

    parallel = max(1, parallel_restores)
    order = [
        dict(entry, position=index + 1, done_by_minute=(index // parallel + 1) * restore_minutes_per_asset)
        for index, entry in enumerate(recoverable)
    ]
    estimated = math.ceil(len(recoverable) / parallel) * restore_minutes_per_asset
    within_rto = estimated <= rto_minutes
    rto_met = within_rto and not not_recoverable
    if not_recoverable:
        verdict = (
            f"not met: {len(not_recoverable)} asset(s) have no recoverable image at {dr_site_id}"
            + (f"; the other {len(recoverable)} take ~{estimated} min of the {rto_minutes} min RTO" if recoverable else "")
        )
    elif within_rto:
        verdict = f"plausibly met: ~{estimated} min for {len(recoverable)} asset(s) within the {rto_minutes} min RTO"
    else:
        verdict = f"not met: ~{estimated} min for {len(recoverable)} asset(s) exceeds the {rto_minutes} min RTO"

    vcpus = sum(a["cpu_count"] for a in covered if a.get("cpu_count") is not None)
    return {
        "assets_needing_recovery": len(covered),
        "assets_not_covered_by_pair": not_covered,
        "vcpus_needing_recovery": vcpus,
        "assets_with_unknown_vcpus": sum(1 for a in covered if a.get("cpu_count") is None),
        "recoverable_assets": len(recoverable),
        "not_recoverable_assets": len(not_recoverable),
        "by_image": sorted(groups.values(), key=lambda g: (g["family"] is None, g["family"] or "", g["version"] or "")),
        "not_recoverable": not_recoverable[:max_listed],
        "recovery_order": order[:max_listed],
        "recovery_order_truncated": len(order) > max_listed,
        "estimated_recovery_minutes": estimated,
        "rto_minutes": rto_minutes,
        "within_rto_for_recoverable": within_rto,
        "rto_met": rto_met,
        "rto_assessment": verdict,
        "assumptions": [
            f"each asset is restored from its golden image at the DR site in {restore_minutes_per_asset} min, "
            f"{parallel} at a time (restore_minutes_per_asset, parallel_restores)",
            "an asset restores on its own version when the DR site has it (and it is not revoked), "
            "else on the family's current image",
            "data restore and network cut-over are not included; production assets are restored first, then by name",
        ],
    }
