"""The warehouse reads planners use, as named tools: name -> SQL (read-only, no parameters).

The names are what a plan records in `task.tools_used` and what `ai_tool_invocations` records; the
drift items query text is what a plan records as evidence.
"""

from __future__ import annotations

FIXABLE_DRIFT_TYPES = ("image_outdated", "image_deprecated", "image_revoked")

DRIFT_ITEMS_TOOL = "warehouse.drift_items"
IMAGE_ARTIFACTS_TOOL = "warehouse.image_artifacts"
SITE_FLEET_TOOL = "warehouse.site_fleet"
ASSET_REGIONS_TOOL = "warehouse.asset_regions"

# drift_items keeps history and config drift: planners fix images, so they read the open image
# drift only (config drift is for people and compliance evidence). CURRENT_IMAGE_DRIFT is the
# filter every planner query shares.
CURRENT_IMAGE_DRIFT = "status = 'open' AND starts_with(drift_type, 'image_')"

# Only assets running now: every phase's health check needs its assets up before the change, so
# a stopped, pending or degraded asset would fail a wave it never touched. Those stay for a person.
DRIFT_ITEMS_SQL = (
    "SELECT drift_id, snapshot_id, site_id, provider, environment, asset_id, asset_name, kind, "
    "drift_type, severity, image_ref, image_id, family, asset_version, current_version, "
    "current_image_id, versions_behind, days_behind FROM drift_items "
    f"WHERE {CURRENT_IMAGE_DRIFT} "
    "AND asset_id IN (SELECT asset_id FROM assets WHERE state = 'running') ORDER BY site_id, asset_id"
)

# image_artifacts holds the latest snapshot of every site only; golden artifacts have an image_id.
IMAGE_ARTIFACTS_SQL = (
    "SELECT provider_image_id, site_id, provider, region, image_id FROM image_artifacts "
    "WHERE image_id IS NOT NULL ORDER BY site_id, image_id, region, provider_image_id"
)

# The fleet a share limit is measured against: the in-scope assets of the site's latest snapshot
# (kind vm, node or workload, not terminated), the same population drift_items is drawn from.
SITE_FLEET_SQL = (
    "SELECT site_id, max(snapshot_id) AS snapshot_id, "
    "count(*) FILTER (WHERE kind IN ('vm', 'node', 'workload') AND coalesce(state, '') <> 'terminated') "
    "AS fleet_size FROM assets GROUP BY site_id ORDER BY site_id"
)

ASSET_REGIONS_SQL = (
    "SELECT assets.asset_id, assets.region FROM assets "
    f"WHERE assets.asset_id IN (SELECT asset_id FROM drift_items WHERE {CURRENT_IMAGE_DRIFT}) "
    "ORDER BY assets.asset_id"
)

TOOLS: dict[str, str] = {
    DRIFT_ITEMS_TOOL: DRIFT_ITEMS_SQL,
    IMAGE_ARTIFACTS_TOOL: IMAGE_ARTIFACTS_SQL,
    SITE_FLEET_TOOL: SITE_FLEET_SQL,
    ASSET_REGIONS_TOOL: ASSET_REGIONS_SQL,
}
