{#
  Every drift seen in every site snapshot, judged once. Incremental (delete+insert on
  site_id, snapshot_id): a run judges only the site snapshots not yet observed, image drift
  against the golden image catalog of that run and config drift against the rule set of that
  run, so what a past snapshot was judged to be is never rewritten and drift_items' history
  holds still. `dbt build --full-refresh` re-judges every snapshot against today's catalog and
  rules.

  Rows: one per (snapshot, asset, drift_key) that drifted, plus one marker row per observed site
  snapshot (drift_key and asset_id null, assets_total set), so a snapshot without any drift is
  recorded as observed too and is not judged again by a later run.
#}
{{
    config(
        materialized='incremental',
        unique_key=['site_id', 'snapshot_id'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

with pending as (
    select site_id, snapshot_id, snapshot_at, provider, environment
    from {{ ref('stg_sites') }} as site_snapshots
    {% if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as observed
        where observed.drift_key is null
          and observed.site_id = site_snapshots.site_id
          and observed.snapshot_id = site_snapshots.snapshot_id
    )
    {% endif %}
),

assessed as (
    select assessments.*
    from {{ ref('int_drift_assessments') }} as assessments
    inner join pending
        on assessments.site_id = pending.site_id
       and assessments.snapshot_id = pending.snapshot_id
),

image_drift as (
    select
        site_id,
        snapshot_id,
        snapshot_at,
        provider,
        environment,
        asset_id,
        asset_name,
        kind,
        drift_type as drift_key,
        drift_type,
        cast(null as varchar) as rule_id,
        severity,
        image_ref,
        image_id,
        family,
        asset_version,
        image_status,
        current_version,
        current_image_id,
        versions_behind,
        days_behind,
        case
            when drift_type = 'image_unknown' then 'a golden image'
            when drift_type = 'image_testing_in_production' then coalesce(current_image_id, 'a production image')
            else coalesce(current_image_id, 'a supported version of ' || family)
        end as expected,
        case
            when drift_type = 'image_unknown' then coalesce(image_ref, 'no image reference')
            else image_id || ' (' || coalesce(image_status, 'no release status') || ')'
        end as actual,
        detail,
        cast(null as bigint) as assets_total
    from assessed
    where drift_type is not null
),

{{ config_drift_ctes('pending') }},

config_drift as (
    select
        config.site_id,
        config.snapshot_id,
        config.snapshot_at,
        config.provider,
        config.environment,
        config.asset_id,
        config.asset_name,
        config.kind,
        'config:' || config.rule_id as drift_key,
        'config' as drift_type,
        config.rule_id,
        config.severity,
        cast(null as varchar) as image_ref,
        cast(null as varchar) as image_id,
        cast(null as varchar) as family,
        cast(null as varchar) as asset_version,
        cast(null as varchar) as image_status,
        cast(null as varchar) as current_version,
        cast(null as varchar) as current_image_id,
        cast(null as bigint) as versions_behind,
        cast(null as integer) as days_behind,
        config.expected,
        config.actual,
        config.detail,
        cast(null as bigint) as assets_total
    from config_violations as config
),

snapshot_markers as (
    select
        pending.site_id,
        pending.snapshot_id,
        pending.snapshot_at,
        pending.provider,
        pending.environment,
        cast(null as varchar) as asset_id,
        cast(null as varchar) as asset_name,
        cast(null as varchar) as kind,
        cast(null as varchar) as drift_key,
        cast(null as varchar) as drift_type,
        cast(null as varchar) as rule_id,
        cast(null as varchar) as severity,
        cast(null as varchar) as image_ref,
        cast(null as varchar) as image_id,
        cast(null as varchar) as family,
        cast(null as varchar) as asset_version,
        cast(null as varchar) as image_status,
        cast(null as varchar) as current_version,
        cast(null as varchar) as current_image_id,
        cast(null as bigint) as versions_behind,
        cast(null as integer) as days_behind,
        cast(null as varchar) as expected,
        cast(null as varchar) as actual,
        cast(null as varchar) as detail,
        (
            select count(*)
            from assessed
            where assessed.site_id = pending.site_id
              and assessed.snapshot_id = pending.snapshot_id
        ) as assets_total
    from pending
),

observations as (
    select * from image_drift
    union all by name
    select * from config_drift
    union all by name
    select * from snapshot_markers
)

select
    *,
    now() as observed_at
from observations
