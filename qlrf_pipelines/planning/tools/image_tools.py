"""Read-only golden image tools: families, deployments, SBOM components, packages, builds,
version comparison and vulnerability summaries.

Same conventions as warehouse_tools: parameterized SQL only, a ToolError naming the argument (and
the known values) when it names nothing. Nothing here writes anything.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from qlrf_pipelines.planning.tools.estate_tools import _known, _require_family, _require_image
from qlrf_pipelines.planning.tools.registry import Tool, ToolContext, ToolError, register
from qlrf_pipelines.planning.tools.warehouse_tools import _Args, _equal_filters, _where


# ---------------------------------------------------------------- list_image_families

class ListImageFamiliesArgs(_Args):
    provider: str | None = Field(None, description="Only families published to this provider: aws, azure, gcp, "
                                                   "vsphere or kubernetes.")


def _list_image_families(ctx: ToolContext, args: ListImageFamiliesArgs) -> list[dict[str, Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if args.provider is not None:
        clauses.append("list_contains(string_split(coalesce(providers, ''), ','), ?)")
        params.append(args.provider)
    return ctx.rows(
        "SELECT family, platform, os, version_count, current_version, current_image_id, current_basis, "
        "latest_version, providers, first_published_at, last_published_at, assets_running, assets_on_current, "
        "assets_running - assets_on_current AS assets_not_on_current FROM golden_image_families"
        + _where(clauses) + " ORDER BY family",
        params,
    )


register(Tool(
    name="list_image_families",
    description="List the golden image families: current version (what drift measures against) and how it was "
                "chosen, latest version, number of versions, providers, and how many running assets are on the "
                "family and on its current version.",
    input_model=ListImageFamiliesArgs, run=_list_image_families,
    agents=("drift", "patch", "security", "image", "incident", "compliance"),
))


# ---------------------------------------------------------------- image_deployments

class ImageDeploymentsArgs(_Args):
    image_id: str | None = Field(None, description="Golden image id, family@version, e.g. ubuntu-22.04-base@1.2.0. "
                                                   "Give this or family.")
    family: str | None = Field(None, description="Golden image family, e.g. rhel-9-base: every version of it. "
                                                 "Give this or image_id.")
    site_id: str | None = Field(None, description="Only deployments at this site.")
    group_by: Literal["site", "asset"] = Field(
        "site", description="site: one row per (image, site) with asset counts; asset: one row per asset."
    )


def _image_deployments(ctx: ToolContext, args: ImageDeploymentsArgs) -> list[dict[str, Any]]:
    if (args.image_id is None) == (args.family is None):
        raise ToolError("image_deployments needs exactly one of image_id or family")
    if args.image_id is not None:
        _require_image(ctx, args.image_id)
    else:
        _require_family(ctx, args.family)
    clauses, params = _equal_filters((("d.image_id", args.image_id), ("d.family", args.family), ("d.site_id", args.site_id)))
    clauses += ["d.is_latest", "coalesce(d.state, '') <> 'terminated'"]
    source = (
        " FROM image_deployments AS d JOIN golden_images AS g ON g.image_id = d.image_id "
        "LEFT JOIN sites AS s ON s.site_id = d.site_id" + _where(clauses)
    )
    if args.group_by == "asset":
        return ctx.rows(
            "SELECT d.image_id, d.version, g.status, g.is_current, d.site_id, s.environment, d.asset_id, "
            "d.asset_name, d.kind, d.state, d.snapshot_at" + source
            + " ORDER BY g.version_key, d.site_id, d.asset_name, d.asset_id",
            params,
        )
    return ctx.rows(
        "SELECT d.image_id, d.version, any_value(g.status) AS status, any_value(g.is_current) AS is_current, "
        "d.site_id, any_value(s.environment) AS environment, count(*) AS assets, "
        "count(*) FILTER (WHERE d.state = 'running') AS running_assets, "
        "string_agg(DISTINCT d.kind, ',' ORDER BY d.kind) AS kinds, max(d.snapshot_at) AS snapshot_at" + source
        + " GROUP BY d.image_id, d.version, d.site_id ORDER BY any_value(g.version_key), d.site_id",
        params,
    )


register(Tool(
    name="image_deployments",
    description="Show where a golden image (or every version of a family) runs now, from each site's latest "
                "snapshot (terminated assets left out): per site with asset counts, or per asset.",
    input_model=ImageDeploymentsArgs, run=_image_deployments,
    agents=("patch", "security", "image", "incident", "drift", "dr"),
))


# ---------------------------------------------------------------- image_components

class ImageComponentsArgs(_Args):
    image_id: str = Field(..., min_length=1, description=(
        "Golden image id, family@version (e.g. ubuntu-22.04-base@1.3.0), or the image reference an SBOM was "
        "imported for (AMI id, digest, ...)."
    ))
    name_glob: str | None = Field(None, description="Only packages whose name matches this glob, e.g. 'openssh*'.")


def _image_components(ctx: ToolContext, args: ImageComponentsArgs) -> list[dict[str, Any]]:
    clauses = ["(image_id = ? OR image_ref = ?)"]
    params: list[Any] = [args.image_id, args.image_id]
    if args.name_glob is not None:
        clauses.append("name GLOB ?")
        params.append(args.name_glob)
    rows = ctx.rows(
        "SELECT image_id, image_ref, name, version, purl, license_expression, supplier, component_type, source, "
        "document_name, imported_at FROM image_components" + _where(clauses)
        + " ORDER BY name, version, source",
        params,
    )
    if not rows and not ctx.rows("SELECT 1 FROM image_components WHERE image_id = ? OR image_ref = ? LIMIT 1",
                                 [args.image_id, args.image_id]):
        if not ctx.rows("SELECT 1 FROM golden_images WHERE image_id = ?", [args.image_id]):
            _require_image(ctx, args.image_id)  # raises, naming the known images
    return rows


register(Tool(
    name="image_components",
    description="List the software bill of materials of an image: the packages (name, version, purl, license, "
                "supplier) of its latest imported SPDX or CycloneDX SBOM, optionally filtered by a name glob. "
                "Empty when no SBOM was imported for the image.",
    input_model=ImageComponentsArgs, run=_image_components, agents=("security", "image", "incident", "compliance"),
))


# ---------------------------------------------------------------- find_package

class FindPackageArgs(_Args):
    name: str = Field(..., min_length=1, description="Package name, exact (case-insensitive) or a glob, e.g. "
                                                     "openssh-server or 'openssh*'.")
    version: str | None = Field(None, description="Only this package version (exact, or a glob such as '1:8.9p1*').")


_PACKAGE_SQL = """
WITH found AS (
    SELECT image_id, image_ref, name AS package_name, version, 'sbom:' || source AS evidence
    FROM image_components WHERE lower(name) GLOB lower(?) AND (? IS NULL OR version GLOB ?)
    UNION
    SELECT image_id, image_ref, package_name, installed_version AS version, 'scan:' || source AS evidence
    FROM image_vulnerabilities WHERE lower(package_name) GLOB lower(?) AND (? IS NULL OR installed_version GLOB ?)
), vulns AS (
    SELECT image_ref, package_name, installed_version,
           list(DISTINCT vulnerability_id ORDER BY vulnerability_id) AS vulnerability_ids
    FROM image_vulnerabilities GROUP BY image_ref, package_name, installed_version
)
SELECT f.image_id, f.image_ref, f.package_name, f.version,
       string_agg(DISTINCT f.evidence, ',' ORDER BY f.evidence) AS evidence,
       any_value(g.status) AS image_status, any_value(g.is_current) AS is_current,
       coalesce(any_value(g.assets_running), 0) AS assets_running,
       coalesce(any_value(v.vulnerability_ids), []) AS vulnerability_ids
FROM found AS f
LEFT JOIN golden_images AS g ON g.image_id = f.image_id
LEFT JOIN vulns AS v ON v.image_ref = f.image_ref AND v.package_name = f.package_name AND v.installed_version = f.version
GROUP BY f.image_id, f.image_ref, f.package_name, f.version
ORDER BY f.package_name, f.image_id NULLS LAST, f.image_ref, f.version
"""


def _find_package(ctx: ToolContext, args: FindPackageArgs) -> list[dict[str, Any]]:
    v = args.version
    return ctx.rows(_PACKAGE_SQL, [args.name, v, v, args.name, v, v])


register(Tool(
    name="find_package",
    description="Find which images contain a package (from imported SBOMs and scanner findings), with the "
                "installed version, the golden image's status, how many running assets are on the image, and the "
                "vulnerabilities scanners report for that package there. Only images with an imported SBOM or "
                "scan can be found.",
    input_model=FindPackageArgs, run=_find_package, agents=("security", "image", "incident", "patch"),
))


# ---------------------------------------------------------------- image_builds

class ImageBuildsArgs(_Args):
    image_id: str = Field(..., min_length=1, description=(
        "Golden image id, family@version (e.g. ubuntu-22.04-base@1.3.0), or the image reference (digest) the "
        "provenance is about."
    ))


def _image_builds(ctx: ToolContext, args: ImageBuildsArgs) -> list[dict[str, Any]]:
    rows = ctx.rows(
        "SELECT image_id, image_ref, builder_id, build_type, source_repo, source_ref, source_commit, invocation_id, "
        "started_on, finished_on, predicate_type, subject_name, materials_json, imported_at FROM image_builds "
        "WHERE image_id = ? OR image_ref = ? ORDER BY imported_at, image_ref",
        [args.image_id, args.image_id],
    )
    if not rows and not ctx.rows("SELECT 1 FROM golden_images WHERE image_id = ?", [args.image_id]):
        _require_image(ctx, args.image_id)
    for row in rows:
        raw = row.pop("materials_json")
        try:
            row["materials"] = json.loads(raw) if raw else []
        except ValueError:
            row["materials"] = raw
    return rows


register(Tool(
    name="image_builds",
    description="Get the build provenance (SLSA) of an image: builder, build type, source repository, ref and "
                "commit, CI invocation, start and finish times, and the build materials with their digests. "
                "Empty when no provenance was imported for the image.",
    input_model=ImageBuildsArgs, run=_image_builds, agents=("security", "image", "incident", "compliance"),
))


# ---------------------------------------------------------------- compare_image_versions

class CompareImageVersionsArgs(_Args):
    family: str = Field(..., min_length=1, description="Golden image family, e.g. ubuntu-22.04-base.")
    from_version: str = Field(..., min_length=1, description="The version assets run now, e.g. 1.2.0.")
    to_version: str = Field(..., min_length=1, description="The version to compare it with, e.g. 1.3.0.")


def _components_of(ctx: ToolContext, image_id: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in ctx.rows("SELECT DISTINCT name, version FROM image_components WHERE image_id = ?", [image_id]):
        out.setdefault(row["name"], set()).add(row["version"] or "")
    return out


def _findings_of(ctx: ToolContext, image_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in ctx.rows(
        "SELECT vulnerability_id, severity, package_name, installed_version, fixed_version, source FROM "
        "image_vulnerabilities WHERE image_id = ? ORDER BY vulnerability_id, package_name, installed_version",
        [image_id],
    ):
        out.setdefault((row["vulnerability_id"], row["package_name"]), row)
    return out


def _scanned(ctx: ToolContext, image_id: str) -> bool:
    return bool(ctx.rows("SELECT 1 FROM v_image_vuln_summary WHERE image_id = ? LIMIT 1", [image_id]))


def _compare_image_versions(ctx: ToolContext, args: CompareImageVersionsArgs) -> dict[str, Any]:
    _require_family(ctx, args.family)
    versions = ctx.rows(
        "SELECT image_id, version, version_key, status, is_current, created_at, assets_running FROM golden_images "
        "WHERE family = ? ORDER BY version_key",
        [args.family],
    )
    by_version = {r["version"]: r for r in versions}
    for argument, version in (("from_version", args.from_version), ("to_version", args.to_version)):
        if version not in by_version:
            raise ToolError(f"unknown {argument}={version!r} of {args.family}; versions: "
                            f"{_known([r['version'] for r in versions])}")
    old, new = by_version[args.from_version], by_version[args.to_version]
    order = [r["version"] for r in versions]
    steps = order.index(args.to_version) - order.index(args.from_version)
    result: dict[str, Any] = {
        "family": args.family,
        "from": {k: old[k] for k in ("image_id", "version", "status", "is_current", "created_at", "assets_running")},
        "to": {k: new[k] for k in ("image_id", "version", "status", "is_current", "created_at", "assets_running")},
        "direction": "upgrade" if steps > 0 else "downgrade" if steps < 0 else "same",
        "versions_apart": abs(steps),
    }

    before, after = _components_of(ctx, old["image_id"]), _components_of(ctx, new["image_id"])
    if before and after:
        result["components"] = {
            "compared": True,
            "added": [{"name": n, "version": ", ".join(sorted(after[n]))} for n in sorted(set(after) - set(before))],
            "removed": [{"name": n, "version": ", ".join(sorted(before[n]))} for n in sorted(set(before) - set(after))],
            "changed": [
                {"name": n, "from_version": ", ".join(sorted(before[n])), "to_version": ", ".join(sorted(after[n]))}
                for n in sorted(set(before) & set(after)) if before[n] != after[n]
            ],
            "unchanged_count": sum(1 for n in set(before) & set(after) if before[n] == after[n]),
        }
    else:
        missing = [r["image_id"] for r, c in ((old, before), (new, after)) if not c]
        result["components"] = {"compared": False, "reason": f"no SBOM imported for {', '.join(missing)}"}

    old_scanned, new_scanned = _scanned(ctx, old["image_id"]), _scanned(ctx, new["image_id"])
    old_findings, new_findings = _findings_of(ctx, old["image_id"]), _findings_of(ctx, new["image_id"])

    def finding(row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[k] for k in ("vulnerability_id", "severity", "package_name", "installed_version", "fixed_version")}
        if after:
            out["to_package_version"] = ", ".join(sorted(after.get(row["package_name"], set()))) or None
        return out

    vulns: dict[str, Any] = {"from_scanned": old_scanned, "to_scanned": new_scanned}
    if old_scanned and new_scanned:
        vulns["fixed"] = [finding(old_findings[k]) for k in sorted(set(old_findings) - set(new_findings))]
        vulns["introduced"] = [finding(new_findings[k]) for k in sorted(set(new_findings) - set(old_findings))]
        vulns["still_open"] = [finding(new_findings[k]) for k in sorted(set(old_findings) & set(new_findings))]
    else:
        unscanned = [i for i, s in ((old["image_id"], old_scanned), (new["image_id"], new_scanned)) if not s]
        vulns["note"] = (f"no scan imported for {', '.join(unscanned)}: fixed / introduced cannot be told; the "
                         "findings of the scanned side are listed, with the other version's package version from "
                         "its SBOM where there is one")
        vulns["from_findings"] = [finding(old_findings[k]) for k in sorted(old_findings)]
        vulns["to_findings"] = [finding(new_findings[k]) for k in sorted(new_findings)]
    result["vulnerabilities"] = vulns
    return result


register(Tool(
    name="compare_image_versions",
    description="Compare two versions of a golden image family: status and assets of each, packages added, "
                "removed and changed between their imported SBOMs, and vulnerabilities fixed, introduced or still "
                "open between their imported scans (says so when a side has no SBOM or scan).",
    input_model=CompareImageVersionsArgs, run=_compare_image_versions, agents=("security", "image", "patch"),
))


# ---------------------------------------------------------------- vulnerability_summary

_SEVERITY_COLUMN = {"critical": "critical_count", "high": "high_count", "medium": "medium_count", "low": "low_count"}


class VulnerabilitySummaryArgs(_Args):
    family: str | None = Field(None, description="Only images of this golden image family.")
    severity: Literal["critical", "high", "medium", "low"] | None = Field(
        None, description="Only images with at least one current finding of this severity."
    )


def _vulnerability_summary(ctx: ToolContext, args: VulnerabilitySummaryArgs) -> list[dict[str, Any]]:
    clauses, params = _equal_filters((("g.family", args.family),))
    if args.severity is not None:
        clauses.append(f"v.{_SEVERITY_COLUMN[args.severity]} > 0")
    return ctx.rows(
        "SELECT v.image_id, v.image_ref, g.family, g.version, g.status, g.is_current, "
        "coalesce(g.assets_running, 0) AS assets_running, v.critical_count, v.high_count, v.medium_count, "
        "v.low_count, v.other_count, v.total_count, v.fixable_count, v.fixable_critical_count, "
        "v.fixable_high_count, v.oldest_critical_first_seen FROM v_image_vuln_summary AS v "
        "LEFT JOIN golden_images AS g ON g.image_id = v.image_id" + _where(clauses)
        + " ORDER BY v.critical_count DESC, v.high_count DESC, v.total_count DESC, v.image_id, v.image_ref",
        params,
    )


register(Tool(
    name="vulnerability_summary",
    description="Summarize current scanner findings per scanned image: counts by severity, how many are fixable, "
                "the oldest open critical, and how many running assets are on the image. Only images with an "
                "imported scan appear.",
    input_model=VulnerabilitySummaryArgs, run=_vulnerability_summary, agents=("security", "image", "patch", "incident"),
))
