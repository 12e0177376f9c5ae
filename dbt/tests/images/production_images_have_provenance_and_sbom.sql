{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'golden_images'}}}) }}
-- Every production golden image has imported build provenance (SLSA) and an SBOM (SPDX or
-- CycloneDX): a release nobody can trace to its source or list the contents of should not run in
-- production. One row per production image missing either, saying which.
with provenance as (
    select distinct image_id from {{ ref('image_builds') }} where image_id is not null
),

sbom as (
    select distinct image_id from {{ ref('image_components') }} where image_id is not null
)

select
    golden.image_id,
    provenance.image_id is not null as has_provenance,
    sbom.image_id is not null as has_sbom
from {{ ref('golden_images') }} as golden
left join provenance on provenance.image_id = golden.image_id
left join sbom on sbom.image_id = golden.image_id
where golden.status = 'production'
  and (provenance.image_id is null or sbom.image_id is null)
