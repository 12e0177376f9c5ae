-- One row per golden image family: its versions, its current version and how much of the estate
-- runs it.
with versions as (
    select * from {{ ref('int_golden_versions') }}
),

images as (
    select * from {{ ref('golden_images') }}
),

families as (
    select
        family,
        count(*) as version_count,
        max(current_version) as current_version,
        max(current_image_id) as current_image_id,
        max(current_basis) as current_basis,
        arg_max(version, version_key) as latest_version,
        min(created_at) as first_published_at,
        max(created_at) as last_published_at
    from versions
    group by family
),

family_images as (
    select
        family,
        -- platform / os of the newest version that states them
        arg_max(platform, version_key) filter (where platform is not null) as platform,
        arg_max(os, version_key) filter (where os is not null) as os,
        cast(sum(assets_running) as bigint) as assets_running,
        cast(coalesce(sum(assets_running) filter (where is_current), 0) as bigint) as assets_on_current
    from images
    group by family
),

family_providers as (
    select
        family,
        array_to_string(list_sort(list_distinct(list(provider))), ',') as providers
    from {{ ref('image_artifacts') }}
    where image_id is not null
    group by family
)

select
    families.family,
    family_images.platform,
    family_images.os,
    families.version_count,
    families.current_version,
    families.current_image_id,
    families.current_basis,
    families.latest_version,
    family_providers.providers,
    families.first_published_at,
    families.last_published_at,
    family_images.assets_running,
    family_images.assets_on_current
from families
join family_images on families.family = family_images.family
left join family_providers on families.family = family_providers.family
