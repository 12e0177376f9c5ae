-- Tags / labels / custom attributes of every provider image in the latest snapshots, one row per
-- (image, site, key): where golden images get their family, version and status from.
select
    images.provider_image_id,
    images.site_id,
    images.provider,
    {{ golden_image_id('images.family', 'images.version') }} as image_id,
    tag.entry.key as key,
    tag.entry.value as value
from {{ ref('stg_images') }} as images,
    unnest(images.tags) as tag(entry)
where images.is_latest
