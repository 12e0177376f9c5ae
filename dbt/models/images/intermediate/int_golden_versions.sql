-- The current golden image catalog: one row per golden image (family, version) discovered in the
-- latest snapshot of any site, with its status and its family's current version. The status is the
-- image's newest promotion (`qlrf images promote`) when it has one, else what its tags say.
with artifacts as (
    select *
    from {{ ref('stg_images') }}
    where is_latest
      and family is not null
      and version is not null
),

promoted as (
    select image_id, to_status, promoted_at from {{ ref('image_promotions') }} where is_latest
),

tagged as (
    select
        {{ golden_image_id('family', 'version') }} as image_id,
        family,
        version,
        coalesce(max(version_key), version) as version_key,
        {{ image_status_from_rank('max(' ~ image_status_rank('status') ~ ')') }} as tag_status,
        min(created_at) as created_at,
        max(platform) as platform,
        max(os) as os,
        count(*) as artifact_count,
        array_to_string(list_sort(list_distinct(list(provider))), ',') as providers,
        count(distinct site_id) as site_count
    from artifacts
    group by family, version
),

versions as (
    select
        tagged.*,
        coalesce(promoted.to_status, tagged.tag_status) as status,
        case when promoted.to_status is not null then 'promotion' when tagged.tag_status is not null then 'tags' end
            as status_source,
        promoted.promoted_at as status_changed_at
    from tagged
    left join promoted on promoted.image_id = tagged.image_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by family
            order by (status = 'production') desc nulls last, version_key desc, version desc
        ) as production_rank,
        row_number() over (
            partition by family
            order by version_key desc, version desc
        ) as newest_rank,
        bool_or(status is not null) over (partition by family) as family_has_status
    from versions
),

current_versions as (
    -- production: the highest production version; newest_seen: no version of the family has any
    -- status (container families), so the highest version seen. A family with statuses but no
    -- production version has no current version.
    select
        family,
        image_id as current_image_id,
        version as current_version,
        version_key as current_version_key,
        created_at as current_created_at,
        case when status = 'production' then 'production' else 'newest_seen' end as current_basis
    from ranked
    where (production_rank = 1 and status = 'production')
       or (newest_rank = 1 and not family_has_status)
)

select
    ranked.image_id,
    ranked.family,
    ranked.version,
    ranked.version_key,
    ranked.status,
    ranked.tag_status,
    ranked.status_source,
    ranked.status_changed_at,
    ranked.created_at,
    ranked.platform,
    ranked.os,
    ranked.artifact_count,
    ranked.providers,
    ranked.site_count,
    ranked.family_has_status,
    current_versions.current_image_id,
    current_versions.current_version,
    current_versions.current_version_key,
    current_versions.current_created_at,
    current_versions.current_basis,
    coalesce(ranked.image_id = current_versions.current_image_id, false) as is_current
from ranked
left join current_versions on ranked.family = current_versions.family
