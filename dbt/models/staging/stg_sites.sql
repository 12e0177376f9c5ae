-- Every site snapshot in the lake, typed: the spine the other staging models take is_latest from.
-- A site publishes its sites, assets and images files together, so the latest raw_sites snapshot
-- of a site is its latest snapshot (the per-entity maximum is only a fallback in stg_assets/images).
with source as (
    select * from {{ source('lake', 'raw_sites') }}
),

typed as (
    select
        cast(snapshot_id as varchar) as snapshot_id,
        cast(snapshot_at as timestamptz) as snapshot_at,
        cast(site_id as varchar) as site_id,
        cast(provider as varchar) as provider,
        cast(name as varchar) as name,
        cast(location as varchar) as location,
        lower(trim(cast(environment as varchar))) as environment,
        cast(account as varchar) as account,
        cast(endpoint_url as varchar) as endpoint_url,
        cast(asset_count as bigint) as asset_count,
        cast(image_count as bigint) as image_count
    from source
)

select
    *,
    snapshot_id = max(snapshot_id) over (partition by site_id) as is_latest
from typed
