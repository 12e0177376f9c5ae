"""What the lake says about golden images (images/catalog.py), read from real lake snapshots:
each site's newest `images` snapshot, the most severe status per golden image, provider image ids,
parents named by tags, and the control export merged on top (lineage_from_lake)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from qlrf_pipelines.control_export import write_control_snapshot
from qlrf_pipelines.images.catalog import LakeImageCatalog, lineage_from_lake, read_catalog
from qlrf_pipelines.images.lineage import Edge
from qlrf_pipelines.lake import snapshot_id_for, snapshot_path, to_table, write_snapshot

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _local_lake_only(monkeypatch):
    monkeypatch.delenv("QLRF_LAKE_URI", raising=False)


def image_row(site_id: str, provider_image_id: str, family: str | None, version: str | None, status: str | None,
              parent_image: str | None = None, parent_relation: str | None = None) -> dict:
    return {
        "provider_image_id": provider_image_id,
        "site_id": site_id,
        "provider": site_id.split("-")[0],
        "name": provider_image_id,
        "discovered_at": T0,
        "family": family,
        "version": version,
        "status": status,
        "parent_image": parent_image,
        "parent_relation": parent_relation,
    }


def write_images(lake_dir: Path, site_id: str, rows: list[dict], at: datetime = T0) -> str:
    snapshot = snapshot_id_for(at)
    write_snapshot(lake_dir, site_id, snapshot, {"images": to_table("images", rows, snapshot)}, remote=None)
    return snapshot


def test_an_empty_lake_has_no_images(tmp_path):
    catalog = read_catalog(tmp_path)
    assert catalog == LakeImageCatalog()
    assert catalog.golden_ids == set()
    assert lineage_from_lake(tmp_path) == ([], {})


def test_statuses_provider_ids_and_parents_across_two_sites(tmp_path):
    # Arrange
    write_images(tmp_path, "aws-a", [
        image_row("aws-a", "ami-0base1", "base", "1", "deprecated", "ami-vendor-ubuntu"),
        image_row("aws-a", "ami-0base2", "base", "2", "production", "base@1", "patched_from"),
        image_row("aws-a", "AMI-0BASE3", "base", "3", "testing", "ami-0base2"),
        image_row("aws-a", "ami-vendor-ubuntu", None, None, None),  # not a golden image
    ])
    write_images(tmp_path, "azure-b", [
        image_row("azure-b", "/images/base-3", "base", "3", "revoked", "base@2"),
        image_row("azure-b", "/images/app-1", "app", "1", None, "/IMAGES/BASE-3", "rebuilt_from"),
        image_row("azure-b", "/images/base-1", "base", "1", "production"),
    ])

    # Act
    catalog = read_catalog(tmp_path)

    # Assert
    assert catalog.tag_status == {
        "base@1": "deprecated",  # deprecated (aws) outranks production (azure)
        "base@2": "production",
        "base@3": "revoked",  # revoked (azure) outranks testing (aws)
        "app@1": None,
    }
    assert catalog.provider_ids == {
        "ami-0base1": "base@1",
        "ami-0base2": "base@2",
        "AMI-0BASE3": "base@3",
        "ami-0base3": "base@3",
        "/images/base-3": "base@3",
        "/images/app-1": "app@1",
        "/images/base-1": "base@1",
    }
    assert catalog.discovered_edges == [
        Edge("ami-vendor-ubuntu", "base@1", "derived_from", "discovered"),  # outside the catalog: kept as named
        Edge("base@1", "base@2", "patched_from", "discovered"),
        Edge("base@2", "base@3", "derived_from", "discovered"),  # provider id resolved, relation defaulted
        Edge("base@3", "app@1", "rebuilt_from", "discovered"),  # resolved case-insensitively
    ]
    assert catalog.golden_ids == {"base@1", "base@2", "base@3", "app@1"}
    assert catalog.knows("base@3") and not catalog.knows("ami-vendor-ubuntu")
    assert catalog.resolve("  ami-0BASE3 ") == "base@3"
    assert catalog.resolve("base@2") == "base@2"
    assert catalog.resolve("ghost@9") == "ghost@9"


def test_only_each_sites_newest_snapshot_counts(tmp_path):
    # Arrange: an older aws snapshot with an image and a parent that are gone from the newest one
    write_images(tmp_path, "aws-a", [
        image_row("aws-a", "ami-old", "old", "1", "production"),
        image_row("aws-a", "ami-0web1", "web", "1", "production", "old@1"),
    ], at=T0)
    write_images(tmp_path, "aws-a", [image_row("aws-a", "ami-0web1", "web", "1", "deprecated")], at=T0 + timedelta(days=1))
    write_images(tmp_path, "gcp-c", [image_row("gcp-c", "projects/p/global/images/web-1", "web", "1", "testing")],
                 at=T0 - timedelta(days=30))  # another site's only snapshot, however old

    # Act
    catalog = read_catalog(tmp_path)

    # Assert
    assert catalog.tag_status == {"web@1": "deprecated"}
    assert set(catalog.provider_ids) == {"ami-0web1", "projects/p/global/images/web-1"}
    assert catalog.discovered_edges == []


def test_a_status_outranks_no_status_whatever_the_order(tmp_path):
    write_images(tmp_path, "aws-a", [
        image_row("aws-a", "ami-1", "web", "1", None),
        image_row("aws-a", "ami-2", "web", "1", "testing"),
        image_row("aws-a", "ami-3", "web", "2", "production"),
        image_row("aws-a", "ami-4", "web", "2", None),
        image_row("aws-a", "ami-5", "web", "2", "testing"),
    ])
    assert read_catalog(tmp_path).tag_status == {"web@1": "testing", "web@2": "production"}


def test_self_parents_and_repeated_parents_give_one_edge_or_none(tmp_path):
    write_images(tmp_path, "aws-a", [
        image_row("aws-a", "ami-1", "web", "1", "production", "web@1"),  # names itself
        image_row("aws-a", "ami-2", "web", "2", "production", "web@1", "patched_from"),
        image_row("aws-a", "ami-3", "web", "2", "production", "ami-1", "rebuilt_from"),  # same pair again
    ])
    assert read_catalog(tmp_path).discovered_edges == [Edge("web@1", "web@2", "patched_from", "discovered")]


def test_tags_may_name_a_cycle(tmp_path):
    # Discovery does not refuse cycles: two images whose tags name each other give both edges.
    write_images(tmp_path, "aws-a", [
        image_row("aws-a", "ami-x", "x", "1", "testing", "y@1"),
        image_row("aws-a", "ami-y", "y", "1", "testing", "x@1"),
    ])
    assert read_catalog(tmp_path).discovered_edges == [
        Edge("y@1", "x@1", "derived_from", "discovered"),
        Edge("x@1", "y@1", "derived_from", "discovered"),
    ]


def test_a_snapshot_written_before_lineage_columns_existed_is_read(tmp_path):
    # Arrange: an images file without parent_image / parent_relation (an older schema)
    snapshot = snapshot_id_for(T0)
    table = to_table("images", [image_row("aws-a", "ami-1", "web", "1", "production")], snapshot)
    old = table.drop(["parent_image", "parent_relation"])
    path = snapshot_path(tmp_path, "images", "aws-a", snapshot)
    path.parent.mkdir(parents=True)
    pq.write_table(old, path)
    assert "parent_image" not in pq.read_schema(path).names

    # Act
    catalog = read_catalog(tmp_path)

    # Assert
    assert catalog.tag_status == {"web@1": "production"}
    assert catalog.discovered_edges == []


def test_lineage_from_lake_merges_the_latest_control_export(tmp_path):
    # Arrange: discovery says base@1 -> base@2 (derived_from); people registered the same pair as
    # patched_from and base@2 -> app@1, and promoted base@2 twice.
    write_images(tmp_path, "aws-a", [
        image_row("aws-a", "ami-1", "base", "1", "production"),
        image_row("aws-a", "ami-2", "base", "2", "testing", "base@1"),
        image_row("aws-a", "ami-3", "app", "1", "testing"),
    ])
    stale = {
        "image_lineage_links": [
            {"child_image_id": "app@1", "parent_image_id": "base@1", "relation": "derived_from", "linked_by": "bob",
             "reason": "old", "linked_at": "2026-10-01T00:00:00.000000Z"},
        ],
    }
    write_control_snapshot(tmp_path, stale, now=T0)
    latest = {
        "image_lineage_links": [
            {"child_image_id": "app@1", "parent_image_id": "base@2", "relation": "rebuilt_from", "linked_by": "bob",
             "reason": "built by pipeline 7", "linked_at": "2026-11-01T07:00:00.000000Z"},
            {"child_image_id": "base@2", "parent_image_id": "base@1", "relation": "patched_from", "linked_by": "bob",
             "reason": "CVE patch", "linked_at": "2026-11-01T07:00:00.000000Z"},
        ],
        "image_promotions": [
            {"promotion_id": 2, "image_id": "base@2", "from_status": "production", "to_status": "deprecated",
             "promoted_by": "alice", "reason": "superseded", "promoted_at": "2026-11-01T08:00:00.000000Z",
             "cascade_from": None},
            {"promotion_id": 1, "image_id": "base@2", "from_status": "testing", "to_status": "production",
             "promoted_by": "alice", "reason": "passed", "promoted_at": "2026-11-01T07:30:00.000000Z",
             "cascade_from": None},
            {"promotion_id": 3, "image_id": "ghost@1", "from_status": None, "to_status": "revoked",
             "promoted_by": "alice", "reason": "bad", "promoted_at": "2026-11-01T08:00:00.000000Z",
             "cascade_from": None},
        ],
    }
    write_control_snapshot(tmp_path, latest, now=T0 + timedelta(hours=2))

    # Act
    edges, statuses = lineage_from_lake(tmp_path)

    # Assert
    assert edges == [
        Edge("base@1", "base@2", "patched_from", "manual"),
        Edge("base@2", "app@1", "rebuilt_from", "manual"),
    ]
    assert statuses == {
        "base@1": "production",
        "base@2": "deprecated",  # the newest promotion by id, whatever the row order
        "app@1": "testing",
        "ghost@1": "revoked",
    }
