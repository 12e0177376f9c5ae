{#
  Every failing id of every evidence row, with why it fails and the waiver that accepted it (if
  any), beside the row's framework, control, check and time. A view over the lake, like
  control_evidence.
#}
{{ config(materialized='view') }}

with failures as (
    select * from {{ lake_source_or_empty('raw_control_evidence_failures') }} as raw
),

evidence as (
    select evidence_id, framework_id, control_id, check_id, evaluated_at
    from {{ lake_source_or_empty('raw_control_evidence') }} as raw
)

select
    cast(failures.evidence_id as varchar) as evidence_id,
    cast(evidence.framework_id as varchar) as framework_id,
    cast(evidence.control_id as varchar) as control_id,
    cast(evidence.check_id as varchar) as check_id,
    cast(evidence.evaluated_at as timestamptz) as evaluated_at,
    cast(failures.asset_id as varchar) as asset_id,
    cast(failures.site_id as varchar) as site_id,
    cast(failures.detail as varchar) as detail,
    cast(failures.waiver_id as varchar) as waiver_id,
    failures.waiver_id is not null as is_waived
from failures
left join evidence on evidence.evidence_id = failures.evidence_id
