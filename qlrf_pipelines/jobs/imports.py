"""import_supply_chain_job: import one file dropped into QLRF_HOME/inbox/.

The file ends in inbox/imported/ (also when it was a re-import of known content, a no-op) or in
inbox/rejected/ beside a `.error` file that says why; a rejected file fails its run, never others.
"""

import shutil
from pathlib import Path

from dagster import AssetKey, AssetMaterialization, AssetSpec, Config, Failure, MetadataValue, OpExecutionContext, in_process_executor, job, op

from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.supply_chain.landing import land_file
from qlrf_pipelines.supply_chain.records import ImportRejected

IMPORTED_ENTITIES = ("image_vulnerabilities", "image_components", "image_builds", "supply_chain_imports")

# The lake files imports write, as assets of the graph (materialized by import_supply_chain_job).
IMPORTED_LAKE_ASSETS = [
    AssetSpec(
        AssetKey(["lake", f"raw_{entity}"]),
        group_name="images",
        owners=["team:platform"],
        kinds={"parquet"},
        description=f"Imported {entity.replace('_', ' ')}: one lake snapshot per imported file (site=supply-chain).",
    )
    for entity in IMPORTED_ENTITIES
]


def inbox_dir(home: Path) -> Path:
    return home / "inbox"


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():  # a same-named earlier file: keep both
        target = folder / f"{path.stem}.{path.stat().st_mtime_ns}{path.suffix}"
    shutil.move(str(path), target)
    return target


class ImportFileConfig(Config):
    filename: str
    image_ref: str | None = None


@op(description="Parse one inbox file (Trivy, Grype, SPDX, CycloneDX, SLSA) and land it in the lake.")
def import_inbox_file(context: OpExecutionContext, config: ImportFileConfig, estate: EstateResource):
    inbox = inbox_dir(estate.paths.home)
    path = inbox / config.filename
    if not path.is_file():
        context.log.info(f"{config.filename} is no longer in the inbox (already handled)")
        return
    try:
        landed = land_file(estate.paths.lake_dir, path, image_ref=config.image_ref)
    except ImportRejected as exc:
        moved = _move(path, inbox / "rejected")
        moved.with_name(moved.name + ".error").write_text(str(exc) + "\n")
        raise Failure(f"{config.filename} rejected: {exc}", metadata={"moved_to": MetadataValue.path(str(moved))})
    moved = _move(path, inbox / "imported")
    if landed.duplicate:
        context.log.info(f"{config.filename}: same content already imported ({landed.import_id[:12]}), nothing to do")
        return
    for entity in IMPORTED_ENTITIES:
        context.log_event(
            AssetMaterialization(
                asset_key=AssetKey(["lake", f"raw_{entity}"]),
                metadata={"import_id": landed.import_id, "image_ref": landed.image_ref, "file": config.filename},
            )
        )
    context.add_output_metadata(
        {
            "format": landed.format,
            "image_ref": landed.image_ref,
            "vulnerabilities": MetadataValue.int(landed.vulnerabilities),
            "components": MetadataValue.int(landed.components),
            "builds": MetadataValue.int(landed.builds),
            "moved_to": MetadataValue.path(str(moved)),
        }
    )


@job(
    description="Import a scanner report, SBOM or provenance file from the inbox into the lake.",
    tags={"domain": "images"},
    executor_def=in_process_executor,
)
def import_supply_chain_job():
    import_inbox_file()
