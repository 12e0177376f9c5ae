-- Compliance frameworks now: one row per framework of the latest compliance catalog snapshot
-- (qlrf_pipelines/compliance/landing.py lands one only when the catalog changed).
with frameworks as (
    select * from {{ lake_source_or_empty('raw_compliance_frameworks') }} as raw
    qualify snapshot_id = max(snapshot_id) over ()
),

controls as (
    select * from {{ lake_source_or_empty('raw_compliance_controls') }} as raw
    qualify snapshot_id = max(snapshot_id) over ()
)

select
    cast(frameworks.framework_id as varchar) as framework_id,
    cast(frameworks.title as varchar) as title,
    cast(frameworks.version as varchar) as version,
    cast(frameworks.description as varchar) as description,
    cast(frameworks.url as varchar) as url,
    (select count(*) from controls where controls.framework_id = frameworks.framework_id) as control_count,
    cast(frameworks.source as varchar) as source,
    cast(frameworks.catalog_sha256 as varchar) as catalog_sha256,
    cast(frameworks.snapshot_id as varchar) as catalog_snapshot_id,
    cast(frameworks.snapshot_at as timestamptz) as catalog_snapshot_at
from frameworks
