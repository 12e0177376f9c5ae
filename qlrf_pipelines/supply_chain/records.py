"""Plain records produced by the supply-chain importers.

These are what the warehouse tables are built from:
``image_vulnerabilities`` <- VulnerabilityRecord, ``image_components`` <- ComponentRecord,
``image_builds`` <- BuildRecord. ``image_ref`` is the image the file belongs to: a manifest digest
(``sha256:<hex>``) when the document carries one, else a provider image id / image name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")

_SEVERITY_ALIASES = {
    "critical": "critical",
    "high": "high",
    "important": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "negligible": "negligible",
    "info": "negligible",
    "informational": "negligible",
    "minimal": "negligible",
}

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class ImportRejected(ValueError):
    """A file that cannot be imported. ``reason`` says why; ``filename`` which file."""

    def __init__(self, reason: str, filename: str | None = None):
        self.reason = reason
        self.filename = filename
        super().__init__(f"{filename}: {reason}" if filename else reason)

    def for_file(self, filename: str | None) -> "ImportRejected":
        if filename and not self.filename:
            return ImportRejected(self.reason, filename)
        return self


def normalize_severity(value: Any) -> str:
    if not isinstance(value, str):
        return "unknown"
    return _SEVERITY_ALIASES.get(value.strip().lower(), "unknown")


def normalize_digest(value: Any) -> str | None:
    """``sha256:<64 lowercase hex>`` from ``sha256:HEX``, ``sha256%3AHEX``, ``repo@sha256:HEX``
    or a bare 64-hex string; None if ``value`` is not a sha256 digest."""
    if not isinstance(value, str):
        return None
    v = value.strip().replace("%3A", ":").replace("%3a", ":")
    if "@" in v:
        v = v.rsplit("@", 1)[1]
    if _HEX64_RE.match(v):
        v = "sha256:" + v
    if v.lower().startswith("sha256:"):
        v = v.lower()
    return v if _DIGEST_RE.match(v) else None


@dataclass
class VulnerabilityRecord:
    image_ref: str
    vulnerability_id: str
    severity: str
    package_name: str
    package_type: str | None
    installed_version: str | None
    fixed_version: str | None  # None when no fix is available
    purl: str | None
    title: str | None
    source: str  # "trivy" | "grype"
    source_version: str | None
    target: str | None  # scan target / path inside the image where the package was found
    fix_state: str | None = None  # scanner's own word: fixed, not-fixed, wont-fix, affected, ...


@dataclass
class ComponentRecord:
    image_ref: str
    name: str
    version: str | None
    purl: str | None
    licenses: list[str]
    supplier: str | None
    component_type: str | None
    source: str  # "spdx" | "cyclonedx"
    document_name: str | None


@dataclass
class BuildRecord:
    image_ref: str
    builder_id: str
    build_type: str
    source_repo: str | None
    source_ref: str | None
    source_commit: str | None
    materials: list[dict[str, Any]]  # [{"uri": str, "digest": {alg: value}}]
    invocation_id: str | None
    started_on: str | None
    finished_on: str | None
    predicate_type: str
    subject_name: str | None = None
    subject_digest: str | None = None


@dataclass
class ImportResult:
    format: str  # trivy | grype | spdx | cyclonedx | slsa
    format_version: str
    image_ref: str
    content_sha256: str
    filename: str | None = None
    image_aliases: list[str] = field(default_factory=list)  # other names the document gives the image
    envelope: str | None = None  # "dsse" when the statement came wrapped in a DSSE envelope
    vulnerabilities: list[VulnerabilityRecord] = field(default_factory=list)
    components: list[ComponentRecord] = field(default_factory=list)
    builds: list[BuildRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
