"""What a run built, read back from the warehouse: printed by `qlrf run` and `qlrf summary`."""

from __future__ import annotations

from pathlib import Path

from qlrf_pipelines.warehouse import query, render

EXAMPLE_QUERY = (
    "SELECT site_id, severity, count(*) AS items FROM drift_items GROUP BY ALL ORDER BY site_id, severity"
)


def summary_text(warehouse_path: Path) -> str:
    sites = query(
        warehouse_path,
        "SELECT site_id, provider, environment, asset_count, last_snapshot_at FROM sites ORDER BY site_id",
    )
    assets = query(
        warehouse_path,
        "SELECT provider, kind, count(*) AS assets FROM assets GROUP BY ALL ORDER BY provider, kind",
    )
    images = query(
        warehouse_path,
        "SELECT count(DISTINCT family) AS families, count(*) AS golden_images, "
        "count(*) FILTER (WHERE is_current) AS current, "
        "(SELECT count(*) FROM image_lineage) AS lineage_links, "
        "(SELECT count(DISTINCT vulnerability_id) FROM image_vulnerabilities) AS cves, "
        "(SELECT count(DISTINCT image_id) FROM image_components) AS with_sbom, "
        "(SELECT count(DISTINCT image_id) FROM image_builds) AS with_provenance "
        "FROM golden_images",
    )
    # the most severe CVE reaching the most running assets: a blast-radius example worth trying
    widest_cve = query(
        warehouse_path,
        "SELECT vulnerability_id FROM v_cve_blast_radius GROUP BY vulnerability_id ORDER BY "
        "min(CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END), "
        "count(DISTINCT asset_id) DESC, vulnerability_id LIMIT 1",
    )
    drift = query(
        warehouse_path,
        "SELECT severity, drift_type, count(*) AS items FROM drift_items GROUP BY severity, drift_type "
        "ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, drift_type",
    )
    total_drift = sum(row[-1] for row in drift.rows)
    parts = [
        f"Sites ({len(sites.rows)}):",
        render(sites),
        "",
        "Assets per provider:",
        render(assets),
        "",
        "Golden images:",
        render(images),
        "",
        f"Drift items ({total_drift}):",
        render(drift),
        "",
        f"Warehouse: {warehouse_path}",
        "Try:",
        f'  duckdb {warehouse_path} "{EXAMPLE_QUERY}"',
        f'  qlrf query "{EXAMPLE_QUERY}"',
        "  qlrf images tree",
    ]
    if widest_cve.rows:
        parts.append(f"  qlrf blast-radius --cve {widest_cve.rows[0][0]}")
    return "\n".join(parts)
