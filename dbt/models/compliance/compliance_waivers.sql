-- Compliance waivers (`qlrf waivers add`) from the latest control snapshot: every waiver ever
-- added, revoked and expired ones included (each export is a full copy of the control store).
-- `state` is as of the build; which waivers an evaluation applied is recorded in its evidence
-- (control_evidence.waiver_ids), so history never depends on this table.
with source as (
    select * from {{ lake_source_or_empty('raw_compliance_waivers') }} as raw
),

latest as (
    select * from source
    where snapshot_id = (select max(snapshot_id) from source)
)

select
    cast(waiver_id as varchar) as waiver_id,
    cast(control_id as varchar) as control_id,
    cast(framework_id as varchar) as framework_id,
    cast(asset_id as varchar) as asset_id,
    cast(reason as varchar) as reason,
    cast(created_by as varchar) as created_by,
    cast(created_at as timestamptz) as created_at,
    cast(expires_on as date) as expires_on,
    cast(revoked_at as timestamptz) as revoked_at,
    cast(revoked_by as varchar) as revoked_by,
    cast(revoke_reason as varchar) as revoke_reason,
    case
        when revoked_at is not null then 'revoked'
        when cast(expires_on as date) < cast(timezone('UTC', now()) as date) then 'expired'
        else 'active'
    end as state,
    cast(snapshot_id as varchar) as control_snapshot_id,
    cast(snapshot_at as timestamptz) as control_snapshot_at
from latest
