-- Remediation tasks now: one row per task from the latest control snapshot (each export is a full
-- copy of the control store, so the latest snapshot alone is the current state).
with source as (
    select * from {{ lake_source_or_empty('raw_ai_tasks') }} as raw
),

latest as (
    select * from source
    where snapshot_id = (select max(snapshot_id) from source)
)

select
    cast(task_id as varchar) as task_id,
    cast(title as varchar) as title,
    cast(status as varchar) as status,
    cast(requested_by as varchar) as requested_by,
    cast(site_id as varchar) as site_id,
    lower(trim(cast(environment as varchar))) as environment,
    cast(family as varchar) as family,
    cast(risk as varchar) as risk,
    cast(plan_version as integer) as plan_version,
    cast(plan_hash as varchar) as plan_hash,
    cast(plan_valid as boolean) as plan_valid,
    cast(policy_version as varchar) as policy_version,
    cast(approved_by as varchar) as approved_by,
    cast(approved_at as timestamptz) as approved_at,
    cast(approval_expires_at as timestamptz) as approval_expires_at,
    cast(dedupe_key as varchar) as dedupe_key,
    cast(source_run_id as varchar) as source_run_id,
    cast(run_id as varchar) as run_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    cast(started_at as timestamptz) as started_at,
    cast(finished_at as timestamptz) as finished_at,
    cast(snapshot_id as varchar) as control_snapshot_id,
    cast(snapshot_at as timestamptz) as control_snapshot_at
from latest
