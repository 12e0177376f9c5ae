-- Every asset of every site snapshot in the lake, typed; is_latest marks the latest snapshot of
-- its site.
with source as (
    select * from {{ source('lake', 'raw_assets') }}
    -- Files written before a column existed lack it (union_by_name fills it with null only when
    -- some other file has it): a by-name union with an empty relation that has every such
    -- column makes it null there too, even when no file has it yet.
    union all by name
    select cast(null as varchar) as disk_encryption
    where false
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
        cast(asset_id as varchar) as asset_id,
        cast(site_id as varchar) as site_id,
        cast(provider as varchar) as provider,
        cast(native_id as varchar) as native_id,
        cast(kind as varchar) as kind,
        cast(name as varchar) as name,
        cast(state as varchar) as state,
        cast(discovered_at as timestamptz) as discovered_at,
        cast(image_ref as varchar) as image_ref,
        cast(platform as varchar) as platform,
        cast(os as varchar) as os,
        cast(instance_type as varchar) as instance_type,
        cast(cpu_count as integer) as cpu_count,
        cast(memory_mb as bigint) as memory_mb,
        cast(region as varchar) as region,
        cast(zone as varchar) as zone,
        cast(network as varchar) as network,
        cast(private_ip as varchar) as private_ip,
        cast(public_ip as varchar) as public_ip,
        cast(disk_encryption as varchar) as disk_encryption,
        cast(launched_at as timestamptz) as launched_at,
        cast(tags as struct(key varchar, value varchar)[]) as tags,
        cast(attributes_json as varchar) as attributes_json
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
