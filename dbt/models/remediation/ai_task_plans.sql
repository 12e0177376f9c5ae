-- Every plan version of every remediation task, from the latest control snapshot, with the size
-- of each plan (targets, rollout phases) read from its JSON.
with source as (
    select * from {{ lake_source_or_empty('raw_ai_task_plans') }} as raw
),

latest as (
    select * from source
    where snapshot_id = (select max(snapshot_id) from source)
)

select
    cast(task_id as varchar) as task_id,
    cast(version as integer) as version,
    cast(is_current as boolean) as is_current,
    cast(plan_hash as varchar) as plan_hash,
    cast(snapshot_key as varchar) as snapshot_key,
    cast(created_by as varchar) as created_by,
    cast(created_at as timestamptz) as created_at,
    cast(valid as boolean) as valid,
    cast(policy_version as varchar) as policy_version,
    cast(coalesce(json_array_length(cast(plan_json as varchar), '$.targets'), 0) as integer) as target_count,
    cast(coalesce(json_array_length(cast(plan_json as varchar), '$.phases'), 0) as integer) as phase_count,
    cast(verdicts_json as varchar) as verdicts_json,
    cast(plan_json as varchar) as plan_json,
    cast(snapshot_id as varchar) as control_snapshot_id,
    cast(snapshot_at as timestamptz) as control_snapshot_at
from latest
