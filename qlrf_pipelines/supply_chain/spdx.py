"""SPDX 2.2 / 2.3 JSON SBOMs, parsed and validated with spdx-tools."""

from __future__ import annotations

import logging

from spdx_tools.spdx.model import Document, Package, PackagePurpose, RelationshipType
from spdx_tools.spdx.model.checksum import ChecksumAlgorithm
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.model.spdx_none import SpdxNone
from spdx_tools.spdx.parser.error import SPDXParsingError
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from qlrf_pipelines.supply_chain._common import ImageIdentity, dedupe
from qlrf_pipelines.supply_chain.records import ComponentRecord, ImportRejected, normalize_digest

_MAX_MESSAGES = 5


def _messages(msgs: list[str]) -> str:
    shown = "; ".join(msgs[:_MAX_MESSAGES])
    more = f" (and {len(msgs) - _MAX_MESSAGES} more)" if len(msgs) > _MAX_MESSAGES else ""
    return shown + more


def load(doc: dict) -> Document:
    """spdx-tools Document from the parsed JSON, validated; ImportRejected with the messages."""
    logging.getLogger("spdx_tools").setLevel(logging.ERROR)
    try:
        document = JsonLikeDictParser().parse(doc)
    except SPDXParsingError as exc:
        raise ImportRejected(f"invalid SPDX document: {_messages(exc.get_messages())}") from None
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise ImportRejected(f"invalid SPDX document: {exc}") from None
    problems = validate_full_spdx_document(document)
    if problems:
        raise ImportRejected(
            f"SPDX document fails validation: {_messages([p.validation_message for p in problems])}"
        )
    return document


def _purl(pkg: Package) -> str | None:
    for ref in pkg.external_references:
        if ref.reference_type == "purl":
            return ref.locator
    return None


def _image_packages(document: Document) -> list[Package]:
    """The package(s) that are the image: primaryPackagePurpose CONTAINER, else what the document
    DESCRIBES (documentDescribes is turned into DESCRIBES relationships by spdx-tools)."""
    containers = [p for p in document.packages if p.primary_package_purpose == PackagePurpose.CONTAINER]
    if containers:
        return containers
    doc_id = document.creation_info.spdx_id
    described = {
        r.related_spdx_element_id
        for r in document.relationships
        if r.spdx_element_id == doc_id and r.relationship_type == RelationshipType.DESCRIBES
    } | {
        r.spdx_element_id
        for r in document.relationships
        if r.related_spdx_element_id == doc_id and r.relationship_type == RelationshipType.DESCRIBED_BY
    }
    return [p for p in document.packages if p.spdx_id in described]


def _package_digest(pkg: Package) -> str | None:
    for c in pkg.checksums:
        if c.algorithm == ChecksumAlgorithm.SHA256:
            return normalize_digest(c.value)
    purl = _purl(pkg)
    if purl and purl.startswith("pkg:oci/") and "@" in purl:
        d = normalize_digest(purl.split("@", 1)[1].split("?", 1)[0])
        if d:
            return d
    return normalize_digest(pkg.version)


def find_image(document: Document) -> tuple[ImageIdentity, set[str]]:
    roots = _image_packages(document)
    for pkg in roots:
        digest = _package_digest(pkg)
        is_container = pkg.primary_package_purpose == PackagePurpose.CONTAINER
        if digest or is_container:
            name_ver = f"{pkg.name}:{pkg.version}" if pkg.version and not normalize_digest(pkg.version) else pkg.name
            ref = digest or name_ver
            aliases = dedupe([pkg.name, name_ver, _purl(pkg), digest])
            return ImageIdentity(ref, [a for a in aliases if a != ref]), {p.spdx_id for p in roots}
    return ImageIdentity(None, [p.name for p in roots]), set()


def _license(pkg: Package) -> list[str]:
    for value in (pkg.license_declared, pkg.license_concluded):
        if value is None or isinstance(value, (SpdxNoAssertion, SpdxNone)):
            continue
        return [str(value)]
    return []


def _supplier(pkg: Package) -> str | None:
    actor = pkg.supplier
    if actor is None or isinstance(actor, SpdxNoAssertion):
        return None
    return actor.name


def parse(document: Document, image_ref: str, skip_ids: set[str]) -> list[ComponentRecord]:
    return [
        ComponentRecord(
            image_ref=image_ref,
            name=pkg.name,
            version=pkg.version,
            purl=_purl(pkg),
            licenses=_license(pkg),
            supplier=_supplier(pkg),
            component_type=pkg.primary_package_purpose.name.lower().replace("_", "-")
            if pkg.primary_package_purpose
            else None,
            source="spdx",
            document_name=document.creation_info.name,
        )
        for pkg in document.packages
        if pkg.spdx_id not in skip_ids
    ]
