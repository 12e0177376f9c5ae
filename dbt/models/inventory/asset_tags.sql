-- Tags / labels of the assets in the latest snapshots, one row per (asset, key).
select
    assets.asset_id,
    assets.site_id,
    tag.entry.key as key,
    tag.entry.value as value
from {{ ref('assets') }} as assets,
    unnest(assets.tags) as tag(entry)
