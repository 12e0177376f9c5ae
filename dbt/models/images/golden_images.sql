-- One row per golden image (family, version) in the current catalog, with where it is published
-- and how many assets run it now.
with running as (
    select image_id, count(*) as assets_running
    from {{ ref('assets') }}
    where image_id is not null
      and state is distinct from 'terminated'
    group by image_id
)

select
    versions.image_id,
    versions.family,
    versions.version,
    versions.version_key,
    versions.status,
    versions.status_source,
    versions.status_changed_at,
    versions.tag_status,
    versions.created_at,
    versions.is_current,
    versions.platform,
    versions.os,
    versions.artifact_count,
    versions.providers,
    versions.site_count,
    coalesce(running.assets_running, 0) as assets_running
from {{ ref('int_golden_versions') }} as versions
left join running on versions.image_id = running.image_id
