{#
  Every compliance evidence row ever written: one per (framework, control, check) per evaluation
  run, append-only and hash-chained (see the compliance overview). A view over the lake, so rows
  written after this build (each refresh evaluates after building) show at once.
#}
{{ config(materialized='view') }}

select
    cast(evidence_id as varchar) as evidence_id,
    cast(framework_id as varchar) as framework_id,
    cast(control_id as varchar) as control_id,
    cast(check_id as varchar) as check_id,
    cast(check_kind as varchar) as check_kind,
    cast(check_sha256 as varchar) as check_sha256,
    cast(check_definition as varchar) as check_definition,
    cast(evaluated_at as timestamptz) as evaluated_at,
    cast(run_id as varchar) as run_id,
    cast(snapshot_ids as varchar) as snapshot_ids,
    cast(lake_files as varchar[]) as lake_files,
    cast(status as varchar) as status,
    cast(checked_count as bigint) as checked_count,
    cast(failing_count as bigint) as failing_count,
    cast(waived_count as bigint) as waived_count,
    cast(failing_asset_ids as varchar[]) as failing_asset_ids,
    cast(waiver_ids as varchar[]) as waiver_ids,
    cast(error as varchar) as error,
    cast(prev_sha256 as varchar) as prev_sha256,
    cast(sha256 as varchar) as sha256,
    cast(snapshot_id as varchar) as evidence_snapshot_id
from {{ lake_source_or_empty('raw_control_evidence') }} as raw
