{{ config(materialized='view') }}
-- One row per image with a vulnerability scan: its current findings counted by severity. A
-- finding both scanners report (same vulnerability, package and installed version) counts once,
-- at the highest severity any of them gives it; an image whose latest scans are clean has zeros.
with scanned as (
    select distinct image_ref
    from {{ ref('stg_supply_chain_imports').include(database=False) }}
    where kind = 'vulnerabilities' and is_latest
),

findings as (
    select
        image_ref,
        vulnerability_id,
        package_name,
        installed_version,
        min(case severity
            when 'critical' then 1 when 'high' then 2 when 'medium' then 3 when 'low' then 4
            when 'negligible' then 5 else 6 end) as severity_rank,
        bool_or(is_fixable) as is_fixable,
        min(first_seen) as first_seen
    from {{ ref('image_vulnerabilities').include(database=False) }}
    group by image_ref, vulnerability_id, package_name, installed_version
)

select
    scanned.image_ref,
    images.image_id,
    count(findings.vulnerability_id) filter (where findings.severity_rank = 1) as critical_count,
    count(findings.vulnerability_id) filter (where findings.severity_rank = 2) as high_count,
    count(findings.vulnerability_id) filter (where findings.severity_rank = 3) as medium_count,
    count(findings.vulnerability_id) filter (where findings.severity_rank = 4) as low_count,
    count(findings.vulnerability_id) filter (where findings.severity_rank > 4) as other_count,
    count(findings.vulnerability_id) as total_count,
    count(findings.vulnerability_id) filter (where findings.is_fixable) as fixable_count,
    count(findings.vulnerability_id) filter (where findings.is_fixable and findings.severity_rank = 1) as fixable_critical_count,
    count(findings.vulnerability_id) filter (where findings.is_fixable and findings.severity_rank = 2) as fixable_high_count,
    min(findings.first_seen) filter (where findings.severity_rank = 1) as oldest_critical_first_seen
from scanned
left join findings on findings.image_ref = scanned.image_ref
left join {{ ref('int_supply_chain_image_ids').include(database=False) }} as images on images.image_ref = scanned.image_ref
group by scanned.image_ref, images.image_id
