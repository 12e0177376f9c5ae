"""Benchmark: a synthetic estate of N assets through every stage of the data platform.

    .venv/bin/python bench/run_benchmark.py --assets 100000
    .venv/bin/python bench/run_benchmark.py --assets 10000 --assets 100000 --json bench/results/latest.json

Stages, each in its own child process so wall time and peak memory (max RSS) are its own:
  generate     write provider payloads in the sample shapes (not part of the platform; reported)
  land         normalize every site's payload and land its lake snapshot (what discovery does)
  warehouse    dbt build of staging, inventory and image models (with their tests)
  drift        dbt build of the drift models (drift_items, drift_reports) with their tests
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "land", "warehouse", "drift")


def run_stage(stage: str, workdir: Path, assets: int) -> dict:
    """Run one stage in a child process; wall time and the child's peak RSS via wait4."""
    command = [sys.executable, __file__, "--stage", stage, "--workdir", str(workdir), "--assets", str(assets)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} failed for {assets} assets")
    return {"stage": stage, "assets": assets, "wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def stage_body(stage: str, workdir: Path, assets: int) -> None:
    os.environ["QLRF_HOME"] = str(workdir / "home")
    os.environ["QLRF_SITES"] = str(workdir / "estate" / "sites.yaml")
    from qlrf_pipelines import settings

    paths = settings.paths()
    if stage == "generate":
        from qlrf_pipelines.sample.estate import write_estate

        write_estate(workdir / "estate", total_assets=assets)
    elif stage == "land":
        from qlrf_pipelines.discovery import discover_site
        from qlrf_pipelines.sites import load_sites

        sites = load_sites(settings.sites_file())
        landed = sum(discover_site(sites, site_id, paths.lake_dir).asset_count for site_id in sites.site_ids)
        assert landed == assets, (landed, assets)
    else:
        from dbt.cli.main import dbtRunner

        os.environ.update(
            QLRF_LAKE_DIR=str(paths.lake_dir),
            QLRF_WAREHOUSE_PATH=str(paths.warehouse_path),
            DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        )
        selection = ["--exclude", "path:models/drift"] if stage == "warehouse" else ["--select", "path:models/drift"]
        project = str(settings.dbt_project_dir())
        result = dbtRunner().invoke(
            ["build", "--project-dir", project, "--profiles-dir", project, "--quiet",
             "--target-path", str(workdir / "dbt-target"), *selection]
        )
        if not result.success:
            raise SystemExit(f"dbt build failed: {result.exception}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, action="append", help="estate size (repeatable); default 100000")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.stage:
        stage_body(args.stage, args.workdir, args.assets[0])
        return
    results = []
    for assets in args.assets or [100_000]:
        with tempfile.TemporaryDirectory(prefix=f"qlrf-bench-{assets}-") as tmp:
            for stage in STAGES:
                row = run_stage(stage, Path(tmp), assets)
                results.append(row)
                print(f"{assets:>8} assets  {stage:<10} {row['wall_s']:>8.2f} s  {row['peak_rss_mb']:>8.1f} MB peak RSS", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
