-- Parent -> child edges between images: links people registered (`qlrf images link`, from the
-- latest control snapshot) and parents named by image tags in the latest discovery of each site.
-- A tag may name the parent by provider image id; it is resolved to the golden image published as
-- that id, else kept as written (an image outside the catalog, e.g. a vendor's public AMI).
-- One row per (parent, child): a registered link wins over the tags.
with registered_source as (
    select * from {{ lake_source_or_empty('raw_image_lineage_links') }} as raw
),

registered as (
    select
        cast(parent_image_id as varchar) as parent_image_id,
        cast(child_image_id as varchar) as child_image_id,
        cast(relation as varchar) as relation,
        'registered' as source,
        cast(linked_by as varchar) as linked_by,
        cast(reason as varchar) as reason,
        cast(linked_at as timestamptz) as linked_at,
        []::varchar[] as site_ids
    from registered_source
    where snapshot_id = (select max(snapshot_id) from registered_source)
),

golden as (
    select distinct image_id from {{ ref('image_artifacts') }} where image_id is not null
),

by_provider_id as (
    select provider_image_id, min(image_id) as image_id
    from {{ ref('image_artifacts') }}
    where image_id is not null
    group by provider_image_id
),

tagged as (
    select
        coalesce(golden.image_id, by_provider_id.image_id, images.parent_image) as parent_image_id,
        {{ golden_image_id('images.family', 'images.version') }} as child_image_id,
        coalesce(images.parent_relation, 'derived_from') as relation,
        images.site_id
    from {{ ref('stg_images') }} as images
    left join golden on golden.image_id = images.parent_image
    left join by_provider_id on by_provider_id.provider_image_id = images.parent_image
    where images.is_latest
      and images.parent_image is not null
      and images.family is not null
      and images.version is not null
),

discovered as (
    select
        parent_image_id,
        child_image_id,
        -- artifacts of one image on several providers should agree; if not, pick one deterministically
        min(relation) as relation,
        'discovered' as source,
        null::varchar as linked_by,
        null::varchar as reason,
        null::timestamptz as linked_at,
        list_sort(list(distinct site_id)) as site_ids
    from tagged
    where parent_image_id <> child_image_id
    group by parent_image_id, child_image_id
),

merged as (
    select * from registered
    union all
    select discovered.* from discovered
    where not exists (
        select 1 from registered
        where registered.parent_image_id = discovered.parent_image_id
          and registered.child_image_id = discovered.child_image_id
    )
)

select
    merged.parent_image_id,
    merged.child_image_id,
    merged.relation,
    merged.source,
    merged.linked_by,
    merged.reason,
    merged.linked_at,
    merged.site_ids,
    merged.parent_image_id in (select image_id from golden) as parent_is_golden
from merged
