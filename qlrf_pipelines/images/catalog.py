"""What the lake says about golden images right now: which exist, their tag status, which provider
image ids they are published as, and the parents their tags name.

Read from each site's newest `images` snapshot in the lake, not the warehouse: the CLI decides
links and promotions while a run may be writing the warehouse (DuckDB lets one writer block
every reader), and the lake files are immutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from qlrf_pipelines.images.lineage import Edge, resolve
from qlrf_pipelines.lake import latest_snapshot_ids, snapshot_path

# When a golden image's artifacts disagree (revoked in one region, production elsewhere), the most
# severe status wins, as in the warehouse's int_golden_versions.
_STATUS_RANK = {"testing": 1, "production": 2, "deprecated": 3, "revoked": 4}
_COLUMNS = ("provider_image_id", "family", "version", "status", "parent_image", "parent_relation")


@dataclass
class LakeImageCatalog:
    tag_status: dict[str, str | None] = field(default_factory=dict)  # golden image id -> status
    provider_ids: dict[str, str] = field(default_factory=dict)  # provider image id -> golden image id
    discovered_edges: list[Edge] = field(default_factory=list)

    @property
    def golden_ids(self) -> set[str]:
        return set(self.tag_status)

    def resolve(self, ref: str) -> str:
        return resolve(ref.strip(), self.golden_ids, self.provider_ids)

    def knows(self, image_id: str) -> bool:
        return image_id in self.tag_status


def read_catalog(lake_dir: Path) -> LakeImageCatalog:
    catalog = LakeImageCatalog()
    parents: list[tuple[str, str, str]] = []
    for site, snapshot in sorted(latest_snapshot_ids(lake_dir, "images").items()):
        path = snapshot_path(lake_dir, "images", site, snapshot)
        names = set(pq.read_schema(path).names)
        table = pq.read_table(path, columns=[c for c in _COLUMNS if c in names])
        for row in table.to_pylist():
            family, version = row.get("family"), row.get("version")
            if not family or not version:
                continue
            image_id = f"{family}@{version}"
            catalog.provider_ids[row["provider_image_id"]] = image_id
            catalog.provider_ids.setdefault(row["provider_image_id"].lower(), image_id)
            status = row.get("status")
            known = catalog.tag_status.get(image_id)
            if image_id not in catalog.tag_status or _STATUS_RANK.get(status or "", 0) > _STATUS_RANK.get(known or "", 0):
                catalog.tag_status[image_id] = status
            if row.get("parent_image"):
                parents.append((image_id, row["parent_image"], row.get("parent_relation") or "derived_from"))
    seen: set[tuple[str, str]] = set()
    for child, parent_ref, relation in parents:
        parent = catalog.resolve(parent_ref)
        if (parent, child) in seen or parent == child:
            continue
        seen.add((parent, child))
        catalog.discovered_edges.append(Edge(parent, child, relation, "discovered"))
    return catalog


def _latest_control_rows(lake_dir: Path, entity: str) -> list[dict]:
    from qlrf_pipelines.control_export import CONTROL_SITE_ID

    snapshot = latest_snapshot_ids(lake_dir, entity).get(CONTROL_SITE_ID)
    if not snapshot:
        return []
    return pq.read_table(snapshot_path(lake_dir, entity, CONTROL_SITE_ID, snapshot)).to_pylist()


def lineage_from_lake(lake_dir: Path) -> tuple[list[Edge], dict[str, str | None]]:
    """Lineage edges and current statuses exactly as the warehouse builds them from the lake: the
    latest discovery plus the latest control store export (registered links, promotions)."""
    from qlrf_pipelines.images.lineage import merge_edges

    catalog = read_catalog(lake_dir)
    registered = [
        Edge(r["parent_image_id"], r["child_image_id"], r["relation"], "manual")
        for r in _latest_control_rows(lake_dir, "image_lineage_links")
    ]
    statuses: dict[str, str | None] = dict(catalog.tag_status)
    for row in sorted(_latest_control_rows(lake_dir, "image_promotions"), key=lambda r: r["promotion_id"]):
        statuses[row["image_id"]] = row["to_status"]
    return merge_edges(registered, catalog.discovered_edges), statuses
