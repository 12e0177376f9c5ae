-- Every site the lake has seen, described by its latest snapshot.
with latest as (
    select *
    from {{ ref('stg_sites') }}
    where is_latest
    qualify row_number() over (partition by site_id order by snapshot_at desc) = 1
),

history as (
    select site_id, count(distinct snapshot_id) as snapshot_count
    from {{ ref('stg_sites') }}
    group by site_id
),

asset_counts as (
    select site_id, count(*) as asset_count
    from {{ ref('stg_assets') }}
    where is_latest
    group by site_id
),

image_counts as (
    select site_id, count(*) as image_count
    from {{ ref('stg_images') }}
    where is_latest
    group by site_id
),

last_failure as (
    select site_id, failed_at, call, error
    from {{ lake_source_or_empty('raw_discovery_failures') }} as failures
    qualify row_number() over (partition by site_id order by failed_at desc) = 1
)

select
    latest.site_id,
    latest.provider,
    latest.name,
    latest.location,
    latest.environment,
    latest.account,
    latest.endpoint_url,
    latest.snapshot_id as last_snapshot_id,
    latest.snapshot_at as last_snapshot_at,
    history.snapshot_count,
    coalesce(asset_counts.asset_count, 0) as asset_count,
    coalesce(image_counts.image_count, 0) as image_count,
    -- Stale: the latest discovery attempt failed, so the data shown is the last good snapshot.
    coalesce(last_failure.failed_at > latest.snapshot_at, false) as is_stale,
    round(date_diff('second', latest.snapshot_at, now()) / 3600.0, 2) as snapshot_age_hours,
    case when last_failure.failed_at > latest.snapshot_at then last_failure.failed_at end as last_failure_at,
    case when last_failure.failed_at > latest.snapshot_at then last_failure.call end as last_failure_call,
    case when last_failure.failed_at > latest.snapshot_at then last_failure.error end as last_failure_error
from latest
join history on latest.site_id = history.site_id
left join asset_counts on latest.site_id = asset_counts.site_id
left join image_counts on latest.site_id = image_counts.site_id
left join last_failure on latest.site_id = last_failure.site_id
