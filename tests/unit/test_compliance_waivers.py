"""Compliance waivers in the control store: who may add and revoke them, what is refused, when a
waiver is in force, that every decision and refusal is in the audit chain, and the lake export.

Arrange: a fresh SQLite control store per test, the bundled RBAC file (erin compliance officer,
alice approver, bob operator, carol auditor) and the bundled compliance catalog's control ids.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert

from qlrf_pipelines.compliance import waivers
from qlrf_pipelines.compliance.catalog import load_catalog
from qlrf_pipelines.compliance.waivers import Waiver, WaiverNotFound, WaiverRefused
from qlrf_pipelines.control import ControlStore, PermissionDenied, Rbac
from qlrf_pipelines.control.tables import compliance_waivers
from qlrf_pipelines.control_export import export_control_store
from qlrf_pipelines.models.records import ENTITY_SCHEMAS

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
REASON = "legacy appliance, replaced in Q3 (CHG-1042)"


@pytest.fixture(scope="module")
def known() -> dict[str, frozenset[str]]:
    return waivers.catalog_controls(load_catalog())


@pytest.fixture
def rbac() -> Rbac:
    return Rbac.load()


@pytest.fixture
def store(tmp_path):
    with ControlStore.open(home=tmp_path) as opened:
        yield opened


def actions(store: ControlStore) -> list[str]:
    return [e["action"] for e in store.audit_events()]


# ---------------------------------------------------------------- adding
def test_add_one_waiver_per_asset_audited_in_the_same_chain(store, rbac, known):
    added = waivers.add(store, known, "cm-2", ["i-1", "i-2", "i-1"], date(2026, 6, 30), "erin", REASON, rbac,
                        framework_id="NIST-800-53", now=T0)

    assert [(w.waiver_id, w.control_id, w.framework_id, w.asset_id) for w in added] == [
        ("W-000001", "CM-2", "nist-800-53", "i-1"), ("W-000002", "CM-2", "nist-800-53", "i-2"),
    ]
    assert all(w.created_at == T0 and w.created_by == "erin" and w.expires_on == date(2026, 6, 30) for w in added)
    assert waivers.list_waivers(store) == added
    events = store.audit_events()
    assert [e["action"] for e in events] == ["waiver_added", "waiver_added"]
    assert events[0]["actor"] == "erin" and events[0]["task_id"] is None
    assert events[1]["details"] == {
        "waiver_id": "W-000002", "control_id": "CM-2", "framework_id": "nist-800-53", "asset_id": "i-2",
        "reason": REASON, "created_by": "erin", "created_at": "2026-03-02T10:00:00.000000Z", "expires_on": "2026-06-30",
    }
    assert store.verify_audit().ok


def test_an_approver_may_waive_and_a_control_without_framework_applies_to_every_framework(store, rbac, known):
    (waiver,) = waivers.add(store, known, "CC6.1", ["vm-9"], date(2026, 3, 2), "alice", REASON, rbac, now=T0)
    assert waiver.framework_id is None and waiver.control_id == "CC6.1"
    assert waiver.applies_to("soc2", "CC6.1", "vm-9") and waiver.applies_to("any-other", "CC6.1", "vm-9")
    assert not waiver.applies_to("soc2", "CC6.6", "vm-9") and not waiver.applies_to("soc2", "CC6.1", "vm-8")
    scoped = Waiver("W-9", "CM-2", "nist-800-53", "a", REASON, "erin", T0, date(2026, 4, 1))
    assert scoped.applies_to("nist-800-53", "CM-2", "a") and not scoped.applies_to("soc2", "CM-2", "a")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"until": date(2026, 3, 1)}, "expiry 2026-03-01 is in the past (today is 2026-03-02 UTC)"),
        ({"reason": "  because  "}, "reason of at least 10 characters"),
        ({"control_id": "AC-2"}, "unknown control 'AC-2': not a control of any framework"),
        ({"control_id": "CC6.1", "framework_id": "nist-800-53"}, "unknown control 'CC6.1': not a control of framework nist-800-53"),
        ({"framework_id": "iso27001"}, "unknown framework 'iso27001' (known: cis-qlrf, nist-800-53, soc2)"),
        ({"asset_ids": ["", "  "]}, "at least one asset id"),
    ],
)
def test_refusals_name_the_problem_and_are_audited(store, rbac, known, kwargs, message):
    args = {"control_id": "CM-2", "asset_ids": ["i-1"], "until": date(2026, 6, 30), "reason": REASON,
            "framework_id": None} | kwargs
    with pytest.raises(WaiverRefused) as refused:
        waivers.add(store, known, args["control_id"], args["asset_ids"], args["until"], "erin", args["reason"], rbac,
                    framework_id=args["framework_id"], now=T0)
    assert message in str(refused.value)
    assert waivers.list_waivers(store) == []
    (event,) = store.audit_events()
    assert (event["action"], event["actor"]) == ("waiver_refused", "erin")
    assert message in event["details"]["reason_refused"]


@pytest.mark.parametrize("user", ["bob", "carol", "zed"])
def test_waiving_needs_manage_waivers(store, rbac, known, user):
    with pytest.raises(PermissionDenied, match=f"'{user}' lacks permission MANAGE_WAIVERS"):
        waivers.add(store, known, "CM-2", ["i-1"], date(2026, 6, 30), user, REASON, rbac, now=T0)
    assert waivers.list_waivers(store) == []
    assert actions(store) == ["waiver_refused"]


def test_rbac_file_gives_manage_waivers_to_approvers_and_compliance_officers(rbac):
    assert rbac.users_with("MANAGE_WAIVERS") == ["alice", "dave", "erin"]
    assert rbac.permissions("erin") == {"MANAGE_WAIVERS", "VIEW_AUDIT_LOGS"}
    assert rbac.user_roles["erin"] == ("compliance_officer",)


# ---------------------------------------------------------------- in force, expiry, revocation
def test_a_waiver_is_in_force_from_its_creation_day_through_its_expiry_date():
    waiver = Waiver("W-1", "CM-2", None, "a", REASON, "erin", T0, date(2026, 3, 31))
    assert not waiver.in_force(date(2026, 3, 1))
    assert waiver.in_force(date(2026, 3, 2)) and waiver.in_force(date(2026, 3, 31))
    assert not waiver.in_force(date(2026, 4, 1))
    assert waiver.in_force(datetime(2026, 3, 31, 23, 59, tzinfo=timezone.utc))
    assert not waiver.in_force(datetime(2026, 4, 1, 0, 0, tzinfo=timezone.utc))
    assert not waiver.in_force(T0 - timedelta(seconds=1)) and waiver.in_force(T0)
    assert [waiver.state(d) for d in (date(2026, 3, 1), date(2026, 3, 2), date(2026, 4, 1))] == ["pending", "active", "expired"]


def test_expired_waivers_in_the_store_no_longer_apply(store):
    """An expired waiver cannot be added through add(); one that expired since is just data."""
    with store.engine.begin() as conn:
        conn.execute(insert(compliance_waivers).values(
            waiver_id="W-000001", control_id="CM-2", framework_id=None, asset_id="i-1", reason=REASON,
            created_by="erin", created_at=T0 - timedelta(days=40), expires_on=date(2026, 2, 28),
        ))
        conn.execute(insert(compliance_waivers).values(
            waiver_id="W-000002", control_id="CM-2", framework_id=None, asset_id="i-2", reason=REASON,
            created_by="erin", created_at=T0 - timedelta(days=40), expires_on=date(2026, 3, 2),
        ))
    assert [w.waiver_id for w in store.waivers_in_force(date(2026, 2, 28))] == ["W-000001", "W-000002"]
    assert [w.waiver_id for w in store.waivers_in_force(date(2026, 3, 2))] == ["W-000002"]
    assert store.waivers_in_force(date(2026, 3, 3)) == []
    assert isinstance(store.waivers_in_force(T0)[0].expires_on, date)


def test_revoke_withdraws_from_that_moment_and_keeps_the_row(store, rbac, known):
    waivers.add(store, known, "CM-2", ["i-1", "i-2"], date(2026, 6, 30), "erin", REASON, rbac, now=T0)
    revoked_at = T0 + timedelta(days=3)
    revoked = waivers.revoke(store, "W-000001", "alice", "the appliance was replaced", rbac, now=revoked_at)

    assert (revoked.revoked_at, revoked.revoked_by, revoked.revoke_reason) == (revoked_at, "alice", "the appliance was replaced")
    assert [w.waiver_id for w in store.waivers_in_force(date(2026, 3, 4))] == ["W-000001", "W-000002"]
    assert [w.waiver_id for w in store.waivers_in_force(date(2026, 3, 5))] == ["W-000002"]
    assert [w.waiver_id for w in store.waivers_in_force(revoked_at)] == ["W-000002"]
    assert [w.waiver_id for w in store.waivers_in_force(revoked_at - timedelta(microseconds=1))] == ["W-000001", "W-000002"]
    assert len(waivers.list_waivers(store)) == 2
    event = store.audit_events()[-1]
    assert (event["action"], event["actor"], event["details"]["waiver_id"]) == ("waiver_revoked", "alice", "W-000001")


@pytest.mark.parametrize(
    ("waiver_id", "user", "reason", "error", "message"),
    [
        ("W-000001", "bob", "the appliance was replaced", PermissionDenied, "'bob' lacks permission MANAGE_WAIVERS"),
        ("W-000404", "erin", "the appliance was replaced", WaiverNotFound, "no waiver 'W-000404'"),
        ("W-000001", "erin", "done", WaiverRefused, "reason of at least 10 characters"),
    ],
)
def test_revoke_refusals_are_audited(store, rbac, known, waiver_id, user, reason, error, message):
    waivers.add(store, known, "CM-2", ["i-1"], date(2026, 6, 30), "erin", REASON, rbac, now=T0)
    with pytest.raises(error, match=message):
        waivers.revoke(store, waiver_id, user, reason, rbac)
    assert waivers.list_waivers(store)[0].revoked_at is None
    assert actions(store) == ["waiver_added", "waiver_revoke_refused"]
    assert message in store.audit_events()[-1]["details"]["reason_refused"]


def test_a_waiver_is_revoked_once(store, rbac, known):
    waivers.add(store, known, "CM-2", ["i-1"], date(2026, 6, 30), "erin", REASON, rbac, now=T0)
    waivers.revoke(store, "W-000001", "erin", "no longer needed here", rbac)
    with pytest.raises(WaiverRefused, match="already revoked by erin"):
        waivers.revoke(store, "W-000001", "dave", "no longer needed here", rbac)
    assert actions(store) == ["waiver_added", "waiver_revoked", "waiver_revoke_refused"]
    assert store.verify_audit().ok


# ---------------------------------------------------------------- the lake export
def test_waivers_reach_the_lake_as_a_typed_control_entity(store, rbac, known, tmp_path):
    waivers.add(store, known, "QCIS-1.1", ["vm-1"], date(2026, 12, 31), "erin", REASON, rbac,
                framework_id="cis-qlrf", now=T0)
    waivers.revoke(store, "W-000001", "erin", "encryption enabled on vm-1", rbac, now=T0 + timedelta(hours=1))
    rows = store.export_rows()["compliance_waivers"]
    assert rows == [{
        "waiver_id": "W-000001", "control_id": "QCIS-1.1", "framework_id": "cis-qlrf", "asset_id": "vm-1",
        "reason": REASON, "created_by": "erin", "created_at": "2026-03-02T10:00:00.000000Z", "expires_on": "2026-12-31",
        "revoked_at": "2026-03-02T11:00:00.000000Z", "revoked_by": "erin", "revoke_reason": "encryption enabled on vm-1",
    }]
    files = {f.entity: f for f in export_control_store(store, tmp_path / "lake", now=T0 + timedelta(hours=2))}
    table = pq.read_table(files["compliance_waivers"].path)
    assert table.schema.equals(ENTITY_SCHEMAS["compliance_waivers"])
    (row,) = table.to_pylist()
    assert row["expires_on"] == date(2026, 12, 31) and row["revoked_at"] == T0 + timedelta(hours=1)
    assert row["snapshot_id"] == files["ai_tasks"].snapshot_id
