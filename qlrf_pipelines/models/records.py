"""Canonical records: the provider-neutral shape of what discovery finds.

Connectors turn provider payloads into these; the lake stores them as typed Parquet; dbt builds
the warehouse contract from them. Plain dataclasses (not pydantic) because a 100k-asset estate
is normalized in one process and validation already happened at the provider's API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping

import pyarrow as pa

from qlrf_pipelines.models.vocabulary import (  # noqa: F401 - re-exported for existing imports
    FAMILY_TAG,
    VERSION_TAG,
    STATUS_TAG,
    GCP_VERSION_LABEL,
    GCP_STATUS_LABEL,
    GCP_FAMILY_LABEL,
    IMAGE_STATUSES,
    PARENT_IMAGE_TAG,
    PARENT_FAMILY_TAG,
    PARENT_VERSION_TAG,
    PARENT_RELATION_TAG,
    GCP_PARENT_FAMILY_LABEL,
    GCP_PARENT_VERSION_LABEL,
    GCP_PARENT_RELATION_LABEL,
    LINEAGE_RELATIONS,
)

ASSET_KINDS = ("vm", "node", "workload", "container")
ASSET_STATES = ("running", "stopped", "pending", "terminated", "degraded", "unknown")


@dataclass(slots=True, frozen=True)
class Tag:
    key: str
    value: str


def tags_from_mapping(mapping: Mapping[str, object] | None) -> list[Tag]:
    if not mapping:
        return []
    return [Tag(str(k), "" if v is None else str(v)) for k, v in sorted(mapping.items())]


@dataclass(slots=True)
class AssetRecord:
    """One running (or stopped) thing: a VM, a Kubernetes node or workload.

    asset_id is stable across snapshots: provider, site and the provider's own id.
    image_ref is the image as the provider names it (AMI id, Azure image resource id in lower
    case, GCP image path `projects/P/global/images/NAME`, vSphere template name, container image
    reference), so it can be matched against ImageRecord.provider_image_id.
    """

    asset_id: str
    site_id: str
    provider: str
    native_id: str
    kind: str
    name: str
    state: str
    discovered_at: datetime
    image_ref: str | None = None
    platform: str | None = None
    os: str | None = None
    instance_type: str | None = None
    cpu_count: int | None = None
    memory_mb: int | None = None
    region: str | None = None
    zone: str | None = None
    network: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    # Weakest at-rest encryption of the asset's disks: "none", "platform_managed" (the provider's
    # keys) or "customer_managed" (keys the customer controls: KMS CMK, disk encryption set, CMEK
    # / CSEK, vSphere VM encryption); None when the provider does not say (or has no disks).
    disk_encryption: str | None = None
    launched_at: datetime | None = None
    tags: list[Tag] = field(default_factory=list)
    attributes_json: str | None = None


@dataclass(slots=True)
class ImageRecord:
    """One provider image artifact (AMI, Azure image / gallery version, GCP image, vSphere
    template, golden container image). family/version/status are set when it is a golden image."""

    provider_image_id: str
    site_id: str
    provider: str
    name: str
    discovered_at: datetime
    family: str | None = None
    version: str | None = None
    version_key: str | None = None
    status: str | None = None
    region: str | None = None
    platform: str | None = None
    os: str | None = None
    created_at: datetime | None = None
    tags: list[Tag] = field(default_factory=list)
    parent_image: str | None = None  # the image this one was built from, as its tags name it
    parent_relation: str | None = None  # one of LINEAGE_RELATIONS when parent_image is set


@dataclass(slots=True)
class Discovery:
    """Everything one site's discovery produced in one pass."""

    assets: list[AssetRecord] = field(default_factory=list)
    images: list[ImageRecord] = field(default_factory=list)


_VERSION_PART = re.compile(r"\d+|[A-Za-z]+")


def version_sort_key(version: str | None) -> str | None:
    """A string that sorts like the version does: '1.10.0' after '1.9.3', 'v2' after 'v1'.

    Numeric parts are zero-padded so SQL can order versions with a plain ORDER BY; alphabetic
    parts sort after numbers of the same position ('1.2.0' < '1.2.rc1' is acceptable for images,
    which carry numeric versions in practice).
    """
    if version is None:
        return None
    parts = _VERSION_PART.findall(version.strip().lstrip("vV"))
    if not parts:
        return version
    return ".".join(p.zfill(10) if p.isdigit() else "~" + p.lower() for p in parts)


_TAG_TYPE = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
_TS = pa.timestamp("us", tz="UTC")

# Columns the lake adds to every file so one file is self-describing.
SNAPSHOT_FIELDS = [
    pa.field("snapshot_id", pa.string(), nullable=False),
    pa.field("snapshot_at", _TS, nullable=False),
]

ASSET_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("native_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("state", pa.string()),
        pa.field("discovered_at", _TS, nullable=False),
        pa.field("image_ref", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("os", pa.string()),
        pa.field("instance_type", pa.string()),
        pa.field("cpu_count", pa.int32()),
        pa.field("memory_mb", pa.int64()),
        pa.field("region", pa.string()),
        pa.field("zone", pa.string()),
        pa.field("network", pa.string()),
        pa.field("private_ip", pa.string()),
        pa.field("public_ip", pa.string()),
        pa.field("disk_encryption", pa.string()),
        pa.field("launched_at", _TS),
        pa.field("tags", _TAG_TYPE),
        pa.field("attributes_json", pa.string()),
    ]
)

IMAGE_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("provider_image_id", pa.string(), nullable=False),
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("discovered_at", _TS, nullable=False),
        pa.field("family", pa.string()),
        pa.field("version", pa.string()),
        pa.field("version_key", pa.string()),
        pa.field("status", pa.string()),
        pa.field("region", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("os", pa.string()),
        pa.field("created_at", _TS),
        pa.field("tags", _TAG_TYPE),
        pa.field("parent_image", pa.string()),
        pa.field("parent_relation", pa.string()),
    ]
)

SITE_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("location", pa.string()),
        pa.field("environment", pa.string()),
        pa.field("account", pa.string()),
        pa.field("endpoint_url", pa.string()),
        pa.field("asset_count", pa.int64()),
        pa.field("image_count", pa.int64()),
    ]
)

# The control store's export (qlrf_pipelines.control_export): remediation tasks, their plan
# versions and the tool calls planners made, landed as one snapshot under site id "control".
# These schemas are an allow-list: only the columns named here reach the lake and the warehouse.
AI_TASK_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("task_id", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("requested_by", pa.string(), nullable=False),
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("environment", pa.string(), nullable=False),
        pa.field("family", pa.string(), nullable=False),
        pa.field("risk", pa.string(), nullable=False),
        pa.field("dedupe_key", pa.string()),
        pa.field("source_run_id", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("plan_version", pa.int32(), nullable=False),
        pa.field("plan_hash", pa.string(), nullable=False),
        pa.field("plan_valid", pa.bool_(), nullable=False),
        pa.field("policy_version", pa.string()),
        pa.field("approved_by", pa.string()),
        pa.field("approved_at", _TS),
        pa.field("approval_expires_at", _TS),
        pa.field("created_at", _TS, nullable=False),
        pa.field("updated_at", _TS, nullable=False),
        pa.field("started_at", _TS),
        pa.field("finished_at", _TS),
    ]
)

AI_TASK_PLAN_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("task_id", pa.string(), nullable=False),
        pa.field("version", pa.int32(), nullable=False),
        pa.field("plan_json", pa.string(), nullable=False),
        pa.field("plan_hash", pa.string(), nullable=False),
        pa.field("snapshot_key", pa.string(), nullable=False),
        pa.field("created_by", pa.string(), nullable=False),
        pa.field("created_at", _TS, nullable=False),
        pa.field("verdicts_json", pa.string(), nullable=False),
        pa.field("policy_version", pa.string(), nullable=False),
        pa.field("valid", pa.bool_(), nullable=False),
        pa.field("is_current", pa.bool_(), nullable=False),
    ]
)

AI_TOOL_INVOCATION_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("invocation_id", pa.int64(), nullable=False),
        pa.field("task_id", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("tool", pa.string(), nullable=False),
        pa.field("arguments_json", pa.string(), nullable=False),
        pa.field("result_size", pa.int64(), nullable=False),
        pa.field("duration_ms", pa.int64(), nullable=False),
        pa.field("step", pa.int32(), nullable=False),
        pa.field("invoked_at", _TS, nullable=False),
    ]
)

# Image lineage people registered (`qlrf images link`), as exported from the control store.
IMAGE_LINEAGE_LINK_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("child_image_id", pa.string(), nullable=False),
        pa.field("parent_image_id", pa.string(), nullable=False),
        pa.field("relation", pa.string(), nullable=False),
        pa.field("linked_by", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("linked_at", _TS, nullable=False),
    ]
)

# Every golden image status change (`qlrf images promote`), as exported from the control store.
IMAGE_PROMOTION_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("promotion_id", pa.int64(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("from_status", pa.string()),
        pa.field("to_status", pa.string(), nullable=False),
        pa.field("promoted_by", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("promoted_at", _TS, nullable=False),
        pa.field("cascade_from", pa.int64()),
    ]
)

# A site whose discovery failed: kept so the warehouse can mark its last good snapshot stale.
DISCOVERY_FAILURE_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("failed_at", _TS, nullable=False),
        pa.field("call", pa.string()),
        pa.field("error", pa.string()),
    ]
)

# Supply-chain imports (scanner reports, SBOMs, provenance), one lake snapshot per imported file
# under site "supply-chain"; import_id is the file's content SHA-256.
_IMPORT_FIELDS = [
    pa.field("import_id", pa.string(), nullable=False),
    pa.field("image_ref", pa.string(), nullable=False),
    pa.field("imported_at", _TS, nullable=False),
]
IMAGE_VULNERABILITY_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + _IMPORT_FIELDS
    + [
        pa.field("vulnerability_id", pa.string(), nullable=False),
        pa.field("severity", pa.string()),
        pa.field("package_name", pa.string()),
        pa.field("package_type", pa.string()),
        pa.field("installed_version", pa.string()),
        pa.field("fixed_version", pa.string()),
        pa.field("fix_state", pa.string()),
        pa.field("purl", pa.string()),
        pa.field("title", pa.string()),
        pa.field("source", pa.string()),
        pa.field("source_version", pa.string()),
        pa.field("target", pa.string()),
    ]
)
IMAGE_COMPONENT_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + _IMPORT_FIELDS
    + [
        pa.field("name", pa.string(), nullable=False),
        pa.field("version", pa.string()),
        pa.field("purl", pa.string()),
        pa.field("licenses", pa.list_(pa.string())),
        pa.field("supplier", pa.string()),
        pa.field("component_type", pa.string()),
        pa.field("source", pa.string()),
        pa.field("document_name", pa.string()),
    ]
)
IMAGE_BUILD_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + _IMPORT_FIELDS
    + [
        pa.field("builder_id", pa.string()),
        pa.field("build_type", pa.string()),
        pa.field("source_repo", pa.string()),
        pa.field("source_ref", pa.string()),
        pa.field("source_commit", pa.string()),
        pa.field("materials_json", pa.string()),
        pa.field("invocation_id", pa.string()),
        pa.field("started_on", _TS),
        pa.field("finished_on", _TS),
        pa.field("predicate_type", pa.string()),
        pa.field("subject_name", pa.string()),
        pa.field("subject_digest", pa.string()),
    ]
)
SUPPLY_CHAIN_IMPORT_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + _IMPORT_FIELDS
    + [
        pa.field("filename", pa.string()),
        pa.field("format", pa.string(), nullable=False),
        pa.field("format_version", pa.string()),
        pa.field("image_aliases", pa.list_(pa.string())),
        pa.field("envelope", pa.string()),
        pa.field("vulnerability_count", pa.int64()),
        pa.field("component_count", pa.int64()),
        pa.field("build_count", pa.int64()),
        pa.field("warnings", pa.list_(pa.string())),
    ]
)

ENTITY_SCHEMAS: dict[str, pa.Schema] = {
    "sites": SITE_SCHEMA,
    "assets": ASSET_SCHEMA,
    "images": IMAGE_SCHEMA,
    "discovery_failures": DISCOVERY_FAILURE_SCHEMA,
    "image_vulnerabilities": IMAGE_VULNERABILITY_SCHEMA,
    "image_components": IMAGE_COMPONENT_SCHEMA,
    "image_builds": IMAGE_BUILD_SCHEMA,
    "supply_chain_imports": SUPPLY_CHAIN_IMPORT_SCHEMA,
    "ai_tasks": AI_TASK_SCHEMA,
    "ai_task_plans": AI_TASK_PLAN_SCHEMA,
    "ai_tool_invocations": AI_TOOL_INVOCATION_SCHEMA,
    "image_lineage_links": IMAGE_LINEAGE_LINK_SCHEMA,
    "image_promotions": IMAGE_PROMOTION_SCHEMA,
}


def records_to_rows(records: Iterable[object]) -> list[dict]:
    """Dataclass records to plain dicts (tags as key/value structs) for Arrow."""
    rows = []
    for record in records:
        row = {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]
        row["tags"] = [{"key": t.key, "value": t.value} for t in row.get("tags") or []]
        rows.append(row)
    return rows


# Desired-state drift rules (qlrf_pipelines.drift), the validated and merged rule set landed under
# site id "config", one snapshot per distinct rule-set digest. Scope and check parameters are
# typed columns so dbt evaluates the rules as data; check parameters a check type does not use
# are null. Tag keys, tag values and globs are lower case (matching is case-insensitive); each glob
# also lands as the RE2 regular expression the warehouse matches with.
_ALLOWED_TAGS_TYPE = pa.list_(pa.struct([("key", pa.string()), ("allowed", pa.list_(pa.string()))]))
DRIFT_RULE_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("rule_set_sha256", pa.string(), nullable=False),
        pa.field("rule_id", pa.string(), nullable=False),
        pa.field("rule_sha256", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("enabled", pa.bool_(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("check_type", pa.string(), nullable=False),
        pa.field("check_json", pa.string(), nullable=False),
        pa.field("scope_providers", pa.list_(pa.string())),
        pa.field("scope_sites", pa.list_(pa.string())),
        pa.field("scope_environments", pa.list_(pa.string())),
        pa.field("scope_kinds", pa.list_(pa.string())),
        pa.field("scope_tags", _TAG_TYPE),
        pa.field("required_tags", _ALLOWED_TAGS_TYPE),
        pa.field("optional_tags", _ALLOWED_TAGS_TYPE),
        pa.field("instance_type_patterns", pa.list_(pa.string())),
        pa.field("instance_type_regexes", pa.list_(pa.string())),
        pa.field("minimum_encryption", pa.string()),
        pa.field(
            "os_releases",
            pa.list_(pa.struct([("match", pa.string()), ("regex", pa.string()), ("end_of_life", pa.date32())])),
        ),
    ]
)
ENTITY_SCHEMAS["drift_rules"] = DRIFT_RULE_SCHEMA


# Compliance waivers (`qlrf waivers add`), as exported from the control store under site id
# "control": every waiver ever added, revoked and expired ones included.
COMPLIANCE_WAIVER_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("waiver_id", pa.string(), nullable=False),
        pa.field("control_id", pa.string(), nullable=False),
        pa.field("framework_id", pa.string()),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("created_by", pa.string(), nullable=False),
        pa.field("created_at", _TS, nullable=False),
        pa.field("expires_on", pa.date32(), nullable=False),
        pa.field("revoked_at", _TS),
        pa.field("revoked_by", pa.string()),
        pa.field("revoke_reason", pa.string()),
    ]
)
ENTITY_SCHEMAS["compliance_waivers"] = COMPLIANCE_WAIVER_SCHEMA


# The compliance catalog (qlrf_pipelines.compliance.catalog), landed under site id "config", one
# snapshot per distinct catalog digest (catalog_sha256); `source` is the file each entry came from.
COMPLIANCE_FRAMEWORK_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("catalog_sha256", pa.string(), nullable=False),
        pa.field("framework_id", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("source", pa.string(), nullable=False),
    ]
)
COMPLIANCE_CONTROL_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("catalog_sha256", pa.string(), nullable=False),
        pa.field("framework_id", pa.string(), nullable=False),
        pa.field("control_id", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("check_ids", pa.list_(pa.string()), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
COMPLIANCE_CHECK_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("catalog_sha256", pa.string(), nullable=False),
        pa.field("check_id", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("asset", pa.string(), nullable=False),
        pa.field("blocking", pa.bool_(), nullable=False),
        pa.field("check_sha256", pa.string(), nullable=False),
        pa.field("check_definition", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
ENTITY_SCHEMAS["compliance_frameworks"] = COMPLIANCE_FRAMEWORK_SCHEMA
ENTITY_SCHEMAS["compliance_controls"] = COMPLIANCE_CONTROL_SCHEMA
ENTITY_SCHEMAS["compliance_checks"] = COMPLIANCE_CHECK_SCHEMA

# Compliance evidence (qlrf_pipelines.compliance.evidence): append-only, one file per evaluation
# run under site id "compliance". Each row's sha256 chains to the previous evidence row of its
# (framework_id, control_id, check_id); see qlrf_pipelines/compliance/chain.py.
CONTROL_EVIDENCE_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("evidence_id", pa.string(), nullable=False),
        pa.field("framework_id", pa.string(), nullable=False),
        pa.field("control_id", pa.string(), nullable=False),
        pa.field("check_id", pa.string(), nullable=False),
        pa.field("check_kind", pa.string(), nullable=False),
        pa.field("check_sha256", pa.string(), nullable=False),
        pa.field("check_definition", pa.string(), nullable=False),
        pa.field("evaluated_at", _TS, nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("snapshot_ids", pa.string(), nullable=False),
        pa.field("lake_files", pa.list_(pa.string()), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("checked_count", pa.int64(), nullable=False),
        pa.field("failing_count", pa.int64(), nullable=False),
        pa.field("waived_count", pa.int64(), nullable=False),
        pa.field("failing_asset_ids", pa.list_(pa.string()), nullable=False),
        pa.field("waiver_ids", pa.list_(pa.string()), nullable=False),
        pa.field("error", pa.string()),
        pa.field("prev_sha256", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
    ]
)
CONTROL_EVIDENCE_FAILURE_SCHEMA = pa.schema(
    SNAPSHOT_FIELDS
    + [
        pa.field("evidence_id", pa.string(), nullable=False),
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("site_id", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("waiver_id", pa.string()),
    ]
)
ENTITY_SCHEMAS["control_evidence"] = CONTROL_EVIDENCE_SCHEMA
ENTITY_SCHEMAS["control_evidence_failures"] = CONTROL_EVIDENCE_FAILURE_SCHEMA
