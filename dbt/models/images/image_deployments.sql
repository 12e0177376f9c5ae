-- Which assets run which image, per snapshot: every asset with an image reference in every site
-- snapshot of the lake, resolved against the current golden image catalog.
select
    snapshot_id,
    snapshot_at,
    site_id,
    provider,
    asset_id,
    name as asset_name,
    kind,
    state,
    image_ref,
    image_id,
    image_family as family,
    image_version as version,
    is_latest
from {{ ref('int_asset_images') }}
where image_ref is not null
