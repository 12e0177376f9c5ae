{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'image_vulnerabilities'}}}) }}
-- No production golden image carries a critical vulnerability that has a fix and has been known
-- (first seen) for longer than `critical_cve_max_age_days` days (dbt var, default 7): the patch
-- window for critical fixable CVEs. One row per (image, CVE, package) out of its window.
select
    vulns.image_id,
    vulns.vulnerability_id,
    vulns.package_name,
    vulns.installed_version,
    vulns.fixed_version,
    vulns.first_seen,
    date_diff('day', vulns.first_seen, now()) as days_known
from {{ ref('image_vulnerabilities') }} as vulns
join {{ ref('golden_images') }} as golden on golden.image_id = vulns.image_id
where golden.status = 'production'
  and vulns.severity = 'critical'
  and vulns.is_fixable
  and vulns.first_seen < now() - to_days(cast({{ var('critical_cve_max_age_days', 7) }} as integer))
