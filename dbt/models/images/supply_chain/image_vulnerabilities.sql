-- The current vulnerability findings per image and scanner: for each (image_ref, source) only the
-- findings of its latest import, so a re-scan replaces the earlier one (a clean re-scan leaves
-- none). first_seen looks back over every import of the image, whatever the scanner.
with findings as (
    select * from {{ lake_source_or_empty('raw_image_vulnerabilities') }} as raw
),

latest as (
    select import_id, imported_at
    from {{ ref('stg_supply_chain_imports') }}
    where kind = 'vulnerabilities' and is_latest
),

first_seen as (
    select image_ref, vulnerability_id, package_name, min(imported_at) as first_seen
    from findings
    group by image_ref, vulnerability_id, package_name
)

select
    findings.image_ref,
    images.image_id,
    findings.vulnerability_id,
    coalesce(findings.severity, 'unknown') as severity,
    findings.package_name,
    findings.package_type,
    findings.installed_version,
    findings.fixed_version,
    findings.fixed_version is not null as is_fixable,
    findings.fix_state,
    findings.purl,
    findings.title,
    findings.source,
    findings.source_version,
    findings.target,
    first_seen.first_seen,
    latest.imported_at as last_seen,
    findings.import_id
from findings
join latest on latest.import_id = findings.import_id
left join first_seen
    on first_seen.image_ref = findings.image_ref
    and first_seen.vulnerability_id = findings.vulnerability_id
    and first_seen.package_name is not distinct from findings.package_name
left join {{ ref('int_supply_chain_image_ids') }} as images on images.image_ref = findings.image_ref
