"""Golden image decisions in the control store: lineage links and promotions, RBAC-checked and
audited in the same transaction as the change.

Which images exist, their tag status and the lineage their tags name come from the lake
(images.catalog.LakeImageCatalog), passed in by the caller; these functions add what people
decided on top, so a promotion's "from" status and a link's cycle check see both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select

from qlrf_pipelines.control import audit
from qlrf_pipelines.control.queries import _plain
from qlrf_pipelines.control.rbac import Permission, Rbac
from qlrf_pipelines.control.tables import image_lineage_links, image_promotions
from qlrf_pipelines.images.catalog import LakeImageCatalog
from qlrf_pipelines.images.lineage import Edge, LineageError, check_link, descendants, merge_edges
from qlrf_pipelines.images.promotion import PromotionError, check_transition

if TYPE_CHECKING:
    from qlrf_pipelines.control.store import ControlStore


@dataclass(frozen=True)
class Promotion:
    promotion_id: int | None  # None: nothing changed (the image already had that status)
    image_id: str
    from_status: str | None
    to_status: str
    cascade_from: int | None = None


@dataclass
class PromotionResult:
    promotions: list[Promotion]
    untouched_descendants: list[str]  # descendants left as they are (revoke without --cascade)


def _manual_edges(conn: Connection) -> list[Edge]:
    rows = conn.execute(select(image_lineage_links)).all()
    return [Edge(r.parent_image_id, r.child_image_id, r.relation, "manual") for r in rows]


def _promoted_status(conn: Connection) -> dict[str, str]:
    rows = conn.execute(select(image_promotions).order_by(image_promotions.c.promotion_id)).all()
    return {r.image_id: r.to_status for r in rows}  # the newest promotion per image wins


def lineage_edges(store: "ControlStore", catalog: LakeImageCatalog) -> list[Edge]:
    """Registered links merged over the lineage image tags name (a registered link wins)."""
    with store._read() as conn:
        return merge_edges(_manual_edges(conn), catalog.discovered_edges)


def current_statuses(store: "ControlStore", catalog: LakeImageCatalog) -> dict[str, str | None]:
    """Each golden image's status: its newest promotion, else what its tags say."""
    with store._read() as conn:
        return {**catalog.tag_status, **_promoted_status(conn)}


def link(
    store: "ControlStore",
    catalog: LakeImageCatalog,
    child: str,
    parent: str,
    relation: str,
    user: str,
    reason: str,
    rbac: Rbac,
    allow_unknown: bool = False,
    now: datetime | None = None,
) -> tuple[str, str, bool]:
    """Register `child` as built from `parent`. Returns (child id, parent id, changed).
    Refuses unknown images (unless allow_unknown), self links and cycles."""
    rbac.require(user, Permission.MANAGE_IMAGE_LINEAGE)
    child_id, parent_id = catalog.resolve(child), catalog.resolve(parent)
    if not allow_unknown:
        for given, resolved in ((child, child_id), (parent, parent_id)):
            if not catalog.knows(resolved):
                raise LineageError(
                    f"unknown image {given!r}: not a golden image id or provider image id in the latest discovery "
                    "(pass --allow-unknown to register lineage for an image not discovered yet)"
                )
    now = now or datetime.now(timezone.utc)
    with store._write() as conn:
        manual = _manual_edges(conn)
        existing = next((e for e in manual if e.child == child_id and e.parent == parent_id), None)
        if existing and existing.relation == relation:
            return child_id, parent_id, False
        others = [e for e in merge_edges(manual, catalog.discovered_edges) if (e.parent, e.child) != (parent_id, child_id)]
        check_link(others, child_id, parent_id, relation)
        conn.execute(
            delete(image_lineage_links).where(
                (image_lineage_links.c.child_image_id == child_id) & (image_lineage_links.c.parent_image_id == parent_id)
            )
        )
        conn.execute(
            image_lineage_links.insert().values(
                child_image_id=child_id, parent_image_id=parent_id, relation=relation,
                linked_by=user, reason=reason, linked_at=now,
            )
        )
        audit.append_event(
            conn, user, "image_linked", None,
            {"child_image_id": child_id, "parent_image_id": parent_id, "relation": relation, "reason": reason,
             "replaced_relation": existing.relation if existing else None},
        )
    return child_id, parent_id, True


def promote(
    store: "ControlStore",
    catalog: LakeImageCatalog,
    image: str,
    to_status: str,
    user: str,
    reason: str,
    rbac: Rbac,
    cascade: bool = False,
    allow_unknown: bool = False,
    now: datetime | None = None,
) -> PromotionResult:
    """Move a golden image to `to_status`. Revoking with `cascade` revokes every descendant too
    (each its own audited promotion pointing at this one); without it they are only reported."""
    rbac.require(user, Permission.PROMOTE_IMAGES)
    if not reason.strip():
        raise PromotionError("a promotion needs a reason (--reason)")
    if cascade and to_status != "revoked":
        raise PromotionError("--cascade applies to revoking only")
    image_id = catalog.resolve(image)
    if not allow_unknown and not catalog.knows(image_id):
        raise PromotionError(f"unknown image {image!r}: not a golden image in the latest discovery")
    now = now or datetime.now(timezone.utc)
    with store._write() as conn:
        statuses = {**catalog.tag_status, **_promoted_status(conn)}
        current = statuses.get(image_id)
        changed = check_transition(image_id, current, to_status)
        below = []
        if to_status == "revoked":
            edges = merge_edges(_manual_edges(conn), catalog.discovered_edges)
            below = [d for d, _depth, _path in descendants(edges, image_id)]
        done: list[Promotion] = []
        if changed:
            root_id = _insert(conn, image_id, current, to_status, user, reason, now, None)
            done.append(Promotion(root_id, image_id, current, to_status))
        else:
            # already revoked: a cascade now still points at the revoke that made it so
            root_id = _latest_promotion_id(conn, image_id)
            done.append(Promotion(None, image_id, current, to_status))
        untouched = []
        for child in below:
            child_status = statuses.get(child)
            if child_status == "revoked":
                continue
            if not cascade:
                untouched.append(child)
                continue
            pid = _insert(conn, child, child_status, "revoked", user, f"cascade from {image_id}: {reason}", now, root_id)
            done.append(Promotion(pid, child, child_status, "revoked", root_id))
    return PromotionResult(done, untouched)


def _latest_promotion_id(conn: Connection, image_id: str) -> int | None:
    row = conn.execute(
        select(image_promotions.c.promotion_id)
        .where(image_promotions.c.image_id == image_id)
        .order_by(image_promotions.c.promotion_id.desc())
        .limit(1)
    ).first()
    return int(row[0]) if row else None


def _insert(
    conn: Connection, image_id: str, current: str | None, to_status: str, user: str, reason: str,
    now: datetime, cascade_from: int | None,
) -> int:
    result = conn.execute(
        image_promotions.insert().values(
            image_id=image_id, from_status=current, to_status=to_status, promoted_by=user,
            reason=reason, promoted_at=now, cascade_from=cascade_from,
        )
    )
    promotion_id = int(result.inserted_primary_key[0])
    audit.append_event(
        conn, user, "image_promoted", None,
        {"promotion_id": promotion_id, "image_id": image_id, "from_status": current, "to_status": to_status,
         "reason": reason, "cascade_from": cascade_from},
    )
    return promotion_id


def export_rows(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """image_lineage_links and image_promotions as JSON-able rows for the lake."""
    links = conn.execute(
        select(image_lineage_links).order_by(image_lineage_links.c.child_image_id, image_lineage_links.c.parent_image_id)
    ).all()
    promotions = conn.execute(select(image_promotions).order_by(image_promotions.c.promotion_id)).all()
    return {
        "image_lineage_links": [_plain(dict(r._mapping)) for r in links],
        "image_promotions": [_plain(dict(r._mapping)) for r in promotions],
    }
