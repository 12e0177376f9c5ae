"""Blast radius questions over the warehouse: which images and running assets a bad CVE or a bad
image reaches through lineage. SQL only, read-only; the CLI and (later) planner tools call these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qlrf_pipelines.warehouse import QueryResult, query

CVE_SQL = """
select vulnerability_id, severity, package_name, vulnerable_version, fixed_version, source_image_id,
       image_id, depth, path_text, evidence, image_status, asset_id, asset_name, site_id, provider,
       environment, asset_state, is_production
from cve_blast_radius(?)
order by depth, image_id, site_id, asset_name
"""

# An image is bad: it and every image below it in the lineage, whatever their packages.
IMAGE_SQL = """
with recursive start as (
    select coalesce(
        (select image_id from golden_images where image_id = ?1),
        (select min(image_id) from image_artifacts where provider_image_id = ?1 or lower(provider_image_id) = lower(?1)),
        ?1
    ) as image_id
),
down(image_id, depth, path) as (
    select image_id, 0, [image_id] from start
    union all
    select lineage.child_image_id, down.depth + 1, list_append(down.path, lineage.child_image_id)
    from down
    join image_lineage as lineage on lineage.parent_image_id = down.image_id
    where not list_contains(down.path, lineage.child_image_id)
),
affected as (
    select image_id, min(depth) as depth, arg_min(path, depth) as path from down group by image_id
)
select
    affected.image_id, affected.depth, array_to_string(affected.path, ' > ') as path_text,
    case when affected.depth = 0 then 'the image' else 'descendant' end as evidence,
    golden.status as image_status, assets.asset_id, assets.name as asset_name, assets.site_id,
    assets.provider, assets.environment, assets.state as asset_state,
    coalesce(lower(assets.environment) in ('production', 'prod'), false) as is_production
from affected
left join golden_images as golden on golden.image_id = affected.image_id
left join assets on assets.image_id = affected.image_id and assets.state is distinct from 'terminated'
order by affected.depth, affected.image_id, assets.site_id, assets.name
"""


@dataclass
class BlastRadius:
    subject: str
    rows: list[dict[str, Any]]
    images: list[dict[str, Any]] = field(default_factory=list)
    by_site: list[dict[str, Any]] = field(default_factory=list)

    @property
    def asset_ids(self) -> set[str]:
        return {r["asset_id"] for r in self.rows if r.get("asset_id")}

    @property
    def production_assets(self) -> int:
        return len({r["asset_id"] for r in self.rows if r.get("asset_id") and r.get("is_production")})


def _dicts(result: QueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, row)) for row in result.rows]


def summarise(subject: str, rows: list[dict[str, Any]]) -> BlastRadius:
    """Per affected image (depth, path, evidence, running assets) and per (site, environment)."""
    images: dict[str, dict[str, Any]] = {}
    sites: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        image = images.setdefault(
            row["image_id"],
            {"image_id": row["image_id"], "status": row.get("image_status"), "depth": row["depth"],
             "evidence": row["evidence"], "path": row["path_text"], "assets": set(), "production_assets": set()},
        )
        if row.get("asset_id"):
            image["assets"].add(row["asset_id"])
            if row.get("is_production"):
                image["production_assets"].add(row["asset_id"])
            site = sites.setdefault(
                (row["site_id"], row.get("environment") or ""),
                {"site_id": row["site_id"], "environment": row.get("environment"), "provider": row.get("provider"),
                 "assets": set(), "images": set()},
            )
            site["assets"].add(row["asset_id"])
            site["images"].add(row["image_id"])
    image_rows = [
        {**{k: v for k, v in i.items() if k not in ("assets", "production_assets")},
         "assets_running": len(i["assets"]), "production_assets": len(i["production_assets"])}
        for i in images.values()
    ]
    site_rows = [
        {"site_id": s["site_id"], "environment": s["environment"], "provider": s["provider"],
         "assets": len(s["assets"]), "images": ", ".join(sorted(s["images"]))}
        for s in sorted(sites.values(), key=lambda s: (s["site_id"], s["environment"] or ""))
    ]
    return BlastRadius(subject, rows, image_rows, site_rows)


def cve_blast_radius(warehouse: Path, cve: str) -> BlastRadius:
    return summarise(cve, _dicts(query(warehouse, CVE_SQL, [cve.strip()])))


def image_blast_radius(warehouse: Path, image: str) -> BlastRadius:
    return summarise(image, _dicts(query(warehouse, IMAGE_SQL, [image.strip()])))
