{#
  Compliance now: the newest evidence of every (framework, control, check) of the latest
  evaluation run, with the control's rolled-up status (worst of its checks: fail, error,
  not_assessed, waived, pass). A view, so it follows each evaluation without a rebuild.
#}
{{ config(materialized='view') }}

with evidence as (
    select * from {{ ref('control_evidence').include(database=False) }}
),

latest_run as (
    select max(evaluated_at) as evaluated_at from evidence
),

current_rows as (
    select evidence.*
    from evidence
    join latest_run on evidence.evaluated_at = latest_run.evaluated_at
),

ranked as (
    select
        current_rows.*,
        min(case status
            when 'fail' then 1 when 'error' then 2 when 'not_assessed' then 3 when 'waived' then 4 else 5
        end) over (partition by framework_id, control_id) as control_rank
    from current_rows
)

select
    ranked.framework_id,
    frameworks.title as framework_title,
    ranked.control_id,
    controls.title as control_title,
    case control_rank
        when 1 then 'fail' when 2 then 'error' when 3 then 'not_assessed' when 4 then 'waived' else 'pass'
    end as control_status,
    ranked.check_id,
    ranked.status as check_status,
    coalesce(try_cast(json_extract_string(ranked.check_definition, '$.blocking') as boolean), false) as blocking,
    ranked.checked_count,
    ranked.failing_count,
    ranked.waived_count,
    ranked.failing_asset_ids,
    ranked.waiver_ids,
    ranked.error,
    ranked.evaluated_at,
    ranked.run_id,
    ranked.evidence_id,
    ranked.sha256
from ranked
left join {{ ref('compliance_frameworks').include(database=False) }} as frameworks on frameworks.framework_id = ranked.framework_id
left join {{ ref('compliance_controls').include(database=False) }} as controls
    on controls.framework_id = ranked.framework_id and controls.control_id = ranked.control_id
