-- The drift rule set in force: every rule (enabled or not) of the newest rule-set snapshot the
-- lake holds (qlrf_pipelines/drift/landing.py lands one only when the rules changed). Empty
-- before the first landing, so a warehouse built from discovery alone has no config drift.
with source as (
    select * from {{ lake_source_or_empty('raw_drift_rules') }} as raw
),

typed as (
    select
        cast(snapshot_id as varchar) as snapshot_id,
        cast(snapshot_at as timestamptz) as snapshot_at,
        cast(rule_set_sha256 as varchar) as rule_set_sha256,
        cast(rule_id as varchar) as rule_id,
        cast(rule_sha256 as varchar) as rule_sha256,
        cast(description as varchar) as description,
        cast(severity as varchar) as severity,
        cast(enabled as boolean) as enabled,
        cast(source as varchar) as source,
        cast(check_type as varchar) as check_type,
        cast(check_json as varchar) as check_json,
        coalesce(cast(scope_providers as varchar[]), []) as scope_providers,
        coalesce(cast(scope_sites as varchar[]), []) as scope_sites,
        coalesce(cast(scope_environments as varchar[]), []) as scope_environments,
        coalesce(cast(scope_kinds as varchar[]), []) as scope_kinds,
        coalesce(cast(scope_tags as struct(key varchar, value varchar)[]), []) as scope_tags,
        cast(required_tags as struct(key varchar, allowed varchar[])[]) as required_tags,
        cast(optional_tags as struct(key varchar, allowed varchar[])[]) as optional_tags,
        cast(instance_type_patterns as varchar[]) as instance_type_patterns,
        cast(instance_type_regexes as varchar[]) as instance_type_regexes,
        cast(minimum_encryption as varchar) as minimum_encryption,
        cast(os_releases as struct(match varchar, regex varchar, end_of_life date)[]) as os_releases
    from source
)

select *
from typed
qualify snapshot_id = max(snapshot_id) over ()
