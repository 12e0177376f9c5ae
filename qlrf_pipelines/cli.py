"""`qlrf`: run the platform, query the warehouse and inspect the estate from a shell."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from qlrf_pipelines import settings


def _quiet_warnings() -> None:
    """Dagster's beta/preview notices are for library authors, not for people running qlrf."""
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=".*is currently in preview.*")
    warnings.filterwarnings("ignore", message=".*is superseded.*")


def _apply_globals(home: str | None, sites: str | None) -> None:
    if home:
        os.environ["QLRF_HOME"] = str(Path(home).expanduser().resolve())
    if sites:
        os.environ["QLRF_SITES"] = str(Path(sites).expanduser().resolve())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="QLRF_HOME", help="Data directory (lake, warehouse, control store). Default ./.qlrf")
@click.option("--sites", envvar="QLRF_SITES", help="Sites file. Default: the bundled sample estate.")
@click.version_option(package_name="qlrf-pipelines")
def main(home: str | None, sites: str | None) -> None:
    """QL-RF: multi-cloud inventory, golden images and drift on Dagster, dbt and DuckDB.

    State lives under QLRF_HOME (default ./.qlrf); the estate is described by the sites file
    QLRF_SITES (default: the bundled sample estate, which needs no credentials or network).
    """
    _quiet_warnings()
    _apply_globals(home, sites)


@main.command()
def prepare() -> None:
    """Parse the dbt project once and cache its manifest (done automatically when missing)."""
    from qlrf_pipelines.resources.dbt import ensure_manifest

    project = ensure_manifest(force=True)
    click.echo(f"dbt manifest ready: {project.manifest_path}")


@main.command()
@click.option("--quiet", is_flag=True, help="Do not print the summary of what was built.")
@click.option("--verbose", is_flag=True, help="Show Dagster debug events and dbt's own output.")
@click.option("--no-tick", is_flag=True, help="Do not evaluate the sensors after the job.")
@click.option(
    "--parallel", type=int, default=0, metavar="N",
    help="Discover sites in N worker processes (Dagster's multiprocess executor); 0 = in this process.",
)
def run(quiet: bool, verbose: bool, no_tick: bool, parallel: int) -> None:
    """Run the main job in-process: discover every site, land snapshots, build the warehouse.

    For scripts and cron without a Dagster daemon. The run is recorded in the Dagster instance
    (DAGSTER_HOME, else QLRF_HOME/dagster) and shows in `qlrf dev`'s run history. Then the
    sensors tick once (like `qlrf tick`): drift starts remediation planning.
    Exits 1 if any site failed (the other sites still land and the warehouse is still built).
    """
    from qlrf_pipelines.runner import run_refresh
    from qlrf_pipelines.sites import SitesFileError
    from qlrf_pipelines.summary import summary_text
    from qlrf_pipelines.warehouse import WarehouseError

    paths = settings.paths()
    try:
        result = run_refresh(paths, verbose=verbose, parallel=parallel)
    except SitesFileError as exc:
        raise click.ClickException(f"{exc}\nnothing was discovered or written") from None
    for line in result.messages:
        click.echo(line, err=not result.success)
    if not quiet:
        try:
            click.echo(summary_text(paths.warehouse_path))
        except WarehouseError as exc:
            click.echo(f"no warehouse to summarise: {exc}", err=True)
    ticked = True
    if not no_tick:
        from qlrf_pipelines.cli_tasks import run_tick

        click.echo("\nSensors (one tick):")
        ticked = run_tick()
        click.echo("Review with: qlrf tasks list --status pending_approval")
    sys.exit(0 if result.success and ticked else 1)


@main.command()
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def query(sql: str, fmt: str) -> None:
    """Run read-only SQL on the warehouse, e.g. qlrf query "SELECT * FROM drift_items WHERE status = 'open' LIMIT 5"."""
    from qlrf_pipelines.warehouse import WarehouseError, query as run_query, render

    try:
        result = run_query(settings.paths().warehouse_path, sql)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(render(result, fmt))


@main.command()
def summary() -> None:
    """Print what the warehouse holds: sites, assets per provider, images, drift."""
    from qlrf_pipelines.summary import summary_text
    from qlrf_pipelines.warehouse import WarehouseError

    try:
        click.echo(summary_text(settings.paths().warehouse_path))
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--site", "site_id", help="Only this site.")
@click.option("--severity", type=click.Choice(["critical", "high", "medium", "low"]), help="Only this severity.")
@click.option(
    "--type", "drift_kind", type=click.Choice(["image", "config"]),
    help="Only image drift or only config drift (desired-state rule violations).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--limit", type=int, default=50, show_default=True)
def drift(site_id: str | None, severity: str | None, drift_kind: str | None, fmt: str, limit: int) -> None:
    """List open drift items (image and config drift), worst first."""
    from qlrf_pipelines.warehouse import WarehouseError, query as run_query, render

    # drift_items keeps every episode; what drifts now is status = 'open'.
    sql = (
        "SELECT site_id, asset_name, drift_type, rule_id, severity, family, asset_version, current_version, "
        "versions_behind, days_behind, expected, actual, age_days FROM drift_items "
        "WHERE status = 'open' AND (? IS NULL OR site_id = ?) AND (? IS NULL OR severity = ?) "
        "AND (? IS NULL OR (drift_type = 'config') = (? = 'config')) "
        "ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, "
        "site_id, asset_name, drift_type, rule_id LIMIT ?"
    )
    try:
        result = run_query(
            settings.paths().warehouse_path, sql,
            [site_id, site_id, severity, severity, drift_kind, drift_kind, limit],
        )
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(render(result, fmt))


@main.group()
def sites() -> None:
    """Inspect and validate the sites file."""


@sites.command("list")
def sites_list() -> None:
    """List the sites of the sites file (no credentials are printed)."""
    from tabulate import tabulate

    from qlrf_pipelines.sites import SitesFileError, load_sites

    try:
        parsed = load_sites(settings.sites_file())
    except SitesFileError as exc:
        raise click.ClickException(str(exc)) from None
    rows = [(s.id, s.provider, s.name, s.location, s.environment, s.account or "") for s in parsed.sites]
    click.echo(f"{parsed.path}")
    click.echo(tabulate(rows, headers=["id", "provider", "name", "location", "environment", "account"]))


@sites.command("validate")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def sites_validate(path: str | None) -> None:
    """Validate a sites file (default: QLRF_SITES or the bundled sample)."""
    from qlrf_pipelines.sites import SitesFileError, load_sites

    target = Path(path) if path else settings.sites_file()
    try:
        parsed = load_sites(target)
    except SitesFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{parsed.path}: {len(parsed.sites)} sites ok")


@sites.command("check")
def sites_check() -> None:
    """Try each site's credentials with one cheap read; print ok / failed with the reason.

    Sites with a `sample:` payload are checked by reading the file. Exits 1 if any site failed.
    """
    from tabulate import tabulate

    from qlrf_pipelines.sites import SitesFileError, load_sites
    from qlrf_pipelines.site_checks import check_site

    try:
        parsed = load_sites(settings.sites_file())
    except SitesFileError as exc:
        raise click.ClickException(str(exc)) from None
    rows = [check_site(parsed, site) for site in parsed.sites]
    click.echo(tabulate([(r.site_id, r.provider, r.status, f"{r.seconds:.2f}", r.detail) for r in rows],
                        headers=["site", "provider", "status", "seconds", "detail"]))
    if any(r.status != "ok" for r in rows):
        raise SystemExit(1)


@main.command("import")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--image", "image_ref", help="The image the files belong to (digest, provider image id or reference).")
@click.option("--sample", is_flag=True, help="Import the bundled sample files (scans, SBOMs and provenance).")
def import_files(files: tuple[str, ...], image_ref: str | None, sample: bool) -> None:
    """Import Trivy / Grype reports, SPDX / CycloneDX SBOMs and SLSA provenance into the lake.

    Each file is detected by content and lands as its own lake snapshot; the same content
    imported again is a no-op. The warehouse tables (image_vulnerabilities, image_components,
    image_builds) update at the next warehouse build. Exits 1 if any file was rejected.
    Alternatively drop files into QLRF_HOME/inbox/: inbox_sensor imports them.
    `--sample` (instead of FILES) imports the files bundled with the sample estate.
    """
    from qlrf_pipelines.supply_chain.landing import land_file
    from qlrf_pipelines.supply_chain.records import ImportRejected

    if sample and files:
        raise click.UsageError("give FILES or --sample, not both")
    if sample:
        if image_ref:
            raise click.UsageError("--image does not apply to --sample: the sample files name their images")
        sample_dir = settings.BUNDLED_SITES_FILE.parent / "supply_chain"
        files = tuple(str(path) for path in sorted(sample_dir.glob("*.json")))
        if not files:
            raise click.ClickException(f"no sample files in {sample_dir}")
    elif not files:
        raise click.UsageError("give one or more FILES, or --sample")

    lake_dir = settings.paths().lake_dir
    rejected = 0
    for name in files:
        try:
            landed = land_file(lake_dir, name, image_ref=image_ref)
        except ImportRejected as exc:
            rejected += 1
            click.echo(f"rejected  {exc}", err=True)
            continue
        if landed.duplicate:
            click.echo(f"unchanged {name}: {landed.format}, same content already imported ({landed.import_id[:12]})")
            continue
        click.echo(
            f"imported  {name}: {landed.format} for {landed.image_ref}: {landed.vulnerabilities} vulnerabilities, "
            f"{landed.components} components, {landed.builds} builds"
        )
        for warning in landed.warnings:
            click.echo(f"          warning: {warning}")
    if rejected:
        raise SystemExit(1)


@main.command()
@click.option("--provider", type=click.Choice(["aws", "azure", "gcp", "vsphere", "kubernetes"]), help="Only this provider.")
def permissions(provider: str | None) -> None:
    """Print the read-only permissions each live connector needs (for least-privilege credentials)."""
    from qlrf_pipelines.connectors.live import live_module

    for name in [provider] if provider else ["aws", "azure", "gcp", "vsphere", "kubernetes"]:
        click.echo(f"{name}:")
        for kind, items in live_module(name).READ_PERMISSIONS.items():
            click.echo(f"  {kind}:")
            for item in items:
                click.echo(f"    - {item}")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
def dev(dagster_args: tuple[str, ...]) -> None:
    """Start the Dagster UI and daemon (`dagster dev -w workspace.yaml`) on this QLRF_HOME."""
    from qlrf_pipelines.instance import ensure_dagster_home
    from qlrf_pipelines.resources.dbt import ensure_manifest

    ensure_dagster_home(settings.paths())
    ensure_manifest()
    workspace = settings.REPO_DIR / "workspace.yaml"
    command = ["dagster", "dev", "-w", str(workspace), *dagster_args]
    click.echo(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']} {' '.join(command)}")
    os.execvp(command[0], command)


from qlrf_pipelines.cli_agents import agents, ask, tools  # noqa: E402
from qlrf_pipelines.cli_compliance import evidence, waivers  # noqa: E402
from qlrf_pipelines.cli_images import blast_radius, images  # noqa: E402
from qlrf_pipelines.cli_tasks import audit, tasks, tick  # noqa: E402

main.add_command(tasks)
main.add_command(audit)
main.add_command(tick)
main.add_command(images)
main.add_command(blast_radius)
main.add_command(waivers)
main.add_command(evidence)
main.add_command(tools)
main.add_command(agents)
main.add_command(ask)


if __name__ == "__main__":
    main()
