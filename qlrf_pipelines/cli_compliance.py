"""`qlrf waivers ...` and `qlrf evidence ...`: accepted compliance failures, and evidence packs an
auditor can take away.

Waivers are decisions (control store, RBAC, audit log). Evidence packs read only the lake, never
the warehouse, so an export works while a run holds DuckDB open and reads exactly the history
that was recorded.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import click

from qlrf_pipelines import settings
from qlrf_pipelines.cli_tasks import _fail, _rbac, _store

TAKES_EFFECT = "Evaluations from the next `qlrf run` on report the failure as waived (never as passed)."


def _known_controls():
    from qlrf_pipelines.compliance.catalog import CatalogError, load_catalog
    from qlrf_pipelines.compliance.waivers import catalog_controls

    try:
        return catalog_controls(load_catalog())
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.group()
def waivers() -> None:
    """Compliance waivers: accept that an asset fails a control until a date (RBAC, audited)."""


@waivers.command("add")
@click.option("--control", "control_id", required=True, help="Control id of the compliance catalog (e.g. CM-2, CC6.1).")
@click.option("--framework", "framework_id", help="Only in this framework (default: the control id in every framework).")
@click.option("--asset", "asset_ids", multiple=True, required=True, help="Asset id; repeat for several assets.")
@click.option("--until", "until", required=True, help="Last day the waiver applies (YYYY-MM-DD, UTC, inclusive).")
@click.option("--user", required=True, help="Who accepts the failure (must hold MANAGE_WAIVERS).")
@click.option("--reason", required=True, help="Why the failure is accepted (at least 10 characters; audited).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def add(control_id: str, framework_id: str | None, asset_ids: tuple[str, ...], until: str, user: str, reason: str,
        as_json: bool) -> None:
    """Waive --control for each --asset through --until. One waiver per asset."""
    from qlrf_pipelines.compliance import waivers as registry
    from qlrf_pipelines.control.errors import ControlError

    expires = _day(until)
    known = _known_controls()
    with _store() as store:
        try:
            added = registry.add(store, known, control_id, asset_ids, expires, user, reason, _rbac(),
                                 framework_id=framework_id)
        except ControlError as exc:
            raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps([w.to_row() for w in added], indent=2))
        return
    scope = f"{added[0].framework_id} " if added[0].framework_id else ""
    for waiver in added:
        click.echo(f"added {waiver.waiver_id}: {scope}{waiver.control_id} waived for {waiver.asset_id} "
                   f"through {waiver.expires_on.isoformat()} (by {user})")
    click.echo(TAKES_EFFECT)


@waivers.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also revoked and expired waivers.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_(show_all: bool, fmt: str) -> None:
    """Waivers in force today (UTC), or every waiver with --all."""
    from tabulate import tabulate

    from qlrf_pipelines.compliance import waivers as registry

    today = datetime.now(timezone.utc).date()
    with _store() as store:
        found = registry.list_waivers(store)
    if not show_all:
        found = [w for w in found if w.in_force(today)]
    if fmt == "json":
        click.echo(json.dumps([w.to_row() | {"state": w.state(today)} for w in found], indent=2))
        return
    if not found:
        click.echo("no waivers" if show_all else "no waivers in force (qlrf waivers list --all shows every waiver)")
        return
    rows = [
        (w.waiver_id, w.state(today), w.framework_id or "any", w.control_id, w.asset_id, w.expires_on.isoformat(),
         w.created_by, w.reason if len(w.reason) <= 60 else w.reason[:57] + "...")
        for w in found
    ]
    click.echo(tabulate(rows, headers=["waiver", "state", "framework", "control", "asset", "until", "by", "reason"]))


@waivers.command("revoke")
@click.argument("waiver_id")
@click.option("--user", required=True, help="Who withdraws the waiver (must hold MANAGE_WAIVERS).")
@click.option("--reason", required=True, help="Why (at least 10 characters; audited).")
def revoke(waiver_id: str, user: str, reason: str) -> None:
    """Withdraw WAIVER_ID from now on; the failure counts again at the next evaluation."""
    from qlrf_pipelines.compliance import waivers as registry
    from qlrf_pipelines.control.errors import ControlError

    with _store() as store:
        try:
            waiver = registry.revoke(store, waiver_id, user, reason, _rbac())
        except ControlError as exc:
            raise _fail(exc) from None
    click.echo(f"revoked {waiver.waiver_id} ({waiver.control_id} for {waiver.asset_id}) by {user}. "
               "The next `qlrf run` reports the failure again.")


@click.group()
def evidence() -> None:
    """Compliance evidence from the lake: export packs for auditors, verify the hash chains."""


@evidence.command("export")
@click.option("--framework", "framework_id", required=True, help="Framework id (cis-qlrf, soc2, nist-800-53, ...).")
@click.option("--at", "at", required=True,
              help="As of: YYYY-MM-DD (the end of that day, UTC), an ISO-8601 timestamp (naive = UTC) or `now`.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory to write the pack to.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["json", "csv", "oscal"]),
              help="Only these outputs (repeatable; default all). summary.json and MANIFEST.sha256 are always written.")
@click.option("--allow-broken-chain", is_flag=True,
              help="Export even if an evidence hash chain is broken; affected controls are marked `integrity: broken`.")
@click.option("--force", is_flag=True, help="Replace a pack already in --out (only the files its manifest lists).")
def export(framework_id: str, at: str, out: str, formats: tuple[str, ...], allow_broken_chain: bool, force: bool) -> None:
    """Write the evidence pack of a framework as of a date: per-control reports (JSON + CSV),
    failing assets, waivers applied, a summary and OSCAL assessment-results, with a SHA-256 manifest.

    Reads the lake's evidence and catalog history only, so the same --at always gives the same
    bytes. Exits 1 if an evidence chain is broken (naming the file, control and evidence id)
    unless --allow-broken-chain.
    """
    from qlrf_pipelines.compliance.export import EvidenceError, export_pack, iso, parse_moment

    try:
        moment = parse_moment(at)
        pack = export_pack(settings.paths().lake_dir, framework_id, moment, Path(out), formats=formats or None,
                           allow_broken_chain=allow_broken_chain, force=force)
    except EvidenceError as exc:
        raise click.ClickException(str(exc)) from None
    summary = pack.summary
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary["totals"].items()))
    click.echo(f"{framework_id} as of {iso(pack.as_of)}: {len(pack.controls)} controls ({counts})")
    for control in pack.controls:
        if control.integrity != "ok":
            click.echo(f"  integrity BROKEN: {control.control_id}: " + "; ".join(control.problems), err=True)
    click.echo(f"wrote {len(pack.files)} files to {Path(out).resolve()} (MANIFEST.sha256 lists their SHA-256)")


@evidence.command("verify")
@click.option("--framework", "framework_id", help="Only this framework's evidence.")
def verify(framework_id: str | None) -> None:
    """Recompute every evidence hash chain in the lake; exit 1 naming each broken row."""
    from qlrf_pipelines.compliance.export import EvidenceError, verify_lake

    try:
        report = verify_lake(settings.paths().lake_dir, framework_id)
    except EvidenceError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in report.problems:
        click.echo(f"BROKEN {problem}", err=True)
    click.echo(f"{report.rows} evidence rows in {report.chains} chains from {report.files} lake file(s): "
               + ("ok" if report.ok else f"{len(report.problems)} problem(s)"))
    if not report.ok:
        raise SystemExit(1)
