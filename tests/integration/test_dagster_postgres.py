"""A real job against the PostgreSQL server on this machine through dagster-postgres.

The test creates its own database and drops it afterwards, so it never touches other data.
"""

import psycopg2
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, instance_for_test

from qlrf_pipelines.definitions import build_definitions
from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from tests.support.postgres import ADMIN, temporary_database

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_database():
    with temporary_database("qlrf_test") as name:
        yield name


def test_discovery_job_runs_on_dagster_postgres(pg_database, tmp_path):
    url = f"postgresql://postgres@127.0.0.1:5432/{pg_database}"
    with instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"

        defs = build_definitions()
        job = defs.resolve_job_def("discover_sites_job")
        estate = EstateResource(home=str(tmp_path / "home"), sites_file=str(BUNDLED_SITES_FILE))
        result = job.execute_in_process(instance=instance, partition_key="gcp-prod-euw1", resources={"estate": estate})
        assert result.success
        run_id = result.run_id

    # Read everything back through a fresh instance on the same database: it really persisted.
    with instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as reopened:
        assert isinstance(reopened, DagsterInstance)
        run = reopened.get_run_by_id(run_id)
        assert run is not None and run.is_success
        assert run.tags.get("dagster/partition") == "gcp-prod-euw1"
        events = reopened.all_logs(run_id)
        kinds = {e.dagster_event.event_type for e in events if e.dagster_event}
        assert {DagsterEventType.RUN_START, DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.RUN_SUCCESS} <= kinds
        materialized = reopened.get_materialized_partitions(AssetKey(["lake", "raw_assets"]))
        assert materialized == {"gcp-prod-euw1"}
        latest = reopened.get_latest_materialization_event(AssetKey(["lake", "raw_assets"]))
        metadata = latest.asset_materialization.metadata
        assert metadata["site_id"].value == "gcp-prod-euw1"
        assert metadata["rows"].value > 0
        assert reopened.schedule_storage.all_instigator_state() == []
    with psycopg2.connect(**(ADMIN | {"dbname": pg_database})) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs WHERE run_id = %s", (run_id,))
        assert cursor.fetchone()[0] == 1
