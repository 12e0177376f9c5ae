-- Image drift now: the drift items of the latest snapshot of every site.
select
    drift_id,
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
    versions_behind,
    days_behind,
    detail
from {{ ref('int_drift_assessments') }}
where is_latest
  and drift_type is not null
