"""Compliance waivers on the local PostgreSQL server: the 0003 migration matches the table
definitions, add / revoke / in force behave as on SQLite, and two writers adding waivers at once
get distinct ids with one unbroken audit chain. Its own database, dropped afterwards."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from qlrf_pipelines.compliance import waivers
from qlrf_pipelines.control import ControlStore, PermissionDenied, Rbac
from qlrf_pipelines.control.db import VERSION_TABLE
from qlrf_pipelines.control.tables import metadata
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.integration

KNOWN = {"nist-800-53": frozenset({"CM-2", "SI-2"}), "soc2": frozenset({"CC6.1"})}
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
REASON = "vendor appliance, replaced in Q3"


@pytest.fixture(scope="module")
def pg_url():
    with temporary_database("qlrf_waivers") as name:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def test_waivers_on_postgres(pg_url):
    rbac = Rbac.load()
    with ControlStore.open(url=pg_url) as store:
        assert store.engine.dialect.name == "postgresql"
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
            assert compare_metadata(context, metadata) == []

        added = waivers.add(store, KNOWN, "cm-2", ["i-1", "i-2"], date(2026, 3, 31), "erin", REASON, rbac, now=T0)
        assert [(w.waiver_id, w.control_id, w.created_at) for w in added] == [
            ("W-000001", "CM-2", T0), ("W-000002", "CM-2", T0),
        ]
        with pytest.raises(PermissionDenied):
            waivers.add(store, KNOWN, "CM-2", ["i-3"], date(2026, 3, 31), "carol", REASON, rbac, now=T0)
        waivers.revoke(store, "W-000001", "alice", "the appliance was replaced", rbac, now=T0 + timedelta(days=1))

        assert [w.waiver_id for w in store.waivers_in_force(date(2026, 3, 2))] == ["W-000001", "W-000002"]
        assert [w.waiver_id for w in store.waivers_in_force(date(2026, 3, 3))] == ["W-000002"]
        assert store.waivers_in_force(date(2026, 4, 1)) == []
        assert isinstance(store.waivers_in_force(date(2026, 3, 3))[0].expires_on, date)
        assert [e["action"] for e in store.audit_events()] == [
            "waiver_added", "waiver_added", "waiver_refused", "waiver_revoked",
        ]
        exported = store.export_rows()["compliance_waivers"]
        assert [(r["waiver_id"], r["expires_on"], r["revoked_by"]) for r in exported] == [
            ("W-000001", "2026-03-31", "alice"), ("W-000002", "2026-03-31", None),
        ]
        assert store.verify_audit().ok


def test_concurrent_waivers_get_distinct_ids_and_one_chain(pg_url):
    rbac = Rbac.load()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def officer(user: str, asset_prefix: str) -> None:
        try:
            with ControlStore.open(url=pg_url) as own:  # its own engine, as another process would have
                barrier.wait()
                for n in range(10):
                    waivers.add(own, KNOWN, "SI-2", [f"{asset_prefix}-{n}"], date(2099, 1, 1), user, REASON, rbac)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=officer, args=args) for args in (("erin", "a"), ("alice", "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with ControlStore.open(url=pg_url) as store:
        concurrent = [w for w in waivers.list_waivers(store) if w.control_id == "SI-2"]
        assert len(concurrent) == len({w.waiver_id for w in concurrent}) == 20
        assert store.verify_audit().ok
