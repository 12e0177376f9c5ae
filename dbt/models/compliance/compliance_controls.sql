-- Compliance controls now: one row per control of every framework of the latest catalog
-- snapshot, with the checks that evidence it.
with controls as (
    select * from {{ lake_source_or_empty('raw_compliance_controls') }} as raw
    qualify snapshot_id = max(snapshot_id) over ()
),

checks as (
    select * from {{ lake_source_or_empty('raw_compliance_checks') }} as raw
    qualify snapshot_id = max(snapshot_id) over ()
)

select
    cast(controls.framework_id as varchar) as framework_id,
    cast(controls.control_id as varchar) as control_id,
    cast(controls.title as varchar) as title,
    cast(controls.description as varchar) as description,
    cast(controls.check_ids as varchar[]) as check_ids,
    len(controls.check_ids) as check_count,
    coalesce((
        select bool_or(checks.blocking) from checks where list_contains(controls.check_ids, checks.check_id)
    ), false) as has_blocking_check,
    cast(controls.position as integer) as position,
    cast(controls.source as varchar) as source,
    cast(controls.catalog_sha256 as varchar) as catalog_sha256,
    cast(controls.snapshot_id as varchar) as catalog_snapshot_id,
    cast(controls.snapshot_at as timestamptz) as catalog_snapshot_at
from controls
