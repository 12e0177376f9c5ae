-- Every v_cve_blast_radius row names its vulnerability, package, start and affected image, with a
-- known evidence value. One pass over the view instead of five column tests, each of which would
-- walk the lineage again (measured: 38 s of an 84 s build at 100k images / 1M findings).
select *
from {{ ref('v_cve_blast_radius') }}
where vulnerability_id is null
   or package_name is null
   or source_image_id is null
   or image_id is null
   or evidence not in ('scanned', 'sbom', 'inherited')
