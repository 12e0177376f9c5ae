"""Benchmark: a synthetic estate of N assets, and a synthetic golden image registry, through the
data platform.

    .venv/bin/python bench/run_benchmark.py --assets 100000
    .venv/bin/python bench/run_benchmark.py --assets 10000 --assets 100000 --json bench/results/latest.json
    .venv/bin/python bench/run_benchmark.py --images 100000 --vulns 1000000
    .venv/bin/python bench/run_benchmark.py --images 2000 --images 100000 --json bench/results/registry.json
    .venv/bin/python bench/run_benchmark.py --images 2000 --keep /tmp/registry   # keep lake + warehouse

--assets runs the estate stages, --images / --vulns the registry stages, both when both are given
(neither: the estate stages for 100,000 assets). --images is repeatable; --vulns (vulnerability rows,
default 10 per image, so 1,000,000 for the default 100,000 images) applies to every --images size.

Estate stages, each in its own child process so wall time and peak memory (max RSS) are its own:
  generate     write provider payloads in the sample shapes (not part of the platform; reported)
  land         normalize every site's payload and land its lake snapshot (what discovery does),
               and land the configuration (drift rules, compliance catalog) as a refresh does
  warehouse    dbt build of everything but the drift models (with their tests)
  drift        dbt build of the drift models (image and desired-state drift, episodes, reports,
               trends) with their tests: the first judgment of every asset
  compliance   evaluate every compliance check (GX suites, SQL, drift rules) on the warehouse
               and land the hash-chained evidence (what evaluate_compliance does)
  land-again   a second snapshot of every site (same payloads: every drift episode continues)
  refresh      dbt build of everything again: the incremental drift models judge only the new
               snapshots; drift_items spans both
  tools        every planner tool once (call_tool, as an LLM agent or `qlrf tools call` runs it)
               with arguments taken from the warehouse: time, rows, and the JSON size of the
               bounded result (the slowest are reported)

Registry stages (bench/synthetic_registry.py describes the registry's shape):
  registry-generate  land the registry in the lake through the platform's writers: four sites'
                     discovery snapshots (sites, assets, images with parent tags), a control
                     snapshot (registered lineage links, promotions) and supply-chain imports
                     (scans, SBOMs) (not part of the platform; reported)
  registry-build     dbt build of everything v_image_lineage_tree and v_cve_blast_radius need,
                     with their tests (REGISTRY_SELECT; the slowest dbt nodes are reported)
  lineage-view       the lineage tree: the whole forest's size and depth, and one base's subtree
  blast-radius       `qlrf blast-radius --cve` (CVE_SQL) for a CVE in a base image with thousands of
                     descendants, and `--image` (IMAGE_SQL) for that base image
Each query of lineage-view and blast-radius runs in its own child process that opens the
warehouse read-only (warehouse.query, as the CLI does): the row shows the process's wall time and
peak RSS, the query's own time (connect, execute, fetch) and the rows it returned.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "land", "warehouse", "drift", "compliance", "land-again", "refresh", "tools")
REGISTRY_STAGES = ("registry-generate", "registry-build", "lineage-view", "blast-radius")
# dbt selection of registry-build: the two views and everything upstream, plus the models that
# tests of those models refer to (relationships to sites / golden_image_families, the singular
# provenance-and-SBOM test on image_builds). Built with --indirect-selection cautious: a test runs
# when every model it reads is selected (eager would also pick tests of unselected models such as
# drift_items that merely point at a selected one, and fail on their missing tables).
REGISTRY_SELECT = ["+v_image_lineage_tree", "+v_cve_blast_radius", "sites", "golden_image_families", "image_builds"]
# name, SQL, parameters (filled from the registry the generate stage wrote)
LINEAGE_QUERIES = {
    "tree-summary": ("select count(*), max(depth) from v_image_lineage_tree", []),
    "subtree": (
        "select image_id, depth, path_text, status, assets_running from v_image_lineage_tree"
        " where list_contains(path, ?) order by depth, image_id",
        ["chosen_base"],
    ),
}


def run_stage(stage: str, workdir: Path, assets: int) -> dict:
    """Run one stage in a child process; wall time and the child's peak RSS via wait4."""
    command = [sys.executable, __file__, "--stage", stage, "--workdir", str(workdir), "--assets", str(assets)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} failed for {assets} assets")
    row = {"stage": stage, "assets": assets, "wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}
    detail = _detail_path(workdir, stage, None)
    if detail.exists():
        row.update(json.loads(detail.read_text()))
    if stage in ("drift", "refresh"):
        row.update(_drift_detail(workdir))
    return row


def _land_sites(paths) -> int:
    from qlrf_pipelines.discovery import discover_site
    from qlrf_pipelines.sites import load_sites
    from qlrf_pipelines import settings

    sites = load_sites(settings.sites_file())
    return sum(discover_site(sites, site_id, paths.lake_dir).asset_count for site_id in sites.site_ids)


def _compliance_detail(paths) -> dict:
    """Evaluate the bundled catalog as evaluate_compliance does (no waivers) and land the evidence."""
    from qlrf_pipelines.compliance.evaluate import evaluate_and_record

    evaluation = evaluate_and_record(paths.warehouse_path, paths.lake_dir, run_id="benchmark")
    statuses: dict[str, int] = {}
    for row in evaluation.evidence:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    slowest = sorted(evaluation.results.items(), key=lambda item: item[1].duration_ms, reverse=True)[:5]
    return {
        "evidence_rows": len(evaluation.evidence),
        "failure_rows": len(evaluation.failures),
        "statuses": statuses,
        "slowest_checks": [{"check": check_id, "s": round(r.duration_ms / 1000, 2), "status": r.status,
                            "checked": r.checked_count, "failing": len(r.failing_asset_ids)} for check_id, r in slowest],
    }


def _drift_detail(workdir: Path) -> dict:
    """Counts read after the stage's process ended (dbt keeps its own connection while it lives)."""
    import duckdb

    with duckdb.connect(str(workdir / "home" / "warehouse.duckdb"), read_only=True) as connection:
        rows = connection.execute(
            "SELECT count(*) FILTER (WHERE status = 'open'), "
            "count(*) FILTER (WHERE drift_type = 'config' AND status = 'open'), "
            "(SELECT count(*) FROM staging.drift_observations) FROM drift_items"
        ).fetchone()
    return {"open_items": rows[0], "open_config_items": rows[1], "observation_rows": rows[2]}


def _tool_arguments(ctx) -> dict[str, dict]:
    """Representative arguments for every tool, read from the warehouse being measured."""
    site = ctx.rows("SELECT site_id FROM sites ORDER BY asset_count DESC LIMIT 1")[0]["site_id"]
    family = ctx.rows("SELECT family, current_image_id FROM golden_image_families ORDER BY assets_running DESC LIMIT 1")[0]
    asset = ctx.rows("SELECT asset_id FROM assets WHERE site_id = ? AND image_family = ? LIMIT 1", [site, family["family"]])
    versions = [r["version"] for r in ctx.rows(
        "SELECT version FROM golden_images WHERE family = ? ORDER BY version_key", [family["family"]])]
    control = ctx.rows("SELECT framework_id, control_id FROM compliance_controls ORDER BY 1, 2 LIMIT 1")[0]
    pair = ctx.rows("SELECT pair_id FROM dr_pairs LIMIT 1")
    cve = ctx.rows("SELECT vulnerability_id AS cve_id FROM image_vulnerabilities LIMIT 1")
    asset_ids = [asset[0]["asset_id"]] if asset else []
    return {
        "get_golden_image": {"family": family["family"]},
        "image_lineage": {"image_id": family["current_image_id"]},
        "image_vulnerabilities": {"image_id": family["current_image_id"]},
        "cve_blast_radius": {"cve_id": cve[0]["cve_id"] if cve else "CVE-2024-6387"},
        "drift_items": {"site_id": site},
        "compliance_status": {"framework": control["framework_id"]},
        "control_evidence": {"framework": control["framework_id"], "control": control["control_id"]},
        "asset_details": {"asset_id": asset_ids[0]} if asset_ids else {},
        "image_deployments": {"family": family["family"]},
        "image_components": {"image_id": family["current_image_id"]},
        "find_package": {"name": "openssl"},
        "image_builds": {"image_id": family["current_image_id"]},
        "compare_image_versions": {"family": family["family"], "from_version": versions[0], "to_version": versions[-1]},
        "compliance_failures": {"framework": control["framework_id"], "control_id": control["control_id"]},
        "cost_estimate": {"site_id": site},
        "dr_pair_status": {"pair_id": pair[0]["pair_id"] if pair else "none"},
        "simulate_failover": {"pair_id": pair[0]["pair_id"] if pair else "none"},
        "generate_patch_plan": {"site_id": site, "family": family["family"]},
        "generate_rollback_plan": {"asset_ids": asset_ids},
        "estimate_blast_radius": {"site_id": site},
        "check_control": {"framework": control["framework_id"], "control": control["control_id"]},
        "generate_sop": {"site_id": site, "family": family["family"]},
    }


def _tools_detail(paths) -> dict:
    from qlrf_pipelines.planning.tools import REGISTRY, ToolContext, ToolError, call_tool

    ctx = ToolContext(warehouse_path=paths.warehouse_path, lake_dir=paths.lake_dir)
    arguments = _tool_arguments(ctx)
    calls = []
    for name in REGISTRY:
        started = time.perf_counter()
        try:
            result = call_tool(ctx, name, arguments.get(name, {}))
            size, chars, error = result.result_size, len(json.dumps(result.to_dict(), default=str)), None
        except ToolError as exc:
            size, chars, error = 0, 0, str(exc)[:120]
        calls.append({"tool": name, "s": round(time.perf_counter() - started, 3), "rows": size, "json_chars": chars}
                     | ({"error": error} if error else {}))
    calls.sort(key=lambda c: -c["s"])
    return {"tools": len(calls), "total_s": round(sum(c["s"] for c in calls), 2), "slowest": calls[:6],
            "errors": [c for c in calls if "error" in c]}


def stage_body(stage: str, workdir: Path, assets: int) -> None:
    os.environ["QLRF_HOME"] = str(workdir / "home")
    os.environ["QLRF_SITES"] = str(workdir / "estate" / "sites.yaml")
    os.environ.pop("QLRF_LAKE_URI", None)  # never upload benchmark data to a configured shared lake
    from qlrf_pipelines import settings

    paths = settings.paths()
    detail: dict = {}
    if stage == "generate":
        from qlrf_pipelines.sample.estate import write_estate

        write_estate(workdir / "estate", total_assets=assets)
    elif stage in ("land", "land-again"):
        import logging

        from qlrf_pipelines.compliance.landing import land_configuration

        landed = _land_sites(paths)
        assert landed == assets, (landed, assets)
        land_configuration(paths.lake_dir, logging.getLogger("bench"))
    elif stage == "compliance":
        detail = _compliance_detail(paths)
    elif stage == "tools":
        detail = _tools_detail(paths)
    else:
        from dbt.cli.main import dbtRunner

        os.environ.update(
            QLRF_LAKE_DIR=str(paths.lake_dir),
            QLRF_WAREHOUSE_PATH=str(paths.warehouse_path),
            DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        )
        selection = {
            "warehouse": ["--exclude", "path:models/drift"],
            "drift": ["--select", "path:models/drift"],
            "refresh": [],
        }[stage]
        project = str(settings.dbt_project_dir())
        result = dbtRunner().invoke(
            ["build", "--project-dir", project, "--profiles-dir", project, "--quiet",
             "--target-path", str(workdir / "dbt-target"), *selection]
        )
        if not result.success:
            raise SystemExit(f"dbt build failed: {result.exception}")
    _detail_path(workdir, stage, None).write_text(json.dumps(detail))


def registry_queries(stage: str) -> dict[str, tuple[str, list[str]]]:
    if stage == "lineage-view":
        return LINEAGE_QUERIES
    from qlrf_pipelines.images.blast_radius import CVE_SQL, IMAGE_SQL

    return {"cve": (CVE_SQL, ["chosen_cve"]), "image": (IMAGE_SQL, ["chosen_base"])}


def run_registry_stage(stage: str, workdir: Path, images: int, vulns: int, query: str | None = None) -> dict:
    """Run one registry stage (or one query of a query stage) in a child process, like run_stage."""
    command = [sys.executable, __file__, "--stage", stage, "--workdir", str(workdir),
               "--images", str(images), "--vulns", str(vulns)]
    if query:
        command += ["--query", query]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} {query or ''} failed for {images} images")
    row = {"stage": stage, "images": images, "vulns": vulns, "wall_s": round(wall, 2),
           "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}
    if query:
        row["query"] = query
    detail = _detail_path(workdir, stage, query)
    if detail.exists():
        row.update(json.loads(detail.read_text()))
    return row


def _detail_path(workdir: Path, stage: str, query: str | None) -> Path:
    return workdir / f"detail-{stage}{'-' + query if query else ''}.json"


def registry_stage_body(stage: str, workdir: Path, images: int, vulns: int, query: str | None) -> None:
    os.environ["QLRF_HOME"] = str(workdir / "home")
    os.environ.pop("QLRF_LAKE_URI", None)  # never upload benchmark data to a configured shared lake
    from qlrf_pipelines import settings

    paths = settings.paths()
    detail: dict = {}
    if stage == "registry-generate":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from dataclasses import asdict

        from synthetic_registry import write_registry

        registry = write_registry(paths.lake_dir, images, vulns)
        (workdir / "registry.json").write_text(json.dumps(asdict(registry)))
        detail = {"registry": asdict(registry)}
    elif stage == "registry-build":
        from dbt.cli.main import dbtRunner

        os.environ.update(
            QLRF_LAKE_DIR=str(paths.lake_dir),
            QLRF_WAREHOUSE_PATH=str(paths.warehouse_path),
            DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        )
        project = str(settings.dbt_project_dir())
        target = workdir / "dbt-target-registry"
        result = dbtRunner().invoke(
            ["build", "--project-dir", project, "--profiles-dir", project, "--quiet",
             "--target-path", str(target), "--indirect-selection", "cautious", "--select", *REGISTRY_SELECT]
        )
        if not result.success:
            raise SystemExit(f"dbt build failed: {result.exception}")
        nodes = json.loads((target / "run_results.json").read_text())["results"]
        timed = sorted(nodes, key=lambda n: n["execution_time"], reverse=True)
        detail = {
            "dbt_nodes": len(nodes),
            "slowest": [{"node": n["unique_id"].split(".", 2)[-1], "s": round(n["execution_time"], 2),
                         "status": n["status"]} for n in timed[:8]],
        }
    else:
        from qlrf_pipelines.warehouse import query as run_query

        registry = json.loads((workdir / "registry.json").read_text())
        sql, names = registry_queries(stage)[query]
        started = time.perf_counter()
        result = run_query(paths.warehouse_path, sql, [registry[name] for name in names])
        detail = {"query_s": round(time.perf_counter() - started, 2), "rows": len(result.rows)}
        if query == "tree-summary":
            detail["result"] = [str(v) for v in result.rows[0]]
        if stage == "blast-radius":
            cols = result.columns
            images_hit = {row[cols.index("image_id")] for row in result.rows}
            assets_hit = {row[cols.index("asset_id")] for row in result.rows if row[cols.index("asset_id")]}
            detail["affected_images"], detail["affected_assets"] = len(images_hit), len(assets_hit)
            if query == "cve":
                evidence: dict[str, int] = {}
                for image_id, kind in {(r[cols.index("image_id")], r[cols.index("evidence")]) for r in result.rows}:
                    evidence[kind] = evidence.get(kind, 0) + 1
                detail["evidence"] = evidence
    _detail_path(workdir, stage, query).write_text(json.dumps(detail))


def _print_registry_row(row: dict) -> None:
    label = f"{row['stage']}{':' + row['query'] if 'query' in row else ''}"
    line = f"{row['images']:>8} images  {label:<26} {row['wall_s']:>8.2f} s  {row['peak_rss_mb']:>8.1f} MB peak RSS"
    if "query_s" in row:
        line += f"  query {row['query_s']:.2f} s, {row['rows']} rows"
        extra = {k: row[k] for k in ("result", "affected_images", "affected_assets", "evidence") if k in row}
        if extra:
            line += f"  {json.dumps(extra)}"
    print(line, flush=True)
    if "registry" in row:
        print(f"{'':>17}{json.dumps(row['registry'])}", flush=True)
    for node in row.get("slowest", []):
        print(f"{'':>17}dbt {node['node']:<60} {node['s']:>8.2f} s  {node['status']}", flush=True)


@contextmanager
def _registry_workdir(keep: Path | None, images: int) -> Iterator[str]:
    if keep is None:
        with tempfile.TemporaryDirectory(prefix=f"qlrf-bench-registry-{images}-") as tmp:
            yield tmp
        return
    folder = keep.resolve() / f"registry-{images}"
    if folder.exists():
        raise SystemExit(f"{folder} exists: the lake never overwrites a snapshot, remove it first")
    folder.mkdir(parents=True)
    yield str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, action="append", help="estate size (repeatable); default 100000")
    parser.add_argument("--images", type=int, action="append",
                        help="registry size in golden images (repeatable); runs the registry stages")
    parser.add_argument("--vulns", type=int,
                        help="vulnerability rows of the registry; default 10 per image (1000000 for 100000 images)")
    parser.add_argument("--stage", choices=STAGES + REGISTRY_STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--query", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", type=Path,
                        help="registry runs: keep lake and warehouse in DIR/registry-<images>, not a temp folder")
    args = parser.parse_args()
    if any(n < 100 for n in args.images or []) or (args.vulns is not None and args.vulns < 1):
        parser.error("--images must be at least 100 and --vulns at least 1")
    if args.stage in REGISTRY_STAGES:
        registry_stage_body(args.stage, args.workdir, args.images[0], args.vulns, args.query)
        return
    if args.stage:
        stage_body(args.stage, args.workdir, args.assets[0])
        return
    results = []
    registry = bool(args.images or args.vulns)
    for assets in args.assets or ([] if registry else [100_000]):
        with tempfile.TemporaryDirectory(prefix=f"qlrf-bench-{assets}-") as tmp:
            for stage in STAGES:
                row = run_stage(stage, Path(tmp), assets)
                results.append(row)
                extra = {k: v for k, v in row.items() if k not in ("stage", "assets", "wall_s", "peak_rss_mb")}
                print(f"{assets:>8} assets  {stage:<10} {row['wall_s']:>8.2f} s  {row['peak_rss_mb']:>8.1f} MB peak RSS"
                      + (f"  {json.dumps(extra)}" if extra else ""), flush=True)
    for images in args.images or ([100_000] if registry else []):
        vulns = args.vulns if args.vulns is not None else 10 * images
        with _registry_workdir(args.keep, images) as tmp:
            for stage in REGISTRY_STAGES:
                queries = list(registry_queries(stage)) if stage in ("lineage-view", "blast-radius") else [None]
                for query in queries:
                    row = run_registry_stage(stage, Path(tmp), images, vulns, query)
                    results.append(row)
                    _print_registry_row(row)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
