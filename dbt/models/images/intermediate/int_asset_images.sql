-- Asset history resolved against the current golden image catalog: every asset of every site
-- snapshot, with its site's environment and the golden image its image_ref points to.
-- Matching is exact on provider_image_id across ALL sites' latest snapshots, so a Kubernetes
-- node running an AMI is matched through the AWS site that discovered the AMI.
with golden_refs as (
    -- One golden image per provider image id; the same id can be discovered by several sites
    -- (two clusters pulling the same golden container image), keep the freshest observation.
    select
        provider_image_id,
        {{ golden_image_id('family', 'version') }} as image_id,
        family,
        version
    from {{ ref('stg_images') }}
    where is_latest
      and family is not null
      and version is not null
    qualify row_number() over (
        partition by provider_image_id
        order by snapshot_at desc, site_id
    ) = 1
),

sites as (
    select site_id, snapshot_id, environment
    from {{ ref('stg_sites') }}
),

latest_sites as (
    select site_id, environment
    from {{ ref('stg_sites') }}
    where is_latest
    qualify row_number() over (partition by site_id order by snapshot_id desc) = 1
)

select
    assets.snapshot_id,
    assets.snapshot_at,
    assets.asset_id,
    assets.site_id,
    assets.provider,
    coalesce(sites.environment, latest_sites.environment) as environment,
    assets.native_id,
    assets.kind,
    assets.name,
    assets.state,
    assets.discovered_at,
    assets.image_ref,
    golden_refs.image_id,
    golden_refs.family as image_family,
    golden_refs.version as image_version,
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
    assets.tags,
    assets.is_latest
from {{ ref('stg_assets') }} as assets
left join sites
    on assets.site_id = sites.site_id
   and assets.snapshot_id = sites.snapshot_id
left join latest_sites
    on assets.site_id = latest_sites.site_id
left join golden_refs
    on assets.image_ref = golden_refs.provider_image_id
