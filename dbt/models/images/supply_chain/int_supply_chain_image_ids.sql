{{ config(schema='staging') }}
-- One row per imported image_ref: every name any import gave the image, and the golden image
-- whose artifact (image_artifacts.provider_image_id) carries one of those names.
with names as (
    select image_ref, image_ref as alias from {{ ref('stg_supply_chain_imports') }}
    union
    select image_ref, unnest(image_aliases) as alias from {{ ref('stg_supply_chain_imports') }}
),

matched as (
    select names.image_ref, min(artifacts.image_id) as image_id, count(distinct artifacts.image_id) as image_id_count
    from names
    join {{ ref('image_artifacts') }} as artifacts on artifacts.provider_image_id = names.alias
    where artifacts.image_id is not null
    group by names.image_ref
)

select
    names.image_ref,
    list_sort(list(distinct names.alias)) as names,
    matched.image_id,
    coalesce(matched.image_id_count, 0) as image_id_count
from names
left join matched on matched.image_ref = names.image_ref
group by names.image_ref, matched.image_id, matched.image_id_count
