-- Every provider image discovered in the latest snapshot of each site; image_id links golden
-- artifacts (family and version known) to their golden image.
select
    provider_image_id,
    site_id,
    provider,
    region,
    name,
    {{ golden_image_id('family', 'version') }} as image_id,
    family,
    version,
    version_key,
    status,
    platform,
    os,
    created_at,
    discovered_at,
    snapshot_id,
    snapshot_at
from {{ ref('stg_images') }}
where is_latest
