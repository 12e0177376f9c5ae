"""The read-only warehouse tools. Parameterized SQL only: user input is never formatted into SQL."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qlrf_pipelines.images.blast_radius import CVE_SQL, summarise
from qlrf_pipelines.planning.tools.registry import Tool, ToolContext, ToolError, register


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _where(clauses: list[str]) -> str:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def _equal_filters(pairs: tuple[tuple[str, Any], ...]) -> tuple[list[str], list[Any]]:
    """`column = ?` clauses and their parameters for the (column, value) pairs whose value is set;
    column names come from this module, values only ever travel as parameters."""
    given = [(column, value) for column, value in pairs if value is not None]
    return [f"{column} = ?" for column, _ in given], [value for _, value in given]


# ---------------------------------------------------------------- query_assets

class QueryAssetsArgs(_Args):
    site_id: str | None = Field(None, description="Only assets of this site (e.g. aws-prod-use1).")
    provider: str | None = Field(None, description="Only this provider: aws, azure, gcp, vsphere or kubernetes.")
    environment: str | None = Field(None, description="Only this environment, e.g. production or staging.")
    kind: str | None = Field(None, description="Only this asset kind, e.g. vm, node or workload.")
    state: str | None = Field(None, description="Only this state, e.g. running or stopped.")
    image_family: str | None = Field(None, description="Only assets on this golden image family, e.g. ubuntu-22.04-base.")
    name_glob: str | None = Field(None, description="Only assets whose name matches this glob, e.g. 'web-*'.")


def _query_assets(ctx: ToolContext, args: QueryAssetsArgs) -> list[dict[str, Any]]:
    clauses, params = _equal_filters((
        ("site_id", args.site_id), ("provider", args.provider), ("environment", args.environment),
        ("kind", args.kind), ("state", args.state), ("image_family", args.image_family),
    ))
    if args.name_glob is not None:
        clauses.append("name GLOB ?")
        params.append(args.name_glob)
    sql = (
        "SELECT asset_id, site_id, name, kind, state, environment, image_id, image_family, image_version, "
        "instance_type, region FROM assets" + _where(clauses) + " ORDER BY site_id, name, asset_id"
    )
    return ctx.page(sql, params)


register(Tool(
    name="query_assets",
    description="List current assets (latest snapshot of each site), filtered by site, provider, environment, "
                "kind, state, golden image family or a name glob.",
    input_model=QueryAssetsArgs, run=_query_assets,
    agents=("drift", "patch", "compliance", "incident", "dr", "cost", "security", "image"),
))


# ---------------------------------------------------------------- get_golden_image

class GoldenImageArgs(_Args):
    family: str = Field(..., min_length=1, description="Golden image family, e.g. ubuntu-22.04-base.")


def _get_golden_image(ctx: ToolContext, args: GoldenImageArgs) -> dict[str, Any]:
    rows = ctx.rows(
        "SELECT f.family, f.current_version, f.current_image_id, g.status, g.created_at, f.current_basis, "
        "f.latest_version, f.version_count, f.providers, f.assets_running, f.assets_on_current "
        "FROM golden_image_families AS f LEFT JOIN golden_images AS g ON g.image_id = f.current_image_id "
        "WHERE f.family = ?",
        [args.family],
    )
    if not rows:
        known = [r["family"] for r in ctx.rows("SELECT family FROM golden_image_families ORDER BY family")]
        raise ToolError(f"unknown image family {args.family!r}; known families: {', '.join(known)}")
    family = rows[0]
    family["versions"] = ctx.rows(
        "SELECT image_id, version, status, created_at, is_current, assets_running FROM golden_images "
        "WHERE family = ? ORDER BY version_key",
        [args.family],
    )
    return family


register(Tool(
    name="get_golden_image",
    description="Get the current golden image of a family (current version, image id, status, created_at) "
                "and every version of the family.",
    input_model=GoldenImageArgs, run=_get_golden_image, agents=("drift", "patch", "security", "image"),
))


# ---------------------------------------------------------------- image_lineage

class ImageArgs(_Args):
    image_id: str = Field(..., min_length=1, description="Golden image id, family@version, e.g. ubuntu-22.04-base@1.3.0.")


def _image_lineage(ctx: ToolContext, args: ImageArgs) -> dict[str, Any]:
    own = ctx.rows(
        "SELECT image_id, family, version, status, is_current, depth, path FROM v_image_lineage_tree "
        "WHERE image_id = ? ORDER BY depth, path_text",
        [args.image_id],
    )
    ancestors: list[str] = []
    for row in own:
        for image in row["path"][:-1]:
            if image not in ancestors:
                ancestors.append(image)
    below = ctx.rows(
        "SELECT image_id, parent_image_id, relation, status, family, version, assets_running, "
        "depth - list_position(path, ?) + 1 AS distance FROM v_image_lineage_tree "
        "WHERE list_contains(path, ?) AND image_id <> ? ORDER BY distance, image_id",
        [args.image_id, args.image_id, args.image_id],
    )
    descendants: dict[str, dict[str, Any]] = {}
    for row in below:
        descendants.setdefault(row["image_id"], row)
    return {
        "image_id": args.image_id,
        "known": bool(own),
        "status": own[0]["status"] if own else None,
        "ancestors": ancestors,
        "descendants": list(descendants.values()),
    }


register(Tool(
    name="image_lineage",
    description="Get the lineage of a golden image: the images it was built from (ancestors, root first) and "
                "the images built from it (descendants, with distance and relation).",
    input_model=ImageArgs, run=_image_lineage, agents=("security", "image", "incident"),
))


# ---------------------------------------------------------------- image_vulnerabilities

SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")
_SEVERITY_RANK = (
    "CASE lower(severity) WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3 "
    "WHEN 'low' THEN 2 WHEN 'negligible' THEN 1 ELSE 0 END"
)
_RANK = {"critical": 5, "high": 4, "medium": 3, "low": 2, "negligible": 1, "unknown": 0}


class ImageVulnerabilitiesArgs(ImageArgs):
    min_severity: Literal["critical", "high", "medium", "low", "negligible", "unknown"] | None = Field(
        None, description="Only findings at or above this severity."
    )


def _image_vulnerabilities(ctx: ToolContext, args: ImageVulnerabilitiesArgs) -> list[dict[str, Any]]:
    rank = _RANK[args.min_severity] if args.min_severity else 0
    return ctx.rows(
        "SELECT image_id, vulnerability_id, severity, package_name, package_type, installed_version, "
        "fixed_version, is_fixable, title, source FROM image_vulnerabilities "
        f"WHERE image_id = ? AND {_SEVERITY_RANK} >= ? "
        f"ORDER BY {_SEVERITY_RANK} DESC, vulnerability_id, package_name",
        [args.image_id, rank],
    )


register(Tool(
    name="image_vulnerabilities",
    description="List imported scanner findings (CVE, severity, package, installed and fixed version) of a golden "
                "image, optionally only at or above a minimum severity.",
    input_model=ImageVulnerabilitiesArgs, run=_image_vulnerabilities, agents=("security", "image", "patch"),
))


# ---------------------------------------------------------------- cve_blast_radius

class CveArgs(_Args):
    cve_id: str = Field(..., min_length=1, description="Vulnerability id, e.g. CVE-2024-6387.")


def _cve_blast_radius(ctx: ToolContext, args: CveArgs) -> dict[str, Any]:
    radius = summarise(args.cve_id, ctx.rows(CVE_SQL, [args.cve_id]))
    return {
        "cve_id": args.cve_id,
        "image_count": len(radius.images),
        "asset_count": len(radius.asset_ids),
        "production_assets": radius.production_assets,
        "images": radius.images,
        "by_site": radius.by_site,
    }


register(Tool(
    name="cve_blast_radius",
    description="Find which golden images (directly or through lineage) and which running assets a CVE reaches, "
                "summarized per image and per site and environment.",
    input_model=CveArgs, run=_cve_blast_radius, agents=("security", "incident", "patch", "image"),
))


# ---------------------------------------------------------------- drift_items

class DriftItemsArgs(_Args):
    site_id: str | None = Field(None, description="Only drift of this site.")
    severity: str | None = Field(None, description="Only this severity, e.g. critical, high, medium or low.")
    drift_type: Literal["image", "config"] | None = Field(
        None, description="image: golden image drift (outdated, deprecated, revoked...); config: desired-state rules."
    )
    rule_id: str | None = Field(None, description="Only config drift of this desired-state rule.")


def _drift_items(ctx: ToolContext, args: DriftItemsArgs) -> list[dict[str, Any]]:
    clauses, params = _equal_filters((("site_id", args.site_id), ("severity", args.severity), ("rule_id", args.rule_id)))
    clauses.append("status = 'open'")
    if args.drift_type == "image":
        clauses.append("starts_with(drift_type, 'image_')")
    elif args.drift_type == "config":
        clauses.append("drift_type = 'config'")
    return ctx.page(
        "SELECT drift_id, site_id, environment, asset_id, asset_name, kind, drift_type, severity, rule_id, "
        "image_id, family, asset_version, current_version, current_image_id, versions_behind, days_behind, "
        "expected, actual, first_seen_at, age_days FROM drift_items" + _where(clauses)
        + " ORDER BY site_id, asset_id, drift_type, drift_id",
        params,
    )


register(Tool(
    name="drift_items",
    description="List open drift items (image drift against the golden image, or config drift against a "
                "desired-state rule), filtered by site, severity, drift type or rule.",
    input_model=DriftItemsArgs, run=_drift_items, agents=("drift", "patch", "compliance", "incident"),
))


# ---------------------------------------------------------------- compliance_status

class ComplianceStatusArgs(_Args):
    framework: str | None = Field(None, description="Framework id, e.g. nist-800-53, soc2 or cis-qlrf.")
    control: str | None = Field(None, description="Control id, e.g. CM-2 or QCIS-1.1.")


def _compliance_status(ctx: ToolContext, args: ComplianceStatusArgs) -> list[dict[str, Any]]:
    clauses, params = _equal_filters((("framework_id", args.framework), ("control_id", args.control)))
    return ctx.rows(
        "SELECT framework_id, control_id, control_title, control_status, check_id, check_status, blocking, "
        "checked_count, failing_count, waived_count, failing_asset_ids, evaluated_at, evidence_id "
        "FROM v_compliance_status" + _where(clauses) + " ORDER BY framework_id, control_id, check_id",
        params,
    )


register(Tool(
    name="compliance_status",
    description="Get the status of compliance controls and their checks at the latest evaluation, for a "
                "framework, a control, or both.",
    input_model=ComplianceStatusArgs, run=_compliance_status, agents=("compliance", "security"),
))


# ---------------------------------------------------------------- control_evidence

class ControlEvidenceArgs(_Args):
    framework: str = Field(..., min_length=1, description="Framework id, e.g. nist-800-53.")
    control: str = Field(..., min_length=1, description="Control id, e.g. CM-2.")


def _control_evidence(ctx: ToolContext, args: ControlEvidenceArgs) -> list[dict[str, Any]]:
    return ctx.rows(
        "SELECT evidence_id, framework_id, control_id, check_id, status, evaluated_at, run_id, checked_count, "
        "failing_count, waived_count, failing_asset_ids, sha256, prev_sha256 FROM control_evidence "
        "WHERE framework_id = ? AND control_id = ? AND evaluated_at = ("
        "SELECT max(evaluated_at) FROM control_evidence WHERE framework_id = ? AND control_id = ?) "
        "ORDER BY check_id",
        [args.framework, args.control, args.framework, args.control],
    )


register(Tool(
    name="control_evidence",
    description="Get the latest evidence rows of a compliance control (per check: status, counts, failing assets "
                "and the sha256 of the hash-chained evidence).",
    input_model=ControlEvidenceArgs, run=_control_evidence, agents=("compliance",),
))


# ---------------------------------------------------------------- list_sites

class ListSitesArgs(_Args):
    provider: str | None = Field(None, description="Only sites of this provider.")
    environment: str | None = Field(None, description="Only sites of this environment.")


def _list_sites(ctx: ToolContext, args: ListSitesArgs) -> list[dict[str, Any]]:
    clauses, params = _equal_filters((("provider", args.provider), ("environment", args.environment)))
    return ctx.rows(
        "SELECT site_id, provider, name, location, environment, last_snapshot_id, last_snapshot_at, "
        "snapshot_count, asset_count, image_count, is_stale FROM sites" + _where(clauses) + " ORDER BY site_id",
        params,
    )


register(Tool(
    name="list_sites",
    description="List the sites of the estate with their latest snapshot, asset and image counts and staleness.",
    input_model=ListSitesArgs, run=_list_sites,
    agents=("drift", "patch", "compliance", "incident", "dr", "cost", "security", "image"),
))
