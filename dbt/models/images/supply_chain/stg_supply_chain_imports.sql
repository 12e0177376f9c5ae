{{ config(schema='staging') }}
-- One row per imported supply-chain file, with every name of its image (the image_ref and its
-- aliases) and whether it is the latest import of its format for that image (a re-scan or a new
-- SBOM replaces the earlier one).
with imports as (
    select *
    from {{ lake_source_or_empty('raw_supply_chain_imports') }} as raw
    qualify row_number() over (partition by import_id order by snapshot_at, snapshot_id) = 1
)

select
    import_id,
    image_ref,
    format,
    format_version,
    case
        when format in ('trivy', 'grype') then 'vulnerabilities'
        when format in ('spdx', 'cyclonedx') then 'sbom'
        when format = 'slsa' then 'provenance'
        else 'other'
    end as kind,
    filename,
    coalesce(image_aliases, []::varchar[]) as image_aliases,
    envelope,
    vulnerability_count,
    component_count,
    build_count,
    coalesce(warnings, []::varchar[]) as warnings,
    imported_at,
    snapshot_id,
    row_number() over (
        partition by image_ref, format order by imported_at desc, snapshot_id desc, import_id desc
    ) = 1 as is_latest
from imports
