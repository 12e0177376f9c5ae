"""Grype JSON report (``grype -o json``)."""

from __future__ import annotations

from qlrf_pipelines.supply_chain._common import ImageIdentity, arr, dedupe, obj, text
from qlrf_pipelines.supply_chain.records import (
    ImportRejected,
    VulnerabilityRecord,
    normalize_digest,
    normalize_severity,
)


def find_image(doc: dict) -> ImageIdentity:
    source = obj(doc.get("source"), "source")
    target = source.get("target")
    if source.get("type") != "image" or not isinstance(target, dict):
        # directory / file / sbom scans: the target is a path, not an image
        return ImageIdentity(None, dedupe([text(target)] if isinstance(target, str) else []))
    manifest = normalize_digest(target.get("manifestDigest"))
    image_id = text(target.get("imageID"))
    user_input = text(target.get("userInput"))
    repo_digests = [d for d in arr(target.get("repoDigests"), "source.target.repoDigests") if isinstance(d, str)]
    if not manifest:
        manifest = next((normalize_digest(d) for d in repo_digests if normalize_digest(d)), None)
    ref = manifest or image_id or user_input
    aliases = dedupe([user_input, *repo_digests, image_id, manifest])
    return ImageIdentity(ref, [a for a in aliases if a != ref])


def parse(doc: dict, image_ref: str) -> tuple[list[VulnerabilityRecord], list[str], str | None]:
    version = text(obj(doc.get("descriptor"), "descriptor").get("version"))
    records: list[VulnerabilityRecord] = []
    for i, m in enumerate(arr(doc.get("matches"), "matches")):
        where = f"matches[{i}]"
        m = obj(m, where)
        vuln = obj(m.get("vulnerability"), f"{where}.vulnerability")
        art = obj(m.get("artifact"), f"{where}.artifact")
        vuln_id, pkg = text(vuln.get("id")), text(art.get("name"))
        if not vuln_id or not pkg:
            raise ImportRejected(f"{where} has no vulnerability.id or artifact.name")
        fix = obj(vuln.get("fix"), f"{where}.vulnerability.fix")
        state = text(fix.get("state"))
        versions = [v for v in arr(fix.get("versions"), f"{where}.vulnerability.fix.versions") if isinstance(v, str) and v]
        fixed = ", ".join(versions) if versions and state in (None, "fixed") else None
        locations = [loc for loc in arr(art.get("locations"), f"{where}.artifact.locations") if isinstance(loc, dict)]
        records.append(
            VulnerabilityRecord(
                image_ref=image_ref,
                vulnerability_id=vuln_id,
                severity=normalize_severity(vuln.get("severity")),
                package_name=pkg,
                package_type=text(art.get("type")),
                installed_version=text(art.get("version")),
                fixed_version=fixed,
                purl=text(art.get("purl")),
                title=text(vuln.get("description")),
                source="grype",
                source_version=version,
                target=text(locations[0].get("path")) if locations else None,
                fix_state=state,
            )
        )
    return records, [], version
