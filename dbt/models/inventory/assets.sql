-- The estate now: every asset in the latest snapshot of its site, with the site's environment
-- and the golden image it runs (null image_id when its image is not a golden image).
select
    assets.asset_id,
    assets.site_id,
    assets.provider,
    assets.environment,
    assets.native_id,
    assets.kind,
    assets.name,
    assets.state,
    assets.image_ref,
    assets.image_id,
    assets.image_family,
    assets.image_version,
    versions.status as image_status,
    assets.platform,
    assets.os,
    assets.instance_type,
    assets.cpu_count,
    assets.memory_mb,
    assets.region,
    assets.zone,
    assets.network,
    assets.private_ip,
    assets.public_ip,
    assets.disk_encryption,
    assets.launched_at,
    assets.discovered_at,
    assets.tags,
    assets.snapshot_id,
    assets.snapshot_at
from {{ ref('int_asset_images') }} as assets
left join {{ ref('int_golden_versions') }} as versions
    on assets.image_id = versions.image_id
where assets.is_latest
