"""The control store on SQLite: task lifecycle, decisions and their refusals, the action journal."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from qlrf_pipelines.control import (
    ApprovalRefused,
    ControlStore,
    ExecutionRefused,
    InvalidTransition,
    PermissionDenied,
    PlanMismatch,
    Rbac,
    RbacError,
    TaskNotFound,
)
from qlrf_pipelines.control.db import VERSION_TABLE, current_revision, head_revision
from qlrf_pipelines.control.tables import metadata
from qlrf_pipelines.planning.plan import Plan
from qlrf_pipelines.policy.verdicts import Verdict

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


def make_plan(site_id: str = "aws-prod-use1", to_version: str = "1.4.0", requested_by: str = "drift_sensor", risk: str = "medium") -> Plan:
    """A valid plan: one canary phase of one asset, one wave of two."""
    ids = ["i-001", "i-002", "i-003"]
    targets = [
        {
            "asset_id": asset_id,
            "site_id": site_id,
            "provider": "aws",
            "name": f"web-{n}",
            "environment": "production",
            "from_image_ref": "ami-old",
            "from_image_id": "web-base@1.3.0",
            "to_image_ref": "ami-new",
            "to_image_id": f"web-base@{to_version}",
        }
        for n, asset_id in enumerate(ids)
    ]
    checks = [{"kind": "asset_running", "description": "the asset is running", "max_failed_share": 0.0}]
    return Plan.model_validate(
        {
            "task": {"intent": "Move web servers to the current golden image", "agent": "rule_based", "tools_used": [], "risk": risk, "requested_by": requested_by},
            "site_id": site_id,
            "environment": "production",
            "family": "web-base",
            "to_image_id": f"web-base@{to_version}",
            "change": f"move 3 assets from web-base@1.3.0 to web-base@{to_version}",
            "fleet_size": 30,
            "targets": targets,
            "phases": [
                {"name": "canary", "kind": "canary", "asset_ids": ids[:1], "health_checks": checks},
                {"name": "wave-1", "kind": "wave", "asset_ids": ids[1:], "health_checks": checks},
            ],
            "rollback": {"criteria": ["any failed health check"], "steps": [{"action": "restore_image", "description": "restore the previous image"}]},
            "evidence": {"drift_item_ids": ["d-1", "d-2", "d-3"], "snapshot_key": "snap-abc123", "snapshot_ids": {site_id: "20250301T000000Z"}, "query": "select * from drift_items"},
        }
    )


def allowed_verdicts() -> list[Verdict]:
    return [
        Verdict("schema", "plan.schema", True, "valid", "builtin"),
        Verdict("policy", "remediation.production_needs_canary", True, "canary present", "p-1a2b3c"),
        Verdict("safety", "safety.max_fleet_share", True, "10% of the fleet", "builtin"),
    ]


def denied_verdicts() -> list[Verdict]:
    return allowed_verdicts()[:1] + [Verdict("policy", "remediation.max_batch", False, "batch too large", "p-1a2b3c")]


@pytest.fixture
def rbac() -> Rbac:
    return Rbac.load()  # the bundled file: alice, dave approvers; bob operator; carol auditor


@pytest.fixture
def store(tmp_path):
    with ControlStore.open(home=tmp_path) as opened:
        yield opened


def actions_of(store: ControlStore, task_id: str) -> list[str]:
    return [e["action"] for e in store.audit_events(task_id)]


def last_event(store: ControlStore, task_id: str | None = None) -> dict:
    return store.audit_events(task_id)[-1]


# ---------------------------------------------------------------- opening and schema
def test_open_migrates_a_fresh_store_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("QLRF_CONTROL_URL", raising=False)
    with ControlStore.open(home=tmp_path) as store:
        assert current_revision(store.engine) == head_revision() == "0003"
        assert store.url.endswith(str(tmp_path / "control.sqlite"))
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    with ControlStore.open(home=tmp_path) as again:  # reopening is a no-op migration
        assert again.list_tasks() == []


def test_url_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_CONTROL_URL", f"sqlite:///{tmp_path / 'elsewhere.sqlite'}")
    with ControlStore.open(home=tmp_path / "ignored") as store:
        assert "elsewhere.sqlite" in store.url
    assert (tmp_path / "elsewhere.sqlite").exists()


def test_migrations_match_table_definitions(store):
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []


# ---------------------------------------------------------------- lifecycle
def test_task_lifecycle(store, rbac):
    plan = make_plan()
    task = store.create_task(plan, allowed_verdicts(), requested_by="drift_sensor", dedupe_key="k1", source_run_id="run-1")
    assert task.task_id == "T-000001"
    assert task.status == "pending_approval"
    assert (task.site_id, task.environment, task.family, task.risk) == ("aws-prod-use1", "production", "web-base", "medium")
    assert task.plan_version == 1 and task.plan_hash == plan.plan_hash() and task.plan_json == plan.canonical_json()
    assert task.plan() == plan
    assert task.plan_created_by == "drift_sensor" and task.snapshot_key == "snap-abc123"
    assert task.policy_version == "p-1a2b3c" and len(task.verdicts) == 3
    assert task.created_at.tzinfo is not None

    approval = store.approve(task.task_id, "alice", "looks right", rbac, now=T0)
    assert (approval.plan_version, approval.plan_hash, approval.snapshot_key) == (1, plan.plan_hash(), "snap-abc123")
    assert approval.expires_at == T0 + timedelta(hours=72)
    assert store.approved_tasks() == [(task.task_id, plan.plan_hash())]

    authorized = store.authorize_execution(task.task_id, rbac, now=T0 + timedelta(hours=1))
    assert authorized == plan
    running = store.mark_started(task.task_id, "dagster-run-7", plan_hash=plan.plan_hash())
    assert running.status == "running" and running.run_id == "dagster-run-7"
    assert store.approved_tasks() == []
    with pytest.raises(InvalidTransition):
        store.mark_started(task.task_id, "dagster-run-8")  # a second run cannot claim it
    store.record_phase(task.task_id, "canary", True, {"checked": 1})
    store.record_phase(task.task_id, "wave-1", True, {"checked": 2})
    done = store.mark_finished(task.task_id, "succeeded")
    assert done.status == "succeeded" and done.finished_at is not None
    assert store.mark_finished(task.task_id, "succeeded").status == "succeeded"  # repeat is a no-op
    with pytest.raises(InvalidTransition):
        store.mark_finished(task.task_id, "failed")

    assert actions_of(store, task.task_id) == [
        "created", "validated", "approved", "execution_authorized", "started", "phase_done", "phase_done", "finished"
    ]
    validated = store.audit_events(task.task_id)[1]["details"]
    assert validated["valid"] is True and validated["checked"] == 3 and validated["denied"] == []
    assert store.verify_audit().ok


def test_rollback_path(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    store.approve(task.task_id, "alice", "ok", rbac)
    store.authorize_execution(task.task_id, rbac)
    store.mark_started(task.task_id, "run-1")
    store.record_phase(task.task_id, "canary", False, {"failed": ["i-001"]})
    assert store.mark_rolled_back(task.task_id, {"restored": ["i-001"]}).status == "rolled_back"
    assert store.mark_finished(task.task_id, "rolled_back").finished_at is not None
    assert actions_of(store, task.task_id)[-3:] == ["phase_done", "rolled_back", "finished"]


def test_policy_denied_task_cannot_be_approved(store, rbac):
    task = store.create_task(make_plan(), denied_verdicts(), "drift_sensor")
    assert task.status == "policy_denied" and not task.plan_valid
    assert [v.rule for v in task.denied_verdicts] == ["remediation.max_batch"]
    assert store.audit_events(task.task_id)[1]["details"]["denied"][0]["rule"] == "remediation.max_batch"
    with pytest.raises(ApprovalRefused, match="policy_denied.*remediation.max_batch"):
        store.approve(task.task_id, "alice", "ok", rbac)
    assert store.list_tasks("policy_denied")[0].task_id == task.task_id


def test_empty_verdicts_are_refused(store):
    with pytest.raises(ValueError, match="validated"):
        store.create_task(make_plan(), [], "drift_sensor")


def test_dedupe_returns_the_existing_task(store):
    first = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor", dedupe_key="aws-prod-use1/web-base/1.4.0")
    again = store.create_task(make_plan(to_version="9.9.9"), allowed_verdicts(), "drift_sensor", dedupe_key="aws-prod-use1/web-base/1.4.0")
    other = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor", dedupe_key="other")
    undeduped = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    assert again.task_id == first.task_id and again.plan_hash == first.plan_hash
    assert [t.task_id for t in store.list_tasks()] == ["T-000001", "T-000002", "T-000003"]
    assert other.task_id == "T-000002" and undeduped.task_id == "T-000003"
    assert actions_of(store, first.task_id) == ["created", "validated"]


def test_get_and_list(store):
    with pytest.raises(TaskNotFound):
        store.get_task("T-999999")
    with pytest.raises(ValueError):
        store.list_tasks("bogus")
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    assert store.get_task(task.task_id) == task
    assert store.list_tasks("approved") == []
    assert task.to_dict()["task_id"] == task.task_id


# ---------------------------------------------------------------- approvals and refusals
def test_requester_cannot_approve_own_task(store, rbac):
    task = store.create_task(make_plan(requested_by="alice"), allowed_verdicts(), requested_by="alice")
    with pytest.raises(ApprovalRefused, match="'alice' requested task"):
        store.approve(task.task_id, "alice", "mine", rbac)
    event = last_event(store, task.task_id)
    assert event["action"] == "approval_refused" and event["actor"] == "alice"
    assert "requested" in event["details"]["reason"]
    assert store.get_task(task.task_id).status == "pending_approval"
    store.approve(task.task_id, "dave", "second pair of eyes", rbac)


@pytest.mark.parametrize(
    ("user", "expected"),
    [("bob", "lacks permission APPROVE_AI_TASKS"), ("carol", "lacks permission APPROVE_AI_TASKS"), ("mallory", "not listed")],
)
def test_approving_without_the_role_is_refused(store, rbac, user, expected):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    with pytest.raises(ApprovalRefused, match=expected):
        store.approve(task.task_id, user, "ok", rbac)
    with pytest.raises(ApprovalRefused, match=expected):
        store.reject(task.task_id, user, "no", rbac)
    events = store.audit_events(task.task_id)
    assert [e["action"] for e in events[-2:]] == ["approval_refused", "approval_refused"]
    assert events[-1]["actor"] == user and expected in events[-1]["details"]["reason"]
    assert store.get_task(task.task_id).approvals == []


def test_last_editor_cannot_approve(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    editor_rbac = Rbac.from_dict(
        {
            "roles": {"approver": {"permissions": ["APPROVE_AI_TASKS"]}, "operator": {"permissions": ["EXECUTE_AI_TASKS"]}},
            "users": {"erin": {"roles": ["approver", "operator"]}, "alice": {"roles": ["approver"]}},
        }
    )
    modified = store.modify_plan(task.task_id, make_plan(to_version="1.4.1"), allowed_verdicts(), "erin", editor_rbac)
    assert modified.plan_version == 2 and modified.plan_created_by == "erin"
    with pytest.raises(ApprovalRefused, match="'erin' last edited the plan"):
        store.approve(task.task_id, "erin", "my edit is fine", editor_rbac)
    assert last_event(store, task.task_id)["action"] == "approval_refused"
    assert store.approve(task.task_id, "alice", "ok", editor_rbac).plan_version == 2


def test_modify_needs_execute_permission(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    with pytest.raises(PermissionDenied, match="'alice' lacks permission EXECUTE_AI_TASKS"):
        store.modify_plan(task.task_id, make_plan(to_version="1.4.1"), allowed_verdicts(), "alice", rbac)
    assert last_event(store, task.task_id)["action"] == "modify_refused"
    with pytest.raises(PlanMismatch):
        store.modify_plan(task.task_id, make_plan(site_id="aws-stg-euw1"), allowed_verdicts(), "bob", rbac)
    assert store.get_task(task.task_id).plan_version == 1


def test_modify_to_a_denied_plan_and_back(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    denied = store.modify_plan(task.task_id, make_plan(to_version="1.4.1"), denied_verdicts(), "bob", rbac)
    assert denied.status == "policy_denied" and denied.plan_version == 2
    fixed = store.modify_plan(task.task_id, make_plan(to_version="1.4.2"), allowed_verdicts(), "bob", rbac)
    assert fixed.status == "pending_approval" and fixed.plan_version == 3
    history = store.plan_history(task.task_id)
    assert [(p.version, p.valid, p.created_by) for p in history] == [(1, True, "drift_sensor"), (2, False, "bob"), (3, True, "bob")]
    assert history[1].plan().to_image_id == "web-base@1.4.1"


def test_approve_then_modify_revokes_the_approval(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    approval = store.approve(task.task_id, "alice", "ok", rbac, now=T0)
    modified = store.modify_plan(task.task_id, make_plan(to_version="1.4.1"), allowed_verdicts(), "bob", rbac)
    assert modified.status == "pending_approval"
    revoked = modified.approvals[0]
    assert revoked.approval_id == approval.approval_id and revoked.revoked and "version 2 by bob" in revoked.revoked_reason
    assert modified.current_approval() is None
    assert store.audit_events(task.task_id)[-2]["details"]["revoked_approvals"] == [approval.approval_id]
    with pytest.raises(ExecutionRefused, match="is pending_approval, not approved"):
        store.authorize_execution(task.task_id, rbac, now=T0)
    assert last_event(store, task.task_id)["action"] == "execution_refused"
    assert store.approved_tasks() == []


def test_revoked_approval_refused_even_if_status_says_approved(store, rbac):
    """A status forced back to approved in the database does not resurrect a revoked approval."""
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    store.approve(task.task_id, "alice", "ok", rbac, now=T0)
    store.modify_plan(task.task_id, make_plan(to_version="1.4.1"), allowed_verdicts(), "bob", rbac)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE tasks SET status = 'approved'")
    with pytest.raises(ExecutionRefused, match="no unrevoked approval for plan version 2"):
        store.authorize_execution(task.task_id, rbac, now=T0)


def test_expired_approval_is_refused(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    store.approve(task.task_id, "alice", "ok", rbac, now=T0, ttl=timedelta(hours=1))
    assert store.authorize_execution(task.task_id, rbac, now=T0 + timedelta(minutes=59))
    with pytest.raises(ExecutionRefused, match="expired"):
        store.authorize_execution(task.task_id, rbac, now=T0 + timedelta(hours=2))
    event = last_event(store, task.task_id)
    assert event["action"] == "execution_refused" and "expired" in event["details"]["reason"]
    assert store.get_task(task.task_id).status == "approved"  # a person can re-approve or modify


def test_approver_who_lost_the_role_is_refused(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    store.approve(task.task_id, "alice", "ok", rbac)
    demoted = Rbac.from_dict({"roles": {"auditor": {"permissions": ["VIEW_AUDIT_LOGS"]}}, "users": {"alice": {"roles": ["auditor"]}}})
    with pytest.raises(ExecutionRefused, match="approver no longer authorised.*alice"):
        store.authorize_execution(task.task_id, demoted)


def test_plan_edited_in_the_database_is_refused(store, rbac, tmp_path):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    store.approve(task.task_id, "alice", "ok", rbac)
    with sqlite3.connect(tmp_path / "control.sqlite") as conn:  # someone with database access
        conn.execute("UPDATE task_plans SET plan_json = replace(plan_json, 'web-base@1.4.0', 'web-base@6.6.6')")
    with pytest.raises(ExecutionRefused, match="plan hash mismatch") as refused:
        store.authorize_execution(task.task_id, rbac)
    assert task.plan_hash in str(refused.value)
    event = last_event(store, task.task_id)
    assert event["action"] == "execution_refused" and "plan hash mismatch" in event["details"]["reason"]
    assert store.get_task(task.task_id).status == "approved"


def test_plan_and_hash_edited_together_do_not_match_the_approval(store, rbac, tmp_path):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    store.approve(task.task_id, "alice", "ok", rbac)
    forged = make_plan(to_version="6.6.6")
    with sqlite3.connect(tmp_path / "control.sqlite") as conn:
        conn.execute("UPDATE task_plans SET plan_json = ?, plan_hash = ?", (forged.canonical_json(), forged.plan_hash()))
    with pytest.raises(ExecutionRefused, match="approval .* binds plan_hash"):
        store.authorize_execution(task.task_id, rbac)


def test_reject(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    with pytest.raises(ApprovalRefused, match="needs a reason"):
        store.reject(task.task_id, "alice", "  ", rbac)
    rejection = store.reject(task.task_id, "alice", "wrong image", rbac)
    assert rejection.decision == "rejected" and rejection.expires_at is None
    assert store.get_task(task.task_id).status == "rejected"
    with pytest.raises(ApprovalRefused, match="is rejected"):
        store.approve(task.task_id, "dave", "ok", rbac)
    with pytest.raises(InvalidTransition):
        store.modify_plan(task.task_id, make_plan(), allowed_verdicts(), "bob", rbac)
    assert actions_of(store, task.task_id) == ["created", "validated", "approval_refused", "rejected", "approval_refused", "modify_refused"]


def test_unknown_task_refusal_is_audited(store, rbac):
    with pytest.raises(ApprovalRefused, match="no task 'T-000042'"):
        store.approve("T-000042", "alice", "ok", rbac)
    assert last_event(store)["task_id"] == "T-000042"
    with pytest.raises(ExecutionRefused):
        store.authorize_execution("T-000042", rbac)


def test_every_refusal_keeps_the_chain_valid(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    for user in ("bob", "carol", "nobody"):
        with pytest.raises(ApprovalRefused):
            store.approve(task.task_id, user, "x", rbac)
    result = store.verify_audit()
    assert result.ok and result.checked == 5


# ---------------------------------------------------------------- journal, tool calls, export
def test_record_action_is_idempotent(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
    args = (task.task_id, task.plan_hash, "canary", "i-001", "restore_image")
    assert store.record_action(*args, dry_run=False, status="done", details={"image": "ami-new"}) is True
    assert store.record_action(*args, dry_run=False, status="failed", details={"other": 1}) is False
    assert store.record_action(task.task_id, task.plan_hash, "canary", "i-001", "replace_image", False, "done", {}) is True
    assert store.record_action(task.task_id, "another-hash", "canary", "i-001", "restore_image", False, "done", {}) is True
    journal = store.actions(task.task_id)
    assert len(journal) == 3
    assert journal[0]["status"] == "done" and journal[0]["details"] == {"image": "ami-new"} and journal[0]["dry_run"] is False
    assert actions_of(store, task.task_id).count("action_recorded") == 3
    with pytest.raises(TaskNotFound):
        store.record_action("T-404404", "h", "canary", "i-1", "x", True, "done", {})


def test_export_rows(store, rbac):
    task = store.create_task(make_plan(), allowed_verdicts(), "drift_sensor", source_run_id="plan-run-1")
    store.record_tool_invocation(task.task_id, "query_drift", {"site_id": "aws-prod-use1", "limit": 50}, 1234, 17, 1)
    store.record_tool_invocation(None, "list_images", {}, 10, 3, 2, run_id="plan-run-1")
    store.modify_plan(task.task_id, make_plan(to_version="1.4.1"), allowed_verdicts(), "bob", rbac)
    store.approve(task.task_id, "alice", "ok", rbac, now=T0)
    rows = store.export_rows()
    assert set(rows) == {
        "ai_tasks", "ai_task_plans", "ai_tool_invocations", "image_lineage_links", "image_promotions", "compliance_waivers",
    }
    assert rows["image_lineage_links"] == [] and rows["image_promotions"] == [] and rows["compliance_waivers"] == []
    (row,) = rows["ai_tasks"]
    current = store.get_task(task.task_id)
    assert row["task_id"] == task.task_id and row["status"] == "approved" and row["plan_hash"] == current.plan_hash
    assert row["plan_version"] == 2 and row["approved_by"] == "alice" and row["approved_at"] == "2025-03-01T09:00:00.000000Z"
    assert [(p["version"], p["is_current"]) for p in rows["ai_task_plans"]] == [(1, False), (2, True)]
    assert rows["ai_task_plans"][1]["plan_json"] == current.plan_json
    calls = rows["ai_tool_invocations"]
    assert [c["tool"] for c in calls] == ["query_drift", "list_images"]
    assert calls[0]["arguments_json"] == '{"limit":50,"site_id":"aws-prod-use1"}' and calls[1]["task_id"] is None
    import json

    json.dumps(rows)  # plain JSON all the way down


# ---------------------------------------------------------------- RBAC file
def test_rbac_bundled_file(rbac):
    assert rbac.has("alice", "APPROVE_AI_TASKS") and rbac.has("dave", "APPROVE_AI_TASKS")
    assert rbac.has("bob", "EXECUTE_AI_TASKS") and rbac.has("bob", "TRIGGER_DRILL") and not rbac.has("bob", "APPROVE_AI_TASKS")
    assert rbac.permissions("carol") == {"VIEW_AUDIT_LOGS"}
    with pytest.raises(PermissionDenied, match="'carol' lacks permission APPROVE_AI_TASKS"):
        rbac.require("carol", "APPROVE_AI_TASKS")
    with pytest.raises(PermissionDenied, match="'zed'.*not listed"):
        rbac.require("zed", "VIEW_AUDIT_LOGS")


def test_rbac_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "rbac.yaml"
    path.write_text("roles:\n  boss: {permissions: [APPROVE_AI_TASKS]}\nusers:\n  zed: {roles: [boss]}\n")
    monkeypatch.setenv("QLRF_RBAC", str(path))
    assert Rbac.load().has("zed", "APPROVE_AI_TASKS")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("roles:\n  r: {permissions: [APPROVE_AI_TASK]}\nusers: {}\n", "field roles.r.permissions.0"),
        ("roles:\n  r: {permissions: []}\nusers:\n  u: {roles: [ghost]}\n", "field users.u.roles.0: unknown role 'ghost'"),
        ("roles: {}\n", "field users"),
        ("roles: {}\nusers: {}\ngroups: {}\n", "field groups"),
        ("- just a list\n", "expected a mapping"),
        ("roles: [\n", "not valid YAML"),
    ],
)
def test_rbac_invalid_file_names_file_and_field(tmp_path, text, expected):
    path = tmp_path / "bad-rbac.yaml"
    path.write_text(text)
    with pytest.raises(RbacError, match="bad-rbac.yaml") as error:
        Rbac.load(path)
    assert expected in str(error.value)


def test_rbac_missing_file(tmp_path):
    with pytest.raises(RbacError, match="not found"):
        Rbac.load(tmp_path / "none.yaml")
