-- Every imported build provenance statement (SLSA), one row per statement subject; provenance is
-- history, so nothing here is replaced by a later import.
select
    builds.image_ref,
    images.image_id,
    builds.builder_id,
    builds.build_type,
    builds.source_repo,
    builds.source_ref,
    builds.source_commit,
    builds.materials_json,
    builds.invocation_id,
    builds.started_on,
    builds.finished_on,
    builds.predicate_type,
    builds.subject_name,
    builds.import_id,
    builds.imported_at
from {{ lake_source_or_empty('raw_image_builds') }} as builds
left join {{ ref('int_supply_chain_image_ids') }} as images on images.image_ref = builds.image_ref
