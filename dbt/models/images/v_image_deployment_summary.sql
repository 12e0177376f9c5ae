{{ config(materialized='view') }}
-- Where each golden image runs now: assets of the latest snapshots on it, by environment and state.
select
    golden.image_id,
    golden.family,
    golden.version,
    golden.status,
    golden.is_current,
    count(assets.asset_id) as assets,
    count(assets.asset_id) filter (where assets.state = 'running') as running_assets,
    count(assets.asset_id) filter (where assets.environment = 'production') as production_assets,
    count(distinct assets.site_id) as sites,
    coalesce(string_agg(distinct assets.site_id, ',' order by assets.site_id), '') as site_ids,
    max(assets.snapshot_at) as last_seen_at
from {{ ref('golden_images').include(database=False) }} as golden
left join {{ ref('assets').include(database=False) }} as assets
    on assets.image_id = golden.image_id
    and assets.state is distinct from 'terminated'
group by all
