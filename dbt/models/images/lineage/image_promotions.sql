-- Every golden image status change made with `qlrf images promote`, from the latest control
-- snapshot, in the order they were made; is_latest marks each image's newest promotion, which is
-- its status (overriding what its provider tags say).
with source as (
    select * from {{ lake_source_or_empty('raw_image_promotions') }} as raw
),

latest as (
    select * from source
    where snapshot_id = (select max(snapshot_id) from source)
)

select
    cast(promotion_id as bigint) as promotion_id,
    cast(image_id as varchar) as image_id,
    cast(from_status as varchar) as from_status,
    cast(to_status as varchar) as to_status,
    cast(promoted_by as varchar) as promoted_by,
    cast(reason as varchar) as reason,
    cast(promoted_at as timestamptz) as promoted_at,
    cast(cascade_from as bigint) as cascade_from,
    row_number() over (partition by image_id order by promotion_id desc) = 1 as is_latest,
    cast(snapshot_id as varchar) as control_snapshot_id
from latest
