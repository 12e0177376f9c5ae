{#
  Daily drift trend: one row per (UTC day, severity), severity one of critical, high, medium,
  low or `all`, for every day from the first observed site snapshot to the latest. The estate
  on a day is each site's latest observed snapshot at the end of that day (a site not
  rediscovered that day counts with its previous snapshot). Built from drift_observations and
  drift_items, so the past rows stay as they were when new snapshots arrive.
#}
with markers as (
    select site_id, snapshot_id, snapshot_at, assets_total
    from {{ ref('drift_observations') }}
    where drift_key is null
),

days as (
    select
        cast(day as date) as day,
        cast(day as timestamptz) + interval 1 day as day_end
    from (
        select unnest(generate_series(
            cast(min(snapshot_at) as date),
            cast(max(snapshot_at) as date),
            interval 1 day
        )) as day
        from markers
    )
),

severities as (
    select unnest(['all', 'critical', 'high', 'medium', 'low']) as severity
),

site_days as (
    -- Each site's latest snapshot at the end of each day (none before its first snapshot).
    select days.day, days.day_end, markers.site_id, markers.snapshot_id, markers.assets_total
    from days
    cross join (select distinct site_id from markers) as sites
    asof join markers
        on sites.site_id = markers.site_id
       and days.day_end > markers.snapshot_at
),

estate as (
    select day, sum(assets_total) as assets_total
    from site_days
    group by day
),

items as (
    select site_id, asset_id, drift_key, first_seen_snapshot_id, snapshot_id as last_snapshot_id,
        first_seen_at, closed_at, resolution, severity, age_days
    from {{ ref('drift_items') }}
),

open_on_day as (
    -- The drift of each site's snapshot at the end of the day, with the severity seen then and
    -- the episode it belongs to (for its age).
    select
        site_days.day,
        site_days.day_end,
        observations.asset_id,
        observations.severity,
        items.first_seen_at
    from site_days
    inner join {{ ref('drift_observations') }} as observations
        on site_days.site_id = observations.site_id
       and site_days.snapshot_id = observations.snapshot_id
    inner join items
        on observations.site_id = items.site_id
       and observations.asset_id = items.asset_id
       and observations.drift_key = items.drift_key
       and observations.snapshot_id between items.first_seen_snapshot_id and items.last_snapshot_id
    where observations.drift_key is not null
),

open_by_severity as (
    select
        day,
        coalesce(severity, 'all') as severity,
        count(distinct asset_id) as assets_drifted,
        count(*) as open_items,
        avg((epoch(least(day_end, now())) - epoch(first_seen_at)) / 86400.0) as mean_age_days
    from open_on_day
    group by grouping sets ((day), (day, severity))
),

opened_items as (
    -- An episode counts as opened with the severity it was first seen with.
    select cast(items.first_seen_at as date) as day, observations.severity
    from items
    inner join {{ ref('drift_observations') }} as observations
        on items.site_id = observations.site_id
       and items.asset_id = observations.asset_id
       and items.drift_key = observations.drift_key
       and items.first_seen_snapshot_id = observations.snapshot_id
),

opened as (
    select day, coalesce(severity, 'all') as severity, count(*) as opened
    from opened_items
    group by grouping sets ((day), (day, severity))
),

closed as (
    -- An episode counts as closed with the severity it was last seen with.
    select
        cast(closed_at as date) as day,
        coalesce(severity, 'all') as severity,
        count(*) as closed,
        avg(age_days) filter (where resolution = 'fixed') as mean_days_to_fix
    from items
    where closed_at is not null
    group by grouping sets ((cast(closed_at as date)), (cast(closed_at as date), severity))
)

select
    days.day,
    severities.severity,
    coalesce(estate.assets_total, 0) as assets_total,
    coalesce(open_by_severity.assets_drifted, 0) as assets_drifted,
    case
        when coalesce(estate.assets_total, 0) = 0 then 0.0
        else cast(coalesce(open_by_severity.assets_drifted, 0) as double) / estate.assets_total
    end as drift_rate,
    coalesce(open_by_severity.open_items, 0) as open_items,
    coalesce(opened.opened, 0) as opened,
    coalesce(closed.closed, 0) as closed,
    round(open_by_severity.mean_age_days, 2) as mean_age_days,
    round(closed.mean_days_to_fix, 2) as mean_days_to_fix
from days
cross join severities
left join estate on days.day = estate.day
left join open_by_severity
    on days.day = open_by_severity.day
   and severities.severity = open_by_severity.severity
left join opened
    on days.day = opened.day
   and severities.severity = opened.severity
left join closed
    on days.day = closed.day
   and severities.severity = closed.severity
