"""Format detection by content (never by file extension).

Accepted:

* Trivy JSON report, ``SchemaVersion`` 2 (``ArtifactName`` + ``Results``).
* Grype JSON report (``matches`` + ``source`` + ``descriptor.name == "grype"``).
* SPDX JSON, ``spdxVersion`` ``SPDX-2.3`` and also ``SPDX-2.2``: spdx-tools parses and validates
  both, and Syft/Trivy/sbom-tool releases still in use emit 2.2. Other versions are rejected.
* CycloneDX JSON, ``specVersion`` 1.4, 1.5 or 1.6. Other versions are rejected.
* in-toto Statement v1 whose ``predicateType`` is SLSA provenance v1, bare or inside a DSSE
  envelope (``payloadType: application/vnd.in-toto+json``). DSSE signatures are NOT verified.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from qlrf_pipelines.supply_chain.records import ImportRejected

SPDX_VERSIONS = ("SPDX-2.2", "SPDX-2.3")
CYCLONEDX_VERSIONS = ("1.4", "1.5", "1.6")
INTOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
DSSE_INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass
class Detected:
    format: str
    version: str
    document: Any  # the parsed JSON (for DSSE: the decoded statement)
    text: str  # the JSON text of ``document``
    envelope: str | None = None


def _load_json(data: bytes, what: str = "file") -> tuple[Any, str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected(f"{what} is not UTF-8 text (byte {exc.start}); expected a JSON document") from None
    if not text.strip():
        raise ImportRejected(f"{what} is empty")
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise ImportRejected(
                f"{what} is truncated: the JSON ends unexpectedly at line {exc.lineno} column {exc.colno}"
            ) from None
        raise ImportRejected(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise ImportRejected(f"{what} nests JSON too deeply to be a scanner or SBOM document") from None


def _unwrap_dsse(doc: dict) -> tuple[Any, str]:
    payload_type = doc.get("payloadType")
    if payload_type != DSSE_INTOTO_PAYLOAD_TYPE:
        raise ImportRejected(
            f"DSSE envelope payloadType {payload_type!r} is not supported (expected {DSSE_INTOTO_PAYLOAD_TYPE!r})"
        )
    payload = doc.get("payload")
    if not isinstance(payload, str) or not payload:
        raise ImportRejected("DSSE envelope has no payload")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        try:  # DSSE allows URL-safe base64 too
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except (binascii.Error, ValueError):
            raise ImportRejected("DSSE envelope payload is not valid base64") from None
    return _load_json(raw, what="DSSE envelope payload")


def _looks_like_dsse(doc: dict) -> bool:
    return "payloadType" in doc and "payload" in doc


def detect_document(data: bytes) -> Detected:
    """Parse ``data`` as JSON and say which supported format it is, or raise ImportRejected."""
    doc, text = _load_json(data)
    envelope = None
    if isinstance(doc, dict) and _looks_like_dsse(doc):
        doc, text = _unwrap_dsse(doc)
        envelope = "dsse"
    if not isinstance(doc, dict):
        raise ImportRejected(
            f"unknown format: top-level JSON is {type(doc).__name__}, expected an object "
            "(Trivy/Grype report, SPDX or CycloneDX SBOM, in-toto SLSA provenance)"
        )

    # in-toto statement (possibly from a DSSE envelope)
    if "_type" in doc or "predicateType" in doc:
        stype, ptype = doc.get("_type"), doc.get("predicateType")
        if stype != INTOTO_STATEMENT_V1:
            raise ImportRejected(
                f"unsupported in-toto statement type {stype!r} (predicate {ptype!r}); "
                f"only {INTOTO_STATEMENT_V1} with SLSA provenance v1 is accepted"
            )
        if ptype != SLSA_PROVENANCE_V1:
            raise ImportRejected(
                f"unsupported in-toto predicateType {ptype!r}; only {SLSA_PROVENANCE_V1} is accepted"
            )
        return Detected("slsa", "1", doc, text, envelope)
    if envelope:
        raise ImportRejected("DSSE envelope payload is not an in-toto statement")

    if "spdxVersion" in doc:
        version = doc.get("spdxVersion")
        if version not in SPDX_VERSIONS:
            raise ImportRejected(
                f"SPDX version {version!r} is not supported (accepted: {', '.join(SPDX_VERSIONS)})"
            )
        return Detected("spdx", version.removeprefix("SPDX-"), doc, text)

    if doc.get("bomFormat") == "CycloneDX":
        version = doc.get("specVersion")
        if version not in CYCLONEDX_VERSIONS:
            raise ImportRejected(
                f"CycloneDX specVersion {version!r} is not supported (accepted: {', '.join(CYCLONEDX_VERSIONS)})"
            )
        return Detected("cyclonedx", version, doc, text)

    if "ArtifactName" in doc and "SchemaVersion" in doc:
        version = doc.get("SchemaVersion")
        if version != 2:
            raise ImportRejected(f"Trivy report SchemaVersion {version!r} is not supported (accepted: 2)")
        if not isinstance(doc.get("Results") or [], list):
            raise ImportRejected("Trivy report 'Results' is not a list")
        return Detected("trivy", "2", doc, text)

    descriptor = doc.get("descriptor")
    if "matches" in doc and isinstance(descriptor, dict) and descriptor.get("name") == "grype":
        if "source" not in doc:
            raise ImportRejected("Grype report has no 'source' section")
        version = descriptor.get("version")
        return Detected("grype", str(version) if version is not None else "unknown", doc, text)

    keys = ", ".join(sorted(map(str, doc))[:8])
    raise ImportRejected(
        "unknown format: not a Trivy (SchemaVersion 2) or Grype JSON report, SPDX 2.2/2.3 or "
        f"CycloneDX 1.4-1.6 JSON SBOM, or in-toto v1 SLSA v1 provenance (top-level keys: {keys or 'none'})"
    )


def detect_format(data: bytes, filename: str | None = None) -> tuple[str, str]:
    """``(format, version)`` of ``data``, judged by content; ``filename`` only names the file in
    the rejection. Raises ImportRejected for malformed, unknown or unsupported-version files."""
    try:
        d = detect_document(data)
    except ImportRejected as exc:
        raise exc.for_file(filename) from None
    return d.format, d.version
