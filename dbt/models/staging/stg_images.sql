-- Every provider image of every site snapshot in the lake, typed; is_latest marks the latest
-- snapshot of its site. family/version/status are set on golden image artifacts only.
with source as (
    select * from {{ source('lake', 'raw_images') }}
),

latest as (
    select distinct site_id, snapshot_id as latest_snapshot_id
    from {{ ref('stg_sites') }}
    where is_latest
),

typed as (
    select
        cast(snapshot_id as varchar) as snapshot_id,
        cast(snapshot_at as timestamptz) as snapshot_at,
        cast(provider_image_id as varchar) as provider_image_id,
        cast(site_id as varchar) as site_id,
        cast(provider as varchar) as provider,
        cast(name as varchar) as name,
        cast(discovered_at as timestamptz) as discovered_at,
        nullif(trim(cast(family as varchar)), '') as family,
        nullif(trim(cast(version as varchar)), '') as version,
        cast(version_key as varchar) as version_key,
        lower(nullif(trim(cast(status as varchar)), '')) as status,
        cast(region as varchar) as region,
        cast(platform as varchar) as platform,
        cast(os as varchar) as os,
        cast(created_at as timestamptz) as created_at,
        cast(tags as struct(key varchar, value varchar)[]) as tags,
        nullif(trim(cast(parent_image as varchar)), '') as parent_image,
        cast(parent_relation as varchar) as parent_relation
    from source
)

select
    typed.*,
    typed.snapshot_id = coalesce(
        latest.latest_snapshot_id,
        max(typed.snapshot_id) over (partition by typed.site_id)
    ) as is_latest
from typed
left join latest on typed.site_id = latest.site_id
