"""The hash-chained audit log: intact chains verify; edits, deletions and reordering are named."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from qlrf_pipelines.control import ControlStore, Rbac
from qlrf_pipelines.control.audit import GENESIS_HASH, event_hash
from tests.unit.test_control_store import allowed_verdicts, make_plan


@pytest.fixture
def store(tmp_path):
    """A store with a short history: a task created, validated, a refusal and an approval (seq 1..6)."""
    with ControlStore.open(home=tmp_path) as opened:
        rbac = Rbac.load()
        task = opened.create_task(make_plan(), allowed_verdicts(), "drift_sensor")
        opened.audit("carol", "audit_viewed", details={"filter": None})
        try:
            opened.approve(task.task_id, "bob", "ok", rbac)
        except Exception:
            pass
        opened.approve(task.task_id, "alice", "ok", rbac)
        opened.audit("system", "exported", details={"rows": 3})
        assert [e["seq"] for e in opened.audit_events()] == [1, 2, 3, 4, 5, 6]
        yield opened


def db(tmp_path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "control.sqlite", isolation_level=None)


def test_intact_chain_verifies(store):
    result = store.verify_audit()
    assert result.ok and result.checked == 6 and result.problems == []
    events = store.audit_events()
    assert events[0]["prev_hash"] == GENESIS_HASH
    for before, after in zip(events, events[1:]):
        assert after["prev_hash"] == before["hash"]
    first = events[0]
    assert first["hash"] == event_hash(1, first["at"], first["actor"], first["action"], first["task_id"], first["details"], GENESIS_HASH)
    assert [e["action"] for e in events] == ["created", "validated", "audit_viewed", "approval_refused", "approved", "exported"]


def test_empty_log_verifies(tmp_path):
    with ControlStore.open(home=tmp_path / "empty") as empty:
        assert empty.verify_audit().ok and empty.verify_audit().checked == 0


def test_edited_event_is_named(store, tmp_path):
    with db(tmp_path) as conn:
        conn.execute("UPDATE audit_events SET actor = 'alice' WHERE seq = 4")  # hide who was refused
    result = store.verify_audit()
    assert not result.ok and result.checked == 6
    assert len(result.problems) == 1 and result.problems[0].startswith("seq 4: hash mismatch")


def test_edited_details_are_named(store, tmp_path):
    with db(tmp_path) as conn:
        conn.execute("UPDATE audit_events SET details_json = replace(details_json, '\"ok\"', '\"fine\"') WHERE seq = 5")
    result = store.verify_audit()
    assert [p.split(":")[0] for p in result.problems] == ["seq 5"] and "edited" in result.problems[0]


def test_edited_event_with_recomputed_hash_breaks_the_next_link(store, tmp_path):
    """Whoever edits an event and fixes its hash still breaks the link from the event after it."""
    event = store.audit_events()[2]
    details = {"filter": "forged"}
    forged = event_hash(3, event["at"], event["actor"], event["action"], None, details, event["prev_hash"])
    with db(tmp_path) as conn:
        conn.execute("UPDATE audit_events SET details_json = ?, hash = ? WHERE seq = 3", ('{"filter":"forged"}', forged))
    problems = store.verify_audit().problems
    assert len(problems) == 1 and problems[0].startswith("seq 4: prev_hash does not link")


def test_deleted_event_is_detected(store, tmp_path):
    with db(tmp_path) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq = 3")
    result = store.verify_audit()
    assert not result.ok and result.checked == 5
    assert any(p.startswith("seq 4: gap in sequence after seq 2: seq 3 missing") for p in result.problems)
    assert any(p.startswith("seq 4: prev_hash does not link") for p in result.problems)


def test_deleted_last_event_is_detected(store, tmp_path):
    with db(tmp_path) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq = 6")
    result = store.verify_audit()
    assert not result.ok and result.checked == 5
    assert result.problems == [
        "chain head records seq 6 as the last event but the log ends at seq 5: events at the end were deleted"
    ]


def test_deleted_and_renumbered_events_are_detected(store, tmp_path):
    with db(tmp_path) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq = 3")
        for seq in (4, 5, 6):
            conn.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (seq - 1, seq))
    problems = store.verify_audit().problems
    assert problems[0].startswith("seq 3: prev_hash does not link")
    assert {p.split(":")[0] for p in problems} >= {"seq 3", "seq 4", "seq 5"}


def test_reordered_events_are_detected(store, tmp_path):
    with db(tmp_path) as conn:  # swap events 3 and 4
        conn.execute("UPDATE audit_events SET seq = -1 WHERE seq = 3")
        conn.execute("UPDATE audit_events SET seq = 3 WHERE seq = 4")
        conn.execute("UPDATE audit_events SET seq = 4 WHERE seq = -1")
    result = store.verify_audit()
    assert not result.ok
    named = {p.split(":")[0] for p in result.problems}
    assert named >= {"seq 3", "seq 4", "seq 5"}
    assert any(p.startswith("seq 3: prev_hash does not link") for p in result.problems)
    assert any(p.startswith("seq 3: hash mismatch") for p in result.problems)


def test_audit_events_filter_by_task(store):
    task_events = store.audit_events("T-000001")
    assert [e["action"] for e in task_events] == ["created", "validated", "approval_refused", "approved"]
    assert store.audit_events("T-999999") == []


def test_concurrent_writers_on_sqlite_keep_the_chain(tmp_path):
    """Two store instances (as two processes would) appending at once never fork the chain."""
    home = tmp_path / "concurrent"
    ControlStore.open(home=home).close()
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with ControlStore.open(home=home) as own:
                for n in range(30):
                    own.audit(name, "tick", details={"n": n})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ControlStore.open(home=home) as store:
        result = store.verify_audit()
        assert result.ok, result.problems
        assert result.checked == 90
        assert [e["seq"] for e in store.audit_events()] == list(range(1, 91))
