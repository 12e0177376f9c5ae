-- DR pairs now: one row per pair of the newest DR pair snapshot the lake holds (the sites file's
-- `dr_pairs`, landed by qlrf_pipelines/dr/landing.py only when they changed), with the provider,
-- location and environment of both sides from `sites`. Empty before a sites file declares a pair.
with pairs as (
    select * from {{ lake_source_or_empty('raw_dr_pairs') }} as raw
    qualify snapshot_id = max(snapshot_id) over ()
)

select
    cast(pairs.pair_id as varchar) as pair_id,
    cast(pairs.primary_site_id as varchar) as primary_site_id,
    cast(primary_site.provider as varchar) as primary_provider,
    cast(primary_site.location as varchar) as primary_location,
    cast(primary_site.environment as varchar) as primary_environment,
    cast(pairs.dr_site_id as varchar) as dr_site_id,
    cast(dr_site.provider as varchar) as dr_provider,
    cast(dr_site.location as varchar) as dr_location,
    cast(dr_site.environment as varchar) as dr_environment,
    cast(pairs.rpo_minutes as integer) as rpo_minutes,
    cast(pairs.rto_minutes as integer) as rto_minutes,
    cast(pairs.families as varchar[]) as families,
    cast(pairs.description as varchar) as description,
    cast(pairs.config_sha256 as varchar) as config_sha256,
    cast(pairs.snapshot_id as varchar) as config_snapshot_id,
    cast(pairs.snapshot_at as timestamptz) as config_snapshot_at
from pairs
left join {{ ref('sites') }} as primary_site on primary_site.site_id = pairs.primary_site_id
left join {{ ref('sites') }} as dr_site on dr_site.site_id = pairs.dr_site_id
