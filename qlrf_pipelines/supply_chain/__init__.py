"""Import of scanner reports and supply-chain documents for golden images.

Pure parsing: no Dagster, no database, no network. ``parse_file`` turns one file (Trivy or Grype
JSON vulnerability report, SPDX 2.2/2.3 JSON or CycloneDX 1.4-1.6 JSON SBOM, SLSA v1 provenance
in an in-toto v1 statement, optionally inside a DSSE envelope) into an ``ImportResult`` of plain
records, or raises ``ImportRejected`` with a reason. Nothing partial is ever returned.
"""

from qlrf_pipelines.supply_chain.detect import detect_format
from qlrf_pipelines.supply_chain.importer import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FIELD_CHARS,
    FileOutcome,
    import_files,
    parse_file,
)
from qlrf_pipelines.supply_chain.records import (
    BuildRecord,
    ComponentRecord,
    ImportRejected,
    ImportResult,
    VulnerabilityRecord,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FIELD_CHARS",
    "BuildRecord",
    "ComponentRecord",
    "FileOutcome",
    "ImportRejected",
    "ImportResult",
    "VulnerabilityRecord",
    "detect_format",
    "import_files",
    "parse_file",
]
