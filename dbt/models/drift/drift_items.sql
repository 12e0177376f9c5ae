{#
  Drift with history: one row per drift episode, an (asset_id, drift_key) that drifted in
  consecutive observed snapshots of its site (gaps and islands over each site's ordered
  snapshots). An episode is open while the site's latest snapshot still shows it; it closes with
  the first later snapshot that does not, as `fixed` when the asset is still there (in scope)
  and `asset_removed` when it is gone or terminated. The same drift coming back later is a new
  episode. Built from drift_observations, which judges each snapshot once, so closed episodes
  never change. Current drift is `where status = 'open'`.
#}
with snapshots as (
    -- Every observed site snapshot, in order; the marker rows of drift_observations.
    select
        site_id,
        snapshot_id,
        snapshot_at,
        row_number() over (partition by site_id order by snapshot_id) as snapshot_seq,
        lead(snapshot_id) over (partition by site_id order by snapshot_id) as next_snapshot_id,
        lead(snapshot_at) over (partition by site_id order by snapshot_id) as next_snapshot_at
    from {{ ref('drift_observations') }}
    where drift_key is null
),

observed as (
    select
        observations.*,
        snapshots.snapshot_seq,
        snapshots.next_snapshot_id,
        snapshots.next_snapshot_at
    from {{ ref('drift_observations') }} as observations
    inner join snapshots
        on observations.site_id = snapshots.site_id
       and observations.snapshot_id = snapshots.snapshot_id
    where observations.drift_key is not null
),

islands as (
    -- Consecutive snapshots of one (asset, drift_key) share snapshot_seq - row_number().
    select
        observed.*,
        snapshot_seq - row_number() over (
            partition by site_id, asset_id, drift_key order by snapshot_seq
        ) as island
    from observed
),

episodes as (
    -- The last observation of each island carries the episode's current description.
    select
        islands.*,
        min(snapshot_id) over island_window as first_seen_snapshot_id,
        min(snapshot_at) over island_window as first_seen_at
    from islands
    window island_window as (partition by site_id, asset_id, drift_key, island)
    qualify snapshot_seq = max(snapshot_seq) over island_window
),

present as (
    -- In-scope assets of the snapshots that closed an episode: still there means fixed.
    select distinct assessments.snapshot_id, assessments.asset_id
    from {{ ref('int_drift_assessments') }} as assessments
    where exists (
        select 1 from episodes
        where episodes.next_snapshot_id = assessments.snapshot_id
          and episodes.asset_id = assessments.asset_id
    )
),

closed as (
    select
        episodes.*,
        case when next_snapshot_id is null then 'open' else 'closed' end as status,
        next_snapshot_id as closed_snapshot_id,
        next_snapshot_at as closed_at,
        case
            when next_snapshot_id is null then null
            when present.asset_id is not null then 'fixed'
            else 'asset_removed'
        end as resolution
    from episodes
    left join present
        on episodes.next_snapshot_id = present.snapshot_id
       and episodes.asset_id = present.asset_id
)

select
    md5(asset_id || '|' || drift_key || '|' || first_seen_snapshot_id) as drift_id,
    snapshot_id,
    snapshot_at,
    site_id,
    provider,
    environment,
    asset_id,
    asset_name,
    kind,
    drift_type,
    severity,
    image_ref,
    image_id,
    family,
    asset_version,
    image_status,
    current_version,
    current_image_id,
    versions_behind,
    days_behind,
    detail,
    drift_key,
    rule_id,
    expected,
    actual,
    status,
    first_seen_snapshot_id,
    first_seen_at,
    snapshot_at as last_seen_at,
    closed_snapshot_id,
    closed_at,
    resolution,
    round((epoch(coalesce(closed_at, now())) - epoch(first_seen_at)) / 86400.0, 2) as age_days
from closed
