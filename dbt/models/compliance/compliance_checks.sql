-- Compliance checks now: one row per check of the latest catalog snapshot, with its definition
-- (the same JSON and digest every evidence row of the check records).
with checks as (
    select * from {{ lake_source_or_empty('raw_compliance_checks') }} as raw
    qualify snapshot_id = max(snapshot_id) over ()
)

select
    cast(check_id as varchar) as check_id,
    cast(title as varchar) as title,
    cast(description as varchar) as description,
    cast(kind as varchar) as kind,
    cast(asset as varchar) as asset,
    cast(blocking as boolean) as blocking,
    cast(check_sha256 as varchar) as check_sha256,
    cast(check_definition as varchar) as check_definition,
    cast(source as varchar) as source,
    cast(catalog_sha256 as varchar) as catalog_sha256,
    cast(snapshot_id as varchar) as catalog_snapshot_id,
    cast(snapshot_at as timestamptz) as catalog_snapshot_at
from checks
