"""CycloneDX 1.4 / 1.5 / 1.6 JSON SBOMs, schema-validated and parsed with cyclonedx-python-lib."""

from __future__ import annotations

import warnings

from cyclonedx.exception import MissingOptionalDependencyException
from cyclonedx.model import HashAlgorithm
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonValidator

from qlrf_pipelines.supply_chain._common import ImageIdentity, dedupe
from qlrf_pipelines.supply_chain.records import ComponentRecord, ImportRejected, normalize_digest

_DIGEST_PROPERTIES = ("aquasecurity:trivy:RepoDigest", "syft:image:manifestDigest")
_IMAGE_ID_PROPERTIES = ("aquasecurity:trivy:ImageID",)


def load(doc: dict, text: str, spec_version: str) -> tuple[Bom, list[str]]:
    """Validate against the CycloneDX JSON schema of ``spec_version`` and deserialize."""
    notes: list[str] = []
    try:
        error = JsonValidator(SchemaVersion.from_version(spec_version)).validate_str(text)
    except MissingOptionalDependencyException:
        error = None
        notes.append("CycloneDX JSON schema validation skipped: jsonschema is not installed")
    if error is not None:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "schema violation"
        raise ImportRejected(f"CycloneDX {spec_version} document fails schema validation: {first[:500]}")
    try:
        with warnings.catch_warnings():
            # deprecation notices for fields the producer used (e.g. metadata.tools as a list)
            warnings.simplefilter("ignore")
            bom = Bom.from_json(doc)  # type: ignore[attr-defined]
    except Exception as exc:  # the library raises a variety of errors on bad input
        raise ImportRejected(f"invalid CycloneDX document: {type(exc).__name__}: {exc}"[:800]) from None
    return bom, notes


def _purl(c: Component) -> str | None:
    return c.purl.to_string() if c.purl is not None else None


def find_image(bom: Bom) -> ImageIdentity:
    c = bom.metadata.component if bom.metadata else None
    if c is None:
        return ImageIdentity(None)
    purl = _purl(c)
    props = {p.name: p.value for p in c.properties}
    digest = normalize_digest(c.version)
    if not digest and c.purl is not None and c.purl.type == "oci":
        digest = normalize_digest(c.purl.version)
    if not digest:
        digest = next((normalize_digest(h.content) for h in c.hashes if h.alg == HashAlgorithm.SHA_256), None)
    if not digest:
        digest = next((normalize_digest(props[k]) for k in _DIGEST_PROPERTIES if normalize_digest(props.get(k))), None)
    name_ver = f"{c.name}:{c.version}" if c.version and not normalize_digest(c.version) else c.name
    image_id = next((props[k] for k in _IMAGE_ID_PROPERTIES if props.get(k)), None)
    aliases = dedupe([c.name, name_ver, purl, str(c.bom_ref.value) if c.bom_ref.value else None, image_id,
                      *[props[k] for k in _DIGEST_PROPERTIES if props.get(k)]])
    if digest:
        ref = digest
    elif image_id:
        ref = image_id
    elif c.type == ComponentType.CONTAINER:
        ref = name_ver
    else:
        return ImageIdentity(None, aliases)
    return ImageIdentity(ref, [a for a in aliases if a != ref])


def _licenses(c: Component) -> list[str]:
    out: list[str] = []
    for lic in c.licenses:
        if isinstance(lic, LicenseExpression):
            out.append(lic.value)
        elif isinstance(lic, DisjunctiveLicense):
            if lic.id or lic.name:
                out.append(lic.id or lic.name)
    return out


def _supplier(c: Component) -> str | None:
    if c.supplier is not None and c.supplier.name:
        return c.supplier.name
    if c.manufacturer is not None and c.manufacturer.name:
        return c.manufacturer.name
    return c.publisher or None


def _walk(components) -> list[Component]:
    out: list[Component] = []
    for c in components:
        out.append(c)
        out.extend(_walk(c.components))
    return out


def parse(bom: Bom, image_ref: str) -> list[ComponentRecord]:
    meta = bom.metadata.component if bom.metadata else None
    doc_name = meta.name if meta is not None else (str(bom.serial_number) if bom.serial_number else None)
    return [
        ComponentRecord(
            image_ref=image_ref,
            name=f"{c.group}/{c.name}" if c.group else c.name,
            version=c.version,
            purl=_purl(c),
            licenses=_licenses(c),
            supplier=_supplier(c),
            component_type=c.type.value if c.type else None,
            source="cyclonedx",
            document_name=doc_name,
        )
        for c in _walk(bom.components)
    ]
