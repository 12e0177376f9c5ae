"""Golden image decisions in the control store (control/image_registry.py) over a real SQLite store
and a LakeImageCatalog read from real lake snapshots: links, promotions, cascaded revokes, RBAC,
the audit chain and the export back to the lake."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from qlrf_pipelines.control import ControlStore, PermissionDenied, Rbac
from qlrf_pipelines.control import image_registry as registry
from qlrf_pipelines.control.image_registry import Promotion, PromotionResult
from qlrf_pipelines.control.tables import image_lineage_links, image_promotions
from qlrf_pipelines.control_export import write_control_snapshot
from qlrf_pipelines.images.catalog import LakeImageCatalog, lineage_from_lake, read_catalog
from qlrf_pipelines.images.lineage import Edge, LineageError
from qlrf_pipelines.images.promotion import PromotionError
from tests.unit.test_images_catalog import image_row, write_images

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
T0_ISO = "2025-03-01T09:00:00.000000Z"

# Tags name two edges (base@1 -> base@2, and base@2 -> base@3 by base@2's provider image id);
# people register the rest of base@1 -> ... -> base@5 -> app@1 and base@3 -> other@1.
DISCOVERED = [
    Edge("base@1", "base@2", "patched_from", "discovered"),
    Edge("base@2", "base@3", "derived_from", "discovered"),
]
REGISTERED = [  # (child, parent, relation)
    ("base@4", "base@3", "derived_from"),
    ("base@5", "base@4", "rebuilt_from"),
    ("app@1", "base@5", "derived_from"),
    ("other@1", "base@3", "derived_from"),
]
TAG_STATUS = {
    "base@1": "deprecated",
    "base@2": "production",
    "base@3": "production",  # production (aws) outranks testing (azure)
    "base@4": "testing",
    "base@5": "testing",
    "app@1": "testing",
    "other@1": "production",
}


def write_golden_lake(lake_dir: Path) -> None:
    """Two sites' images snapshots; base@3's tag names its parent by base@2's AMI id."""
    write_images(lake_dir, "aws-a", [
        image_row("aws-a", "ami-0base1", "base", "1", "deprecated"),
        image_row("aws-a", "ami-0base2", "base", "2", "production", "base@1", "patched_from"),
        image_row("aws-a", "ami-0base3", "base", "3", "production"),
        image_row("aws-a", "ami-0base4", "base", "4", "testing"),
        image_row("aws-a", "ami-0other1", "other", "1", "production"),
    ], at=T0)
    write_images(lake_dir, "azure-b", [
        image_row("azure-b", "/images/base-2", "base", "2", "production"),
        image_row("azure-b", "/images/base-3", "base", "3", "testing", "ami-0base2"),
        image_row("azure-b", "/images/base-5", "base", "5", "testing"),
        image_row("azure-b", "/images/app-1", "app", "1", "testing"),
    ], at=T0)


@pytest.fixture(autouse=True)
def _local_lake_only(monkeypatch):
    monkeypatch.delenv("QLRF_LAKE_URI", raising=False)


@pytest.fixture
def rbac() -> Rbac:
    return Rbac.load()  # the bundled file: alice, dave approvers; bob operator; carol auditor


@pytest.fixture
def store(tmp_path):
    with ControlStore.open(home=tmp_path / "home") as opened:
        yield opened


@pytest.fixture
def lake_dir(tmp_path) -> Path:
    lake = tmp_path / "lake"
    write_golden_lake(lake)
    return lake


@pytest.fixture
def catalog(lake_dir) -> LakeImageCatalog:
    return read_catalog(lake_dir)


def register_lineage(store: ControlStore, catalog: LakeImageCatalog, rbac: Rbac) -> None:
    for child, parent, relation in REGISTERED:
        assert registry.link(store, catalog, child, parent, relation, "bob", "built by the pipeline", rbac, now=T0)[2]


def link_rows(store: ControlStore) -> list[dict]:
    with store.engine.connect() as conn:
        query = select(image_lineage_links).order_by(image_lineage_links.c.child_image_id)
        return [dict(r._mapping) for r in conn.execute(query)]


def promotion_rows(store: ControlStore) -> list[dict]:
    with store.engine.connect() as conn:
        query = select(image_promotions).order_by(image_promotions.c.promotion_id)
        return [dict(r._mapping) for r in conn.execute(query)]


def actions(store: ControlStore) -> list[str]:
    return [e["action"] for e in store.audit_events()]


# ---------------------------------------------------------------- the catalog the tests run on
def test_the_lake_catalog(catalog):
    assert catalog.tag_status == TAG_STATUS
    assert catalog.discovered_edges == DISCOVERED
    assert catalog.resolve("/images/app-1") == "app@1"


# ---------------------------------------------------------------- link
def test_link_is_idempotent_and_a_relation_change_replaces_the_link(store, catalog, rbac):
    # Act / Assert: new, then the same again, then another relation for the same pair
    assert registry.link(store, catalog, "base@4", "base@3", "derived_from", "bob", "pipeline", rbac, now=T0) == (
        "base@4", "base@3", True,
    )
    assert registry.link(store, catalog, "base@4", "base@3", "derived_from", "bob", "again", rbac) == (
        "base@4", "base@3", False,
    )
    later = T0 + timedelta(hours=1)
    assert registry.link(store, catalog, "base@4", "base@3", "rebuilt_from", "alice", "rebuilt", rbac, now=later) == (
        "base@4", "base@3", True,
    )

    # Assert: one row, the newest decision
    assert link_rows(store) == [
        {"child_image_id": "base@4", "parent_image_id": "base@3", "relation": "rebuilt_from", "linked_by": "alice",
         "reason": "rebuilt", "linked_at": later},
    ]
    events = store.audit_events()
    assert [(e["action"], e["actor"], e["task_id"]) for e in events] == [
        ("image_linked", "bob", None), ("image_linked", "alice", None),
    ]
    assert events[0]["details"] == {"child_image_id": "base@4", "parent_image_id": "base@3", "relation": "derived_from",
                                    "reason": "pipeline", "replaced_relation": None}
    assert events[1]["details"]["replaced_relation"] == "derived_from"
    assert events[1]["details"]["relation"] == "rebuilt_from"
    assert store.verify_audit().ok


def test_link_by_provider_image_id_stores_golden_ids(store, catalog, rbac):
    # Act: the child by its Azure image id, the parent by its AMI id in another case
    result = registry.link(store, catalog, "/images/base-5", "AMI-0BASE4", "rebuilt_from", "bob", "x", rbac, now=T0)

    # Assert
    assert result == ("base@5", "base@4", True)
    assert [(r["child_image_id"], r["parent_image_id"]) for r in link_rows(store)] == [("base@5", "base@4")]
    assert store.audit_events()[-1]["details"]["child_image_id"] == "base@5"
    # the same pair by golden ids is the same link
    assert registry.link(store, catalog, "base@5", "base@4", "rebuilt_from", "bob", "x", rbac) == ("base@5", "base@4", False)


def test_an_unknown_image_is_refused_unless_allowed(store, catalog, rbac):
    with pytest.raises(LineageError, match=r"^unknown image 'ghost@1': not a golden image id"):
        registry.link(store, catalog, "ghost@1", "base@1", "derived_from", "bob", "x", rbac)
    with pytest.raises(LineageError, match=r"^unknown image 'ami-vendor'"):
        registry.link(store, catalog, "base@1", "ami-vendor", "derived_from", "bob", "x", rbac)
    assert link_rows(store) == [] and store.audit_events() == []

    result = registry.link(store, catalog, "ghost@1", "base@1", "derived_from", "bob", "x", rbac, allow_unknown=True)

    assert result == ("ghost@1", "base@1", True)
    assert registry.lineage_edges(store, catalog) == [
        Edge("base@1", "base@2", "patched_from", "discovered"),
        Edge("base@1", "ghost@1", "derived_from", "manual"),
        Edge("base@2", "base@3", "derived_from", "discovered"),
    ]


def test_a_cycle_through_a_discovered_edge_is_refused(store, catalog, rbac):
    # Arrange: base@3 descends from base@1 only through the tags (base@1 -> base@2 -> base@3)
    with pytest.raises(LineageError) as refused:
        # Act
        registry.link(store, catalog, "base@1", "ami-0base3", "derived_from", "bob", "x", rbac)

    # Assert
    assert str(refused.value) == (
        "linking base@1 to parent base@3 would make a cycle: base@3 already descends from base@1 "
        "(base@1 -> base@2 -> base@3)"
    )
    assert link_rows(store) == [] and store.audit_events() == []


def test_a_cycle_through_registered_links_is_refused(store, catalog, rbac):
    register_lineage(store, catalog, rbac)
    with pytest.raises(LineageError, match=r"\(base@2 -> base@3 -> base@4 -> base@5 -> app@1\)$"):
        registry.link(store, catalog, "base@2", "app@1", "patched_from", "bob", "x", rbac)
    assert len(link_rows(store)) == len(REGISTERED)


def test_relinking_a_discovered_pair_with_another_relation_is_not_a_cycle(store, catalog, rbac):
    assert registry.link(store, catalog, "base@2", "base@1", "rebuilt_from", "bob", "x", rbac)[2] is True
    assert registry.lineage_edges(store, catalog)[0] == Edge("base@1", "base@2", "rebuilt_from", "manual")


def test_a_self_link_and_an_unknown_relation_are_refused(store, catalog, rbac):
    with pytest.raises(LineageError, match="^base@2 cannot be its own parent$"):
        registry.link(store, catalog, "ami-0base2", "/images/base-2", "derived_from", "bob", "x", rbac)
    with pytest.raises(LineageError, match="^unknown relation 'copied_from'"):
        registry.link(store, catalog, "base@4", "base@3", "copied_from", "bob", "x", rbac)
    assert link_rows(store) == [] and store.audit_events() == []


# ---------------------------------------------------------------- RBAC
def test_rbac_refusals(store, catalog, rbac):
    with pytest.raises(PermissionDenied, match="user 'carol' lacks permission MANAGE_IMAGE_LINEAGE"):
        registry.link(store, catalog, "base@4", "base@3", "derived_from", "carol", "x", rbac)
    with pytest.raises(PermissionDenied, match="user 'carol' lacks permission PROMOTE_IMAGES"):
        registry.promote(store, catalog, "base@4", "production", "carol", "x", rbac)
    with pytest.raises(PermissionDenied, match="user 'bob' lacks permission PROMOTE_IMAGES"):
        registry.promote(store, catalog, "base@4", "production", "bob", "x", rbac)
    with pytest.raises(PermissionDenied, match="user 'mallory' lacks permission PROMOTE_IMAGES"):
        registry.promote(store, catalog, "base@4", "revoked", "mallory", "x", rbac, cascade=True)
    assert link_rows(store) == [] and promotion_rows(store) == [] and store.audit_events() == []

    # bob may register lineage; dave may promote
    assert registry.link(store, catalog, "base@4", "base@3", "derived_from", "bob", "x", rbac)[2]
    assert registry.promote(store, catalog, "base@4", "production", "dave", "x", rbac).promotions[0].promotion_id == 1


# ---------------------------------------------------------------- promote
def test_promote_testing_to_production(store, catalog, rbac):
    # Act
    result = registry.promote(store, catalog, "ami-0base4", "production", "alice", "passed soak", rbac, now=T0)

    # Assert
    assert result == PromotionResult([Promotion(1, "base@4", "testing", "production")], [])
    assert promotion_rows(store) == [
        {"promotion_id": 1, "image_id": "base@4", "from_status": "testing", "to_status": "production",
         "promoted_by": "alice", "reason": "passed soak", "promoted_at": T0, "cascade_from": None},
    ]
    assert registry.current_statuses(store, catalog) == TAG_STATUS | {"base@4": "production"}
    event = store.audit_events()[-1]
    assert (event["action"], event["actor"], event["task_id"]) == ("image_promoted", "alice", None)
    assert event["details"] == {"promotion_id": 1, "image_id": "base@4", "from_status": "testing",
                                "to_status": "production", "reason": "passed soak", "cascade_from": None}


def test_from_status_comes_from_tags_then_from_the_latest_promotion(store, catalog, rbac):
    first = registry.promote(store, catalog, "base@2", "deprecated", "alice", "superseded", rbac)
    second = registry.promote(store, catalog, "base@2", "production", "dave", "roll back", rbac)
    third = registry.promote(store, catalog, "base@2", "deprecated", "alice", "superseded again", rbac)

    assert [p.promotions for p in (first, second, third)] == [
        [Promotion(1, "base@2", "production", "deprecated")],  # the tag status
        [Promotion(2, "base@2", "deprecated", "production")],  # the store overrides the tag
        [Promotion(3, "base@2", "production", "deprecated")],
    ]
    with pytest.raises(PromotionError, match="^base@2 cannot go from deprecated to testing$"):
        registry.promote(store, catalog, "base@2", "testing", "alice", "x", rbac)
    assert registry.current_statuses(store, catalog)["base@2"] == "deprecated"


def test_promoting_to_the_current_status_changes_nothing(store, catalog, rbac):
    result = registry.promote(store, catalog, "base@3", "production", "alice", "already", rbac)
    assert result == PromotionResult([Promotion(None, "base@3", "production", "production")], [])
    assert promotion_rows(store) == [] and store.audit_events() == []


def test_revoked_is_final(store, catalog, rbac):
    registry.promote(store, catalog, "other@1", "revoked", "alice", "CVE-2025-0001", rbac)

    for target in ("testing", "production", "deprecated"):
        with pytest.raises(PromotionError, match="^other@1 is revoked; a revoked image cannot be promoted again$"):
            registry.promote(store, catalog, "other@1", target, "dave", "un-revoke", rbac)
    again = registry.promote(store, catalog, "other@1", "revoked", "dave", "again", rbac)

    assert again.promotions == [Promotion(None, "other@1", "revoked", "revoked")]
    assert [(r["image_id"], r["to_status"]) for r in promotion_rows(store)] == [("other@1", "revoked")]
    assert actions(store) == ["image_promoted"]


def test_promotion_refusals(store, catalog, rbac):
    with pytest.raises(PromotionError, match="needs a reason"):
        registry.promote(store, catalog, "base@4", "production", "alice", "   ", rbac)
    with pytest.raises(PromotionError, match="^--cascade applies to revoking only$"):
        registry.promote(store, catalog, "base@4", "deprecated", "alice", "x", rbac, cascade=True)
    with pytest.raises(PromotionError, match="^unknown image 'ghost@1'"):
        registry.promote(store, catalog, "ghost@1", "revoked", "alice", "x", rbac)
    with pytest.raises(PromotionError, match="^unknown status 'retired'"):
        registry.promote(store, catalog, "base@4", "retired", "alice", "x", rbac)
    assert promotion_rows(store) == [] and store.audit_events() == []

    outside = registry.promote(store, catalog, "ghost@1", "revoked", "alice", "x", rbac, allow_unknown=True)
    assert outside.promotions == [Promotion(1, "ghost@1", None, "revoked")]


# ---------------------------------------------------------------- revoke and cascade
def test_revoke_without_cascade_reports_the_descendants_it_left(store, catalog, rbac):
    # Arrange
    register_lineage(store, catalog, rbac)

    # Act
    result = registry.promote(store, catalog, "base@3", "revoked", "alice", "CVE-2025-1234", rbac, now=T0)

    # Assert
    assert result.promotions == [Promotion(1, "base@3", "production", "revoked")]
    assert result.untouched_descendants == ["base@4", "other@1", "base@5", "app@1"]  # breadth first
    statuses = registry.current_statuses(store, catalog)
    assert statuses["base@3"] == "revoked"
    assert {i: statuses[i] for i in result.untouched_descendants} == {
        "base@4": "testing", "other@1": "production", "base@5": "testing", "app@1": "testing",
    }
    assert len(promotion_rows(store)) == 1


def test_revoke_with_cascade_revokes_every_descendant_of_the_lineage(store, catalog, rbac):
    # Arrange: the depth-5 lineage, with other@1 already revoked on its own
    register_lineage(store, catalog, rbac)
    registry.promote(store, catalog, "other@1", "revoked", "dave", "bad build", rbac, now=T0)
    later = T0 + timedelta(days=1)

    # Act
    result = registry.promote(store, catalog, "base@1", "revoked", "alice", "CVE-2025-1234", rbac, cascade=True, now=later)

    # Assert
    root = 2
    assert result == PromotionResult(
        [
            Promotion(root, "base@1", "deprecated", "revoked"),
            Promotion(3, "base@2", "production", "revoked", root),
            Promotion(4, "base@3", "production", "revoked", root),
            Promotion(5, "base@4", "testing", "revoked", root),
            Promotion(6, "base@5", "testing", "revoked", root),
            Promotion(7, "app@1", "testing", "revoked", root),
        ],
        [],
    )
    rows = promotion_rows(store)
    assert [(r["promotion_id"], r["image_id"], r["cascade_from"]) for r in rows] == [
        (1, "other@1", None), (2, "base@1", None), (3, "base@2", 2), (4, "base@3", 2),
        (5, "base@4", 2), (6, "base@5", 2), (7, "app@1", 2),
    ]
    assert all(r["to_status"] == "revoked" and r["promoted_by"] == "alice" and r["promoted_at"] == later for r in rows[1:])
    assert {r["reason"] for r in rows[2:]} == {"cascade from base@1: CVE-2025-1234"}
    assert set(registry.current_statuses(store, catalog).values()) == {"revoked"}

    events = [e for e in store.audit_events() if e["action"] == "image_promoted"]
    assert [(e["details"]["image_id"], e["details"]["cascade_from"]) for e in events[1:]] == [
        ("base@1", None), ("base@2", 2), ("base@3", 2), ("base@4", 2), ("base@5", 2), ("app@1", 2),
    ]
    assert store.verify_audit().ok


def test_cascade_from_a_middle_image_leaves_the_ancestors(store, catalog, rbac):
    register_lineage(store, catalog, rbac)

    result = registry.promote(store, catalog, "/images/base-5", "revoked", "alice", "bad", rbac, cascade=True)

    assert [(p.image_id, p.cascade_from) for p in result.promotions] == [("base@5", None), ("app@1", 1)]
    statuses = registry.current_statuses(store, catalog)
    assert [statuses[i] for i in ("base@1", "base@2", "base@3", "base@4", "other@1")] == [
        "deprecated", "production", "production", "testing", "production",
    ]


# ---------------------------------------------------------------- audit, export, lake
def test_every_decision_is_audited_in_one_chain(store, catalog, rbac):
    register_lineage(store, catalog, rbac)
    registry.promote(store, catalog, "base@4", "production", "alice", "ok", rbac)
    registry.promote(store, catalog, "base@3", "revoked", "alice", "CVE", rbac, cascade=True)

    assert actions(store) == ["image_linked"] * 4 + ["image_promoted"] * 6  # 1 + the revoke and its 4 descendants
    verification = store.verify_audit()
    assert verification.ok, verification.problems
    assert verification.checked == 10


def test_export_rows_and_lineage_from_the_lake(store, catalog, rbac, lake_dir):
    # Arrange
    register_lineage(store, catalog, rbac)
    registry.link(store, catalog, "base@2", "base@1", "rebuilt_from", "bob", "rebuilt, not patched", rbac, now=T0)
    registry.promote(store, catalog, "base@4", "production", "alice", "ok", rbac, now=T0)
    registry.promote(store, catalog, "base@5", "revoked", "alice", "CVE", rbac, cascade=True, now=T0)

    # Act
    rows = store.export_rows()

    # Assert: both entities, timestamps as ISO text
    assert rows["image_lineage_links"] == [
        {"child_image_id": c, "parent_image_id": p, "relation": r, "linked_by": "bob", "reason": why, "linked_at": T0_ISO}
        for c, p, r, why in [
            ("app@1", "base@5", "derived_from", "built by the pipeline"),
            ("base@2", "base@1", "rebuilt_from", "rebuilt, not patched"),
            ("base@4", "base@3", "derived_from", "built by the pipeline"),
            ("base@5", "base@4", "rebuilt_from", "built by the pipeline"),
            ("other@1", "base@3", "derived_from", "built by the pipeline"),
        ]
    ]
    assert rows["image_promotions"] == [
        {"promotion_id": 1, "image_id": "base@4", "from_status": "testing", "to_status": "production",
         "promoted_by": "alice", "reason": "ok", "promoted_at": T0_ISO, "cascade_from": None},
        {"promotion_id": 2, "image_id": "base@5", "from_status": "testing", "to_status": "revoked",
         "promoted_by": "alice", "reason": "CVE", "promoted_at": T0_ISO, "cascade_from": None},
        {"promotion_id": 3, "image_id": "app@1", "from_status": "testing", "to_status": "revoked",
         "promoted_by": "alice", "reason": "cascade from base@5: CVE", "promoted_at": T0_ISO, "cascade_from": 2},
    ]

    # Act: land it in the lake and read the lineage back as the warehouse asset does
    write_control_snapshot(lake_dir, rows, now=T0 + timedelta(hours=1))
    edges, statuses = lineage_from_lake(lake_dir)

    # Assert
    assert edges == registry.lineage_edges(store, catalog) == [
        Edge("base@1", "base@2", "rebuilt_from", "manual"),  # the registered link wins over the tag
        Edge("base@2", "base@3", "derived_from", "discovered"),
        Edge("base@3", "base@4", "derived_from", "manual"),
        Edge("base@3", "other@1", "derived_from", "manual"),
        Edge("base@4", "base@5", "rebuilt_from", "manual"),
        Edge("base@5", "app@1", "derived_from", "manual"),
    ]
    assert statuses == registry.current_statuses(store, catalog) == TAG_STATUS | {
        "base@4": "production", "base@5": "revoked", "app@1": "revoked",
    }
