"""Trivy JSON report (``trivy image --format json``, SchemaVersion 2)."""

from __future__ import annotations

from typing import Any

from qlrf_pipelines.supply_chain._common import ImageIdentity, arr, dedupe, obj, text
from qlrf_pipelines.supply_chain.records import (
    ImportRejected,
    VulnerabilityRecord,
    normalize_digest,
    normalize_severity,
)

# ArtifactTypes whose ArtifactName names an image (container image or VM image such as ``ami:ami-...``)
_IMAGE_ARTIFACT_TYPES = {"container_image", "vm", None}


def find_image(doc: dict) -> ImageIdentity:
    meta = obj(doc.get("Metadata"), "Metadata")
    artifact_type = text(doc.get("ArtifactType"))
    name = text(doc.get("ArtifactName"))
    repo_digests = [d for d in arr(meta.get("RepoDigests"), "Metadata.RepoDigests") if isinstance(d, str)]
    image_id = text(meta.get("ImageID"))
    digest = next((normalize_digest(d) for d in repo_digests if normalize_digest(d)), None)
    aliases = dedupe([name, *repo_digests, image_id, *[t for t in arr(meta.get("RepoTags"), "Metadata.RepoTags") if isinstance(t, str)]])
    if digest:
        return ImageIdentity(digest, [a for a in aliases if a != digest])
    if image_id:
        return ImageIdentity(image_id, [a for a in aliases if a != image_id])
    if name and artifact_type in _IMAGE_ARTIFACT_TYPES:
        ref = name.split(":", 1)[1] if artifact_type == "vm" and name.startswith(("ami:", "ebs:")) else name
        return ImageIdentity(ref, [a for a in aliases if a != ref])
    return ImageIdentity(None, aliases)


def parse(doc: dict, image_ref: str) -> tuple[list[VulnerabilityRecord], list[str], str | None]:
    trivy_meta = doc.get("Trivy")
    version = text(trivy_meta.get("Version")) if isinstance(trivy_meta, dict) else None
    records: list[VulnerabilityRecord] = []
    warnings: list[str] = []
    for i, result in enumerate(arr(doc.get("Results"), "Results")):
        result = obj(result, f"Results[{i}]")
        target = text(result.get("Target"))
        pkg_type = text(result.get("Type"))
        for j, v in enumerate(arr(result.get("Vulnerabilities"), f"Results[{i}].Vulnerabilities")):
            where = f"Results[{i}].Vulnerabilities[{j}]"
            v = obj(v, where)
            vuln_id = text(v.get("VulnerabilityID"))
            pkg = text(v.get("PkgName"))
            if not vuln_id or not pkg:
                raise ImportRejected(f"{where} has no VulnerabilityID or PkgName")
            ident: Any = v.get("PkgIdentifier")
            purl = text(ident.get("PURL")) if isinstance(ident, dict) else None
            records.append(
                VulnerabilityRecord(
                    image_ref=image_ref,
                    vulnerability_id=vuln_id,
                    severity=normalize_severity(v.get("Severity")),
                    package_name=pkg,
                    package_type=pkg_type,
                    installed_version=text(v.get("InstalledVersion")),
                    fixed_version=text(v.get("FixedVersion")),
                    purl=purl,
                    title=text(v.get("Title")),
                    source="trivy",
                    source_version=version,
                    target=target,
                    fix_state=text(v.get("Status")),
                )
            )
    return records, warnings, version
