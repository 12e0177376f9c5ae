-- Image drift of every in-scope asset in every site snapshot of the lake, judged against the
-- current golden image catalog. One row per (snapshot_id, asset_id); drift_type is null when the
-- asset does not drift. drift_items takes the latest snapshots, drift_reports aggregates all.
--
-- Scope: kind vm / node / workload, not terminated. At most one drift item per asset, first
-- match wins: image_unknown, image_revoked, image_deprecated, image_outdated,
-- image_testing_in_production.
with assets as (
    select *
    from {{ ref('int_asset_images') }}
    where kind in ('vm', 'node', 'workload')
      and state is distinct from 'terminated'
),

versions as (
    select * from {{ ref('int_golden_versions') }}
),

version_distance as (
    -- How far each golden version is behind its family's current version. A property of the
    -- version, not of the asset, so it is computed once per version rather than per asset row.
    select
        image_id,
        case
            when current_version_key is not null then (
                select count(distinct newer.version)
                from versions as newer
                where newer.family = behind.family
                  and newer.version_key > behind.version_key
                  and newer.version_key <= behind.current_version_key
            )
        end as versions_behind,
        -- greatest() skips nulls in DuckDB, so guard the unknown case explicitly
        case
            when current_created_at is not null and created_at is not null then
                greatest(0, cast(floor((epoch(current_created_at) - epoch(created_at)) / 86400) as integer))
        end as days_behind
    from versions as behind
),

classified as (
    select
        assets.snapshot_id,
        assets.snapshot_at,
        assets.site_id,
        assets.provider,
        assets.environment,
        assets.asset_id,
        assets.name as asset_name,
        assets.kind,
        assets.is_latest,
        assets.image_ref,
        versions.image_id,
        versions.family,
        versions.version as asset_version,
        versions.version_key as asset_version_key,
        versions.status as image_status,
        versions.created_at as image_created_at,
        versions.current_version,
        versions.current_image_id,
        versions.current_version_key,
        versions.current_created_at,
        versions.current_basis,
        case
            when versions.image_id is null then 'image_unknown'
            when versions.status = 'revoked' then 'image_revoked'
            when versions.status = 'deprecated' then 'image_deprecated'
            when (versions.status = 'production' or versions.status is null)
                and versions.version_key < versions.current_version_key then 'image_outdated'
            when versions.status = 'testing' and assets.environment = 'production'
                then 'image_testing_in_production'
        end as drift_type
    from assets
    left join versions on assets.image_id = versions.image_id
),

measured as (
    select
        classified.*,
        case
            when drift_type in ('image_deprecated', 'image_outdated') then version_distance.versions_behind
        end as versions_behind,
        case
            when drift_type in ('image_deprecated', 'image_outdated') then version_distance.days_behind
        end as days_behind
    from classified
    left join version_distance on classified.image_id = version_distance.image_id
),

scored as (
    select
        measured.*,
        case
            when drift_type = 'image_unknown' then
                case when environment = 'production' then 'high' else 'medium' end
            when drift_type = 'image_revoked' then 'critical'
            when drift_type = 'image_testing_in_production' then 'medium'
            when drift_type in ('image_deprecated', 'image_outdated') then
                case
                    when coalesce(versions_behind, 0) >= 3 or coalesce(days_behind, 0) >= 180 then 'critical'
                    when drift_type = 'image_deprecated'
                        or coalesce(versions_behind, 0) = 2
                        or coalesce(days_behind, 0) >= 90 then 'high'
                    when environment = 'production' then 'medium'
                    else 'low'
                end
        end as severity
    from measured
),

described as (
    select
        scored.*,
        'runs ' || family || ' ' || asset_version
            || ' (' || coalesce(image_status, 'no release status') || ')' as running_text,
        case
            when current_version is null then 'the family has no current production version'
            else 'current '
                || case when current_basis = 'newest_seen' then 'version (newest seen)' else 'production' end
                || ' is ' || current_version
        end as current_text
    from scored
)

select
    case when drift_type is not null then md5(snapshot_id || '|' || asset_id || '|' || drift_type) end as drift_id,
    snapshot_id,
    snapshot_at,
    site_id,
    provider,
    environment,
    asset_id,
    asset_name,
    kind,
    drift_type,
    severity,
    image_ref,
    image_id,
    family,
    asset_version,
    image_status,
    current_version,
    current_image_id,
    current_basis,
    versions_behind,
    days_behind,
    case drift_type
        when 'image_unknown' then
            case
                when image_ref is null then 'has no image reference, so its image cannot be traced to a golden image'
                else 'runs ' || image_ref || ', which matches no golden image'
            end
        when 'image_revoked' then
            running_text || '; revoked images must be replaced'
            || case when current_version is not null then ', ' || current_text else '' end
        when 'image_testing_in_production' then
            running_text || ' on a production site'
            || case when current_version is not null then '; ' || current_text else '' end
        when 'image_deprecated' then
            running_text || '; ' || current_text
            || case
                when versions_behind is null then ''
                when days_behind is null then ', ' || {{ plural('versions_behind', 'version') }} || ' behind'
                else ', ' || {{ plural('versions_behind', 'version') }} || ' / '
                    || {{ plural('days_behind', 'day') }} || ' behind'
            end
        when 'image_outdated' then
            running_text || '; ' || current_text
            || case
                when days_behind is null then ', ' || {{ plural('versions_behind', 'version') }} || ' behind'
                else ', ' || {{ plural('versions_behind', 'version') }} || ' / '
                    || {{ plural('days_behind', 'day') }} || ' behind'
            end
    end as detail,
    is_latest
from described
