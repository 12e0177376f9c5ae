"""What a run built, read back from the warehouse: printed by `qlrf run` and `qlrf summary`."""

from __future__ import annotations

from pathlib import Path

from qlrf_pipelines.warehouse import query, render

# drift_items keeps every episode; the current drift is the open ones.
EXAMPLE_QUERY = (
    "SELECT site_id, drift_type, severity, count(*) AS items FROM drift_items WHERE status = 'open' "
    "GROUP BY ALL ORDER BY ALL"
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
        "SELECT severity, drift_type, count(*) AS items FROM drift_items WHERE status = 'open' "
        "GROUP BY severity, drift_type "
        "ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, drift_type",
    )
    total_drift = sum(row[-1] for row in drift.rows)
    # one row per framework: how its controls stood at the latest evaluation (worst check wins)
    compliance = query(
        warehouse_path,
        "WITH controls AS (SELECT DISTINCT framework_id, control_id, control_status FROM v_compliance_status) "
        "SELECT framework_id, count(*) AS controls, "
        "count(*) FILTER (WHERE control_status = 'pass') AS pass, "
        "count(*) FILTER (WHERE control_status = 'fail') AS fail, "
        "count(*) FILTER (WHERE control_status = 'waived') AS waived, "
        "count(*) FILTER (WHERE control_status IN ('error', 'not_assessed')) AS not_assessed "
        "FROM controls GROUP BY framework_id ORDER BY framework_id",
    )
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
        f"Drift items open now ({total_drift}):",
        render(drift),
        "",
        "Compliance controls at the latest evaluation (v_compliance_status; docs/compliance.md):",
        render(compliance),
        "",
        f"Warehouse: {warehouse_path}",
        "Try:",
        f'  duckdb {warehouse_path} "{EXAMPLE_QUERY}"',
        f'  qlrf query "{EXAMPLE_QUERY}"',
        "  qlrf images tree",
        "  qlrf drift --type config",
        "  qlrf evidence export --framework nist-800-53 --at now --out evidence-pack",
    ]
    if widest_cve.rows:
        parts.append(f"  qlrf blast-radius --cve {widest_cve.rows[0][0]}")
    return "\n".join(parts)
