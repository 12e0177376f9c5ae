"""``parse_file``: one scanner report / SBOM / provenance file -> ImportResult, or ImportRejected.

* The file is read once (size-capped: a file over ``max_bytes`` is rejected without parsing) and
  its sha256 is the content hash the caller keys re-imports on (same bytes -> same hash -> no-op).
* The format is detected from content (see ``detect``), then parsed. Nothing partial is returned:
  any problem rejects the whole file with a reason naming it.
* The image the file belongs to: an explicit ``image_ref`` wins; else what the document says
  (Trivy RepoDigests/ImageID/ArtifactName, Grype source.target, the SPDX container/described
  package, CycloneDX metadata.component, the SLSA subject digest); else the file is rejected.
* String values longer than ``max_field_chars`` are truncated with a warning, not rejected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlrf_pipelines.supply_chain import cyclonedx, grype, slsa, spdx, trivy
from qlrf_pipelines.supply_chain._common import ImageIdentity
from qlrf_pipelines.supply_chain.detect import detect_document
from qlrf_pipelines.supply_chain.records import ImportRejected, ImportResult, normalize_digest

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_FIELD_CHARS = 4096
NO_IMAGE_REASON = "cannot tell which image this file belongs to; pass --image"
TRUNCATION_MARK = "…[truncated]"


def _read(source: str | os.PathLike | bytes, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise ImportRejected(f"file is {size} bytes, over the {max_bytes}-byte limit")
            with path.open("rb") as fh:
                data = fh.read(max_bytes + 1)  # the file may have grown since stat()
        except OSError as exc:
            raise ImportRejected(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ImportRejected(f"file is over the {max_bytes}-byte limit")
    return data


def _cap_strings(records: list[Any], cap: int, kind: str, key_field: str, warnings: list[str]) -> list[Any]:
    """Truncate over-long string values (also inside lists / material dicts) in the records."""

    def cap_value(value: Any, label: str, hits: list[str]) -> Any:
        if isinstance(value, str) and len(value) > cap:
            hits.append(label)
            return value[:cap] + TRUNCATION_MARK
        if isinstance(value, list):
            return [cap_value(v, label, hits) for v in value]
        if isinstance(value, dict):
            return {k: cap_value(v, label, hits) for k, v in value.items()}
        return value

    out = []
    for rec in records:
        hits: list[str] = []
        changes = {f.name: cap_value(getattr(rec, f.name), f.name, hits) for f in dataclasses.fields(rec)}
        if hits:
            key = str(getattr(rec, key_field))[:80]
            warnings.append(
                f"{kind} {key}: {', '.join(sorted(set(hits)))} longer than {cap} characters, truncated"
            )
            rec = dataclasses.replace(rec, **changes)
        out.append(rec)
    return out


def _resolve_image(explicit: str | None, found: ImageIdentity) -> tuple[str, list[str]]:
    if explicit:
        explicit = explicit.strip()
        ref = normalize_digest(explicit) if explicit.lower().startswith("sha256:") else None
        ref = ref or explicit
        aliases = [a for a in ([found.ref] if found.ref else []) + found.aliases if a != ref]
        return ref, aliases
    if not found.ref:
        raise ImportRejected(NO_IMAGE_REASON)
    return found.ref, list(found.aliases)


def _parse(data: bytes, image_ref: str | None, max_field_chars: int) -> ImportResult:
    detected = detect_document(data)
    doc, fmt = detected.document, detected.format
    warnings: list[str] = []
    vulns: list = []
    comps: list = []
    builds: list = []
    if fmt == "trivy":
        ref, aliases = _resolve_image(image_ref, trivy.find_image(doc))
        vulns, w, _ = trivy.parse(doc, ref)
        warnings += w
    elif fmt == "grype":
        ref, aliases = _resolve_image(image_ref, grype.find_image(doc))
        vulns, w, _ = grype.parse(doc, ref)
        warnings += w
    elif fmt == "spdx":
        document = spdx.load(doc)
        found, root_ids = spdx.find_image(document)
        ref, aliases = _resolve_image(image_ref, found)
        comps = spdx.parse(document, ref, root_ids)
    elif fmt == "cyclonedx":
        bom, w = cyclonedx.load(doc, detected.text, detected.version)
        warnings += w
        ref, aliases = _resolve_image(image_ref, cyclonedx.find_image(bom))
        comps = cyclonedx.parse(bom, ref)
    elif fmt == "slsa":
        found = slsa.find_image(doc)
        ref, aliases = _resolve_image(image_ref, found)
        builds = slsa.parse(doc, ref if image_ref else None)
        if len(builds) > 1:
            warnings.append(f"provenance has {len(builds)} subjects; one build record per subject")
    else:  # pragma: no cover - detect_document only returns the formats above
        raise ImportRejected(f"no parser for format {fmt!r}")
    if detected.envelope == "dsse":
        warnings.append("DSSE envelope decoded; its signature was NOT verified")

    vulns = _cap_strings(vulns, max_field_chars, "vulnerability", "vulnerability_id", warnings)
    comps = _cap_strings(comps, max_field_chars, "component", "name", warnings)
    builds = _cap_strings(builds, max_field_chars, "build", "builder_id", warnings)
    if len(ref) > max_field_chars:
        raise ImportRejected(f"image reference is longer than {max_field_chars} characters")
    return ImportResult(
        format=fmt,
        format_version=detected.version,
        image_ref=ref,
        content_sha256="",
        image_aliases=[a[:max_field_chars] for a in aliases],
        envelope=detected.envelope,
        vulnerabilities=vulns,
        components=comps,
        builds=builds,
        warnings=warnings,
    )


def parse_file(
    source: str | os.PathLike | bytes,
    filename: str | None = None,
    image_ref: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> ImportResult:
    """Parse one file (a path, or its bytes) into an ImportResult; raise ImportRejected if it
    cannot be imported. ``filename`` names the file in messages (defaults to the path)."""
    if filename is None and not isinstance(source, (bytes, bytearray, memoryview)):
        filename = os.fspath(source)
    try:
        data = _read(source, max_bytes)
        result = _parse(data, image_ref, max_field_chars)
    except ImportRejected as exc:
        raise exc.for_file(filename) from None
    except RecursionError:
        raise ImportRejected("document nests too deeply", filename) from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # A structurally odd document a parser did not anticipate: still a rejection, never a crash.
        raise ImportRejected(f"cannot parse document: {type(exc).__name__}: {exc}"[:500], filename) from None
    result.content_sha256 = hashlib.sha256(data).hexdigest()
    result.filename = filename
    return result


@dataclass
class FileOutcome:
    """What happened to one file of a batch: ``imported``, ``duplicate`` or ``rejected``."""

    filename: str
    status: str
    result: ImportResult | None = None
    reason: str | None = None
    content_sha256: str | None = None


def import_files(
    paths: Iterable[str | os.PathLike],
    image_ref: str | None = None,
    already_imported: Container[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> list[FileOutcome]:
    """Parse several files; a rejected file never stops the others. A file whose content hash is
    in ``already_imported`` (or repeats an earlier file of this batch) is a ``duplicate`` no-op."""
    seen: set[str] = set()
    outcomes: list[FileOutcome] = []
    for p in paths:
        name = os.fspath(p)
        try:
            result = parse_file(p, image_ref=image_ref, max_bytes=max_bytes, max_field_chars=max_field_chars)
        except ImportRejected as exc:
            outcomes.append(FileOutcome(name, "rejected", reason=exc.reason))
            continue
        digest = result.content_sha256
        if digest in already_imported or digest in seen:
            outcomes.append(FileOutcome(name, "duplicate", content_sha256=digest))
            continue
        seen.add(digest)
        outcomes.append(FileOutcome(name, "imported", result=result, content_sha256=digest))
    return outcomes
