"""The control store on the local PostgreSQL server: migrations, decisions, the journal and the
audit chain under concurrent writers. The module creates its own database and drops it afterwards."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import inspect

from qlrf_pipelines.control import ApprovalRefused, ControlStore, ExecutionRefused, Rbac
from qlrf_pipelines.control.db import VERSION_TABLE, current_revision, head_revision
from tests.support.postgres import temporary_database
from tests.unit.test_control_store import T0, allowed_verdicts, make_plan

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url():
    with temporary_database("qlrf_ctl") as name:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="module")
def store(pg_url):
    with ControlStore.open(url=pg_url) as opened:
        yield opened


@pytest.fixture
def rbac() -> Rbac:
    return Rbac.load()


def test_migrations_ran(store, pg_url):
    assert store.engine.dialect.name == "postgresql"
    assert current_revision(store.engine) == head_revision()
    tables = set(inspect(store.engine).get_table_names())
    assert {"tasks", "task_plans", "approvals", "tool_invocations", "task_actions", "audit_events", "audit_chain_head", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # left free for dagster-postgres sharing the database
    with ControlStore.open(url=pg_url) as again:  # a second open does not migrate twice
        assert current_revision(again.engine) == head_revision()


def test_lifecycle_and_approval(store, rbac):
    plan = make_plan()
    task = store.create_task(plan, allowed_verdicts(), "drift_sensor", dedupe_key="pg-1")
    assert store.create_task(plan, allowed_verdicts(), "drift_sensor", dedupe_key="pg-1").task_id == task.task_id
    with pytest.raises(ApprovalRefused, match="lacks permission"):
        store.approve(task.task_id, "bob", "ok", rbac)
    approval = store.approve(task.task_id, "alice", "ok", rbac, now=T0)
    assert approval.expires_at == T0 + timedelta(hours=72) and approval.decided_at == T0
    assert (task.task_id, plan.plan_hash()) in store.approved_tasks()
    with pytest.raises(ExecutionRefused, match="expired"):
        store.authorize_execution(task.task_id, rbac, now=T0 + timedelta(days=4))
    assert store.authorize_execution(task.task_id, rbac, now=T0 + timedelta(hours=1)) == plan
    store.mark_started(task.task_id, "run-pg")
    assert store.record_action(task.task_id, task.plan_hash, "canary", "i-001", "replace_image", False, "done", {"n": 1})
    assert not store.record_action(task.task_id, task.plan_hash, "canary", "i-001", "replace_image", False, "done", {"n": 2})
    store.record_phase(task.task_id, "canary", True, {})
    assert store.mark_finished(task.task_id, "succeeded").status == "succeeded"
    assert [a["details"] for a in store.actions(task.task_id)] == [{"n": 1}]
    assert [e["action"] for e in store.audit_events(task.task_id)] == [
        "created", "validated", "approval_refused", "approved", "execution_refused",
        "execution_authorized", "started", "action_recorded", "phase_done", "finished",
    ]
    store.record_tool_invocation(task.task_id, "query_drift", {"site": "x"}, 10, 5, 1)
    rows = store.export_rows()
    assert any(r["task_id"] == task.task_id and r["status"] == "succeeded" for r in rows["ai_tasks"])
    assert rows["ai_tool_invocations"][-1]["tool"] == "query_drift"
    assert store.verify_audit().ok


def test_modify_revokes_and_plan_tampering_is_refused(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    store.approve(task.task_id, "alice", "ok", rbac)
    modified = store.modify_plan(task.task_id, make_plan(to_version="1.4.1"), allowed_verdicts(), "bob", rbac)
    assert modified.approvals[0].revoked and modified.status == "pending_approval"
    store.approve(task.task_id, "dave", "ok", rbac)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE task_plans SET plan_json = replace(plan_json, 'web-base@1.4.1', 'web-base@6.6.6') WHERE task_id = %(t)s",
            {"t": task.task_id},
        )
    with pytest.raises(ExecutionRefused, match="plan hash mismatch"):
        store.authorize_execution(task.task_id, rbac)
    assert store.audit_events(task.task_id)[-1]["action"] == "execution_refused"


def test_concurrent_audit_appends_keep_the_chain(store, pg_url):
    before = store.verify_audit()
    assert before.ok
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(name: str) -> None:
        try:
            with ControlStore.open(url=pg_url) as own:  # its own engine, as another process would have
                barrier.wait()
                for n in range(40):
                    own.audit(name, "tick", details={"n": n})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("sensor", "cli")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    after = store.verify_audit()
    assert after.ok, after.problems
    assert after.checked == before.checked + 80
    assert [e["seq"] for e in store.audit_events()] == list(range(1, after.checked + 1))


def test_concurrent_task_creation_gets_distinct_ids(store, pg_url):
    created: list[str] = []
    errors: list[BaseException] = []

    def planner() -> None:
        try:
            with ControlStore.open(url=pg_url) as own:
                for _ in range(10):
                    created.append(own.create_task(make_plan(), allowed_verdicts(), "drift_sensor").task_id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(created)) == 20
    assert store.verify_audit().ok


def test_image_link_and_cascade_revoke_on_postgres(tmp_path, rbac):
    """Its own database, so the audit chain holds exactly the image decisions whatever ran before."""
    from qlrf_pipelines.control import image_registry as registry
    from qlrf_pipelines.control.image_registry import Promotion
    from qlrf_pipelines.images.catalog import read_catalog
    from qlrf_pipelines.images.lineage import Edge, LineageError
    from tests.unit.test_image_registry import (
        REGISTERED, TAG_STATUS, link_rows, promotion_rows, register_lineage, write_golden_lake,
    )

    # Arrange
    write_golden_lake(tmp_path / "lake")
    catalog = read_catalog(tmp_path / "lake")
    with temporary_database("qlrf_img") as name, ControlStore.open(
        url=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    ) as pg:
        assert pg.engine.dialect.name == "postgresql"

        # Act: register the depth-5 lineage (one link by provider image id), refuse a cycle, revoke with cascade
        register_lineage(pg, catalog, rbac)
        assert registry.link(pg, catalog, "/images/base-5", "ami-0base4", "rebuilt_from", "bob", "x", rbac) == (
            "base@5", "base@4", False,
        )
        with pytest.raises(LineageError, match=r"\(base@1 -> base@2 -> base@3 -> base@4 -> base@5 -> app@1\)$"):
            registry.link(pg, catalog, "base@1", "app@1", "derived_from", "bob", "x", rbac)
        registry.promote(pg, catalog, "other@1", "revoked", "dave", "bad build", rbac, now=T0)
        result = registry.promote(pg, catalog, "base@1", "revoked", "alice", "CVE", rbac, cascade=True, now=T0)

        # Assert
        assert [(r["child_image_id"], r["parent_image_id"], r["relation"]) for r in link_rows(pg)] == sorted(REGISTERED)
        assert result.promotions == [
            Promotion(2, "base@1", "deprecated", "revoked"),
            Promotion(3, "base@2", "production", "revoked", 2),
            Promotion(4, "base@3", "production", "revoked", 2),
            Promotion(5, "base@4", "testing", "revoked", 2),
            Promotion(6, "base@5", "testing", "revoked", 2),
            Promotion(7, "app@1", "testing", "revoked", 2),
        ]
        assert [(r["promotion_id"], r["image_id"], r["from_status"], r["cascade_from"]) for r in promotion_rows(pg)] == [
            (1, "other@1", "production", None), (2, "base@1", "deprecated", None), (3, "base@2", "production", 2),
            (4, "base@3", "production", 2), (5, "base@4", "testing", 2), (6, "base@5", "testing", 2),
            (7, "app@1", "testing", 2),
        ]
        assert all(r["promoted_at"] == T0 for r in promotion_rows(pg))
        assert registry.current_statuses(pg, catalog) == {image: "revoked" for image in TAG_STATUS}
        assert registry.lineage_edges(pg, catalog)[0] == Edge("base@1", "base@2", "patched_from", "discovered")
        events = pg.audit_events()
        assert [e["action"] for e in events] == ["image_linked"] * 4 + ["image_promoted"] * 7
        assert [e["seq"] for e in events] == list(range(1, 12))
        assert [e["details"].get("cascade_from") for e in events[4:]] == [None, None, 2, 2, 2, 2, 2]
        verification = pg.verify_audit()
        assert verification.ok and verification.checked == 11, verification.problems
        exported = pg.export_rows()
        assert [r["promotion_id"] for r in exported["image_promotions"]] == list(range(1, 8))
        assert exported["image_promotions"][0]["promoted_at"] == "2025-03-01T09:00:00.000000Z"


def test_tampering_is_detected_on_postgres(store):
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2")
    result = store.verify_audit()
    assert not result.ok and result.problems[0].startswith("seq 2: hash mismatch")
