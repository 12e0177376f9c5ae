{#
  The body of v_cve_blast_radius (see that model for what it computes), with a condition on the
  vulnerabilities the walk starts from. The view passes `true`; the DuckDB table macro
  `cve_blast_radius(cve)` created after it passes one CVE, so a lookup walks the lineage from that
  CVE's images only instead of walking every CVE and filtering after (measured at 100k images and
  1M findings: 1.3 s / 320 MB instead of 5 s / 810 MB).
#}
{% macro cve_blast_radius_query(vulnerability_condition) -%}
with recursive vulnerable as (
    select distinct
        vulnerability_id,
        package_name,
        installed_version,
        image_id,
        severity,
        fixed_version
    from {{ ref('image_vulnerabilities').include(database=False) }}
    where image_id is not null
      and ({{ vulnerability_condition }})
),

edges as (
    select parent_image_id, child_image_id from {{ ref('image_lineage').include(database=False) }}
),

carried as (
    select distinct image_id, name, version from {{ ref('image_components').include(database=False) }} where image_id is not null
),

with_sbom as (
    select distinct image_id from carried
),

scanned as (
    select distinct ids.image_id
    from {{ ref('stg_supply_chain_imports').include(database=False) }} as imports
    join {{ ref('int_supply_chain_image_ids').include(database=False) }} as ids on ids.image_ref = imports.image_ref
    where imports.kind = 'vulnerabilities' and imports.is_latest and ids.image_id is not null
),

reach(vulnerability_id, package_name, installed_version, source_image_id, image_id, depth, path, evidence) as (
    select vulnerability_id, package_name, installed_version, image_id, image_id, 0, [image_id], 'scanned'
    from vulnerable
    union all
    select
        reach.vulnerability_id,
        reach.package_name,
        reach.installed_version,
        reach.source_image_id,
        edges.child_image_id,
        reach.depth + 1,
        list_append(reach.path, edges.child_image_id),
        case when carried.image_id is not null then 'sbom' else 'inherited' end
    from reach
    join edges on edges.parent_image_id = reach.image_id
    left join carried
        on carried.image_id = edges.child_image_id
        and carried.name = reach.package_name
        and carried.version is not distinct from reach.installed_version
    left join with_sbom on with_sbom.image_id = edges.child_image_id
    left join scanned on scanned.image_id = edges.child_image_id
    where not list_contains(reach.path, edges.child_image_id)
      and (carried.image_id is not null or (with_sbom.image_id is null and scanned.image_id is null))
),

affected as (
    -- one row per (CVE, package, image): the shortest path, preferring direct evidence
    select *
    from reach
    qualify row_number() over (
        partition by vulnerability_id, package_name, image_id
        order by case evidence when 'scanned' then 0 when 'sbom' then 1 else 2 end, depth, source_image_id
    ) = 1
),

cve as (
    select
        vulnerability_id,
        package_name,
        -- scanners may disagree on severity: the most severe one
        arg_max(severity, case severity when 'critical' then 5 when 'high' then 4 when 'medium' then 3
            when 'low' then 2 when 'negligible' then 1 else 0 end) as severity,
        max(fixed_version) as fixed_version
    from vulnerable
    group by vulnerability_id, package_name
)

select
    affected.vulnerability_id,
    cve.severity,
    affected.package_name,
    affected.installed_version as vulnerable_version,
    cve.fixed_version,
    affected.source_image_id,
    affected.image_id,
    affected.depth,
    affected.path,
    array_to_string(affected.path, ' > ') as path_text,
    affected.evidence,
    golden.status as image_status,
    assets.asset_id,
    assets.name as asset_name,
    assets.site_id,
    assets.provider,
    assets.environment,
    assets.state as asset_state,
    coalesce(lower(assets.environment) in ('production', 'prod'), false) as is_production
from affected
join cve on cve.vulnerability_id = affected.vulnerability_id and cve.package_name = affected.package_name
left join {{ ref('golden_images').include(database=False) }} as golden on golden.image_id = affected.image_id
left join {{ ref('assets').include(database=False) }} as assets
    on assets.image_id = affected.image_id
    and assets.state is distinct from 'terminated'
{%- endmacro %}

{# post-hook of v_cve_blast_radius: `select * from cve_blast_radius('CVE-2024-6387')` #}
{% macro create_cve_blast_radius_macro(relation) -%}
create or replace macro {{ relation.schema }}.cve_blast_radius(cve) as table
{{ cve_blast_radius_query("cve is null or upper(vulnerability_id) = upper(cve)") }}
{%- endmacro %}
