"""The software-defined assets themselves, through materialize(): site partitions, then dbt."""

import pytest
from dagster import AssetKey, DagsterEventType, materialize

from qlrf_pipelines.assets.discovery import build_discovery_assets
from qlrf_pipelines.assets.warehouse import build_warehouse_assets
from qlrf_pipelines.definitions import build_definitions
from qlrf_pipelines.resources.estate import EstateResource
from tests.conftest import sql
from tests.integration.test_bad_input import small_estate

pytestmark = pytest.mark.integration


def test_materialize_partitions_then_warehouse(tmp_path, dagster_instance, prepared_manifest):
    sites_file = small_estate(tmp_path / "estate", ["azure-prod-weu", "k8s-stg-gke"])
    estate = EstateResource(home=str(tmp_path / "home"), sites_file=str(sites_file))
    site_discovery, _ = build_discovery_assets(["azure-prod-weu", "k8s-stg-gke"])
    for site_id in ("azure-prod-weu", "k8s-stg-gke"):
        result = materialize([site_discovery], partition_key=site_id, resources={"estate": estate}, instance=dagster_instance)
        assert result.success
        metadata = result.asset_materializations_for_node("site_discovery")[1].metadata
        assert metadata["site_id"].value == site_id and metadata["rows"].value > 0

    assert dagster_instance.get_materialized_partitions(AssetKey(["lake", "raw_assets"])) >= {"azure-prod-weu", "k8s-stg-gke"}

    dbt = build_definitions().resources["dbt"]
    warehouse_models = build_warehouse_assets(prepared_manifest)
    built = materialize([warehouse_models], resources={"estate": estate, "dbt": dbt}, instance=dagster_instance)
    assert built.success
    checks = [e for e in built.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    assert len(checks) > 50
    failed = {e.event_specific_data.check_name: e.event_specific_data.severity.value for e in checks if not e.event_specific_data.passed}
    # the only failure is a warning: no production image has provenance and an SBOM until some are imported
    assert failed == {"production_images_have_provenance_and_sbom": "WARN"}
    home = tmp_path / "home"
    # drift_items carries the drift summary, read from the warehouse once dbt released it
    (drift,) = [m for m in built.asset_materializations_for_node("warehouse_models") if m.asset_key == AssetKey(["drift_items"])]
    open_items = sql(home, "SELECT count(*) FROM drift_items WHERE status = 'open'")[0][0]
    assert drift.metadata["open_items"].value == open_items > 0
    assert drift.metadata["opened_this_run"].value == open_items and drift.metadata["closed_this_run"].value == 0
    assert drift.metadata["open_config_drift"].value > 0  # the bundled rules were landed before the build
    assert drift.metadata["drift_trend"].value.startswith("![drift trend](data:image/png;base64,")
    assert sql(home, "SELECT site_id, asset_count FROM sites ORDER BY site_id") == [("azure-prod-weu", 50), ("k8s-stg-gke", 24)]
    gke_nodes = sql(home, "SELECT count(*) FROM assets WHERE site_id = 'k8s-stg-gke' AND kind = 'node' AND image_id IS NULL")
    assert gke_nodes == [(3,)], "GKE nodes boot GCP images, and no GCP site is in this estate"
