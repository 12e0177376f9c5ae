"""`qlrf images ...` and `qlrf blast-radius`: golden image lineage, promotions and what a bad CVE
or image reaches."""

from __future__ import annotations

import json

import click

from qlrf_pipelines import settings
from qlrf_pipelines.cli_tasks import _fail, _rbac, _store
from qlrf_pipelines.models.vocabulary import IMAGE_STATUSES, LINEAGE_RELATIONS

TAKES_EFFECT = "The warehouse (golden_images, image_lineage, drift) shows it after the next `qlrf run`."


def _catalog():
    from qlrf_pipelines.images.catalog import read_catalog

    return read_catalog(settings.paths().lake_dir)


@click.group()
def images() -> None:
    """Golden images: lineage, promotions, lineage tree."""


@images.command("link")
@click.argument("child")
@click.option("--parent", required=True, help="The image CHILD was built from (golden image id or provider image id).")
@click.option(
    "--relation", type=click.Choice(LINEAGE_RELATIONS), default="derived_from",
    show_default=True,
)
@click.option("--user", required=True, help="Who registers the link (must hold MANAGE_IMAGE_LINEAGE).")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@click.option("--allow-unknown", is_flag=True, help="Allow images not (yet) seen by discovery.")
def link(child: str, parent: str, relation: str, user: str, reason: str, allow_unknown: bool) -> None:
    """Register CHILD as built from --parent. Cycles are refused."""
    from qlrf_pipelines.control import image_registry
    from qlrf_pipelines.control.errors import ControlError
    from qlrf_pipelines.images.lineage import LineageError

    catalog = _catalog()
    with _store() as store:
        try:
            child_id, parent_id, changed = image_registry.link(
                store, catalog, child, parent, relation, user, reason, _rbac(), allow_unknown=allow_unknown
            )
        except (LineageError, ControlError) as exc:
            raise _fail(exc) from None
    if changed:
        click.echo(f"linked {child_id} {relation} {parent_id} (by {user}). {TAKES_EFFECT}")
    else:
        click.echo(f"unchanged: {child_id} is already {relation} {parent_id}")


@images.command("promote")
@click.argument("image")
@click.option("--to", "to_status", required=True, type=click.Choice(IMAGE_STATUSES))
@click.option("--user", required=True, help="Who promotes (must hold PROMOTE_IMAGES).")
@click.option("--reason", required=True, help="Why (kept with the promotion and in the audit log).")
@click.option("--cascade", is_flag=True, help="With --to revoked: revoke every descendant image too.")
@click.option("--allow-unknown", is_flag=True, help="Allow an image not (yet) seen by discovery.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def promote(image: str, to_status: str, user: str, reason: str, cascade: bool, allow_unknown: bool, as_json: bool) -> None:
    """Move IMAGE to a lifecycle status (testing, production, deprecated, revoked)."""
    from dataclasses import asdict

    from qlrf_pipelines.control import image_registry
    from qlrf_pipelines.control.errors import ControlError
    from qlrf_pipelines.images.promotion import PromotionError

    catalog = _catalog()
    with _store() as store:
        try:
            result = image_registry.promote(
                store, catalog, image, to_status, user, reason, _rbac(), cascade=cascade, allow_unknown=allow_unknown
            )
        except (PromotionError, ControlError) as exc:
            raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps({"promotions": [asdict(p) for p in result.promotions],
                               "untouched_descendants": result.untouched_descendants}, indent=2))
        return
    for p in result.promotions:
        if p.promotion_id is None:
            click.echo(f"unchanged: {p.image_id} is already {p.to_status}")
        else:
            via = f" (cascade from promotion {p.cascade_from})" if p.cascade_from else ""
            click.echo(f"promoted {p.image_id}: {p.from_status or 'no status'} -> {p.to_status}{via} [#{p.promotion_id}]")
    if result.untouched_descendants:
        click.echo(
            f"{len(result.untouched_descendants)} descendant image(s) keep their status: "
            f"{', '.join(result.untouched_descendants)}. Re-run with --cascade to revoke them too."
        )
    if any(p.promotion_id for p in result.promotions):
        click.echo(TAKES_EFFECT)


@images.command("tree")
@click.argument("image", required=False)
def tree(image: str | None) -> None:
    """Print the lineage forest (or IMAGE's subtree) from the lake and the control store."""
    from qlrf_pipelines.control import image_registry
    from qlrf_pipelines.images.lineage import descendants, tree_markdown

    catalog = _catalog()
    with _store() as store:
        edges = image_registry.lineage_edges(store, catalog)
        statuses = image_registry.current_statuses(store, catalog)
    if image:
        root = catalog.resolve(image)
        keep = {root} | {d for d, _depth, _path in descendants(edges, root)}
        edges = [e for e in edges if e.parent in keep and e.child in keep]
        if not edges:
            click.echo(f"- **{root}** ({statuses.get(root) or 'no status'}): no descendants")
            return
    click.echo(tree_markdown(edges, statuses))


@click.command("blast-radius")
@click.option("--cve", help="A vulnerability id (CVE-..., GHSA-...).")
@click.option("--image", help="A golden image id or provider image id.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def blast_radius(cve: str | None, image: str | None, fmt: str) -> None:
    """What a bad CVE or image reaches: affected images through lineage, and the assets running them."""
    from tabulate import tabulate

    from qlrf_pipelines.images.blast_radius import cve_blast_radius, image_blast_radius
    from qlrf_pipelines.warehouse import WarehouseError

    if bool(cve) == bool(image):
        raise click.UsageError("give exactly one of --cve or --image")
    warehouse = settings.paths().warehouse_path
    try:
        radius = cve_blast_radius(warehouse, cve) if cve else image_blast_radius(warehouse, image)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from None
    if image and len(radius.images) == 1 and radius.images[0]["status"] is None and not radius.asset_ids:
        raise click.ClickException(f"{image}: not a golden image or provider image id the warehouse knows")
    if fmt == "json":
        from qlrf_pipelines.warehouse import _plain

        click.echo(json.dumps({"subject": radius.subject, "images": radius.images, "sites": radius.by_site,
                               "assets": [_plain(r) for r in radius.rows if r.get("asset_id")],
                               "asset_count": len(radius.asset_ids), "production_assets": radius.production_assets},
                              indent=2, default=str))
        return
    if not radius.images:
        click.echo(f"{radius.subject}: no imported scan reports it (nothing affected that QL-RF knows of)")
        return
    click.echo(f"Blast radius of {radius.subject}\n\nAffected images:")
    click.echo(tabulate([(i["image_id"], i["status"], i["depth"], i["evidence"], i["assets_running"],
                          i["production_assets"], i["path"]) for i in radius.images],
                        headers=["image", "status", "depth", "evidence", "assets", "production", "path"]))
    if radius.by_site:
        click.echo("\nRunning assets by site:")
        click.echo(tabulate([(s["site_id"], s["environment"], s["provider"], s["assets"], s["images"]) for s in radius.by_site],
                            headers=["site", "environment", "provider", "assets", "images"]))
    click.echo(
        f"\n{len(radius.images)} image(s), {len(radius.asset_ids)} running asset(s) in {len({s['site_id'] for s in radius.by_site})} "
        f"site(s), {radius.production_assets} in production."
    )
