-- The packages of the latest SBOM per image and SBOM format (spdx, cyclonedx): a new SBOM of the
-- image replaces the earlier one of its format.
with latest as (
    select import_id
    from {{ ref('stg_supply_chain_imports') }}
    where kind = 'sbom' and is_latest
)

select
    components.image_ref,
    images.image_id,
    components.name,
    components.version,
    components.purl,
    coalesce(components.licenses, []::varchar[]) as licenses,
    case
        when len(coalesce(components.licenses, []::varchar[])) = 0 then null
        when len(components.licenses) = 1 then components.licenses[1]
        else array_to_string(
            list_transform(
                components.licenses,
                l -> case when l ilike '% or %' or l ilike '% and %' then '(' || l || ')' else l end
            ),
            ' AND '
        )
    end as license_expression,
    components.supplier,
    components.component_type,
    components.source,
    components.document_name,
    components.import_id,
    components.imported_at
from {{ lake_source_or_empty('raw_image_components') }} as components
join latest on latest.import_id = components.import_id
left join {{ ref('int_supply_chain_image_ids') }} as images on images.image_ref = components.image_ref
