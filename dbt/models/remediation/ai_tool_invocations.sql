-- Every tool call planners made while building plans, from the latest control snapshot.
with source as (
    select * from {{ lake_source_or_empty('raw_ai_tool_invocations') }} as raw
),

latest as (
    select * from source
    where snapshot_id = (select max(snapshot_id) from source)
)

select
    cast(invocation_id as bigint) as invocation_id,
    cast(task_id as varchar) as task_id,
    cast(run_id as varchar) as run_id,
    cast(tool as varchar) as tool,
    cast(step as integer) as step,
    cast(arguments_json as varchar) as arguments_json,
    cast(result_size as bigint) as result_size,
    cast(duration_ms as bigint) as duration_ms,
    cast(invoked_at as timestamptz) as invoked_at,
    cast(snapshot_id as varchar) as control_snapshot_id,
    cast(snapshot_at as timestamptz) as control_snapshot_at
from latest
