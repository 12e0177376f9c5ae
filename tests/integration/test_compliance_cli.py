"""`qlrf waivers ...` and `qlrf evidence ...` as a user runs them (subprocesses), on a control
store and a hand-made lake (tests/unit/test_evidence_export.build_lake): no warehouse needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_evidence_export import T2, build_lake

pytestmark = pytest.mark.integration
QLRF = str(Path(sys.executable).with_name("qlrf"))
REASON = "load balancer health probes need it (RISK-12)"


def qlrf(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "QLRF_HOME": str(home)}
    for name in ("QLRF_CONTROL_URL", "QLRF_RBAC", "QLRF_COMPLIANCE_CATALOG"):
        env.pop(name, None)
    done = subprocess.run([QLRF, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"qlrf {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def test_waivers_add_list_revoke_and_the_audit_log(tmp_path):
    added = qlrf(tmp_path, "waivers", "add", "--control", "si-2", "--framework", "nist-800-53", "--asset", "vm-1",
                 "--asset", "vm-2", "--until", "2099-06-30", "--user", "erin", "--reason", REASON, "--json")
    assert [(w["waiver_id"], w["control_id"], w["asset_id"]) for w in json.loads(added.stdout)] == [
        ("W-000001", "SI-2", "vm-1"), ("W-000002", "SI-2", "vm-2"),
    ]
    table = qlrf(tmp_path, "waivers", "list").stdout
    assert "W-000001  active" in table and "nist-800-53" in table and "2099-06-30" in table

    revoked = qlrf(tmp_path, "waivers", "revoke", "W-000001", "--user", "dave", "--reason", "vm-1 was patched today")
    assert "revoked W-000001 (SI-2 for vm-1) by dave" in revoked.stdout
    assert [w["waiver_id"] for w in json.loads(qlrf(tmp_path, "waivers", "list", "--format", "json").stdout)] == ["W-000002"]
    every = json.loads(qlrf(tmp_path, "waivers", "list", "--all", "--format", "json").stdout)
    assert [(w["waiver_id"], w["state"], w["revoked_by"]) for w in every] == [
        ("W-000001", "revoked", "dave"), ("W-000002", "active", None),
    ]

    refusals = [
        (["add", "--control", "SI-2", "--asset", "x", "--until", "2099-01-01", "--user", "carol", "--reason", REASON],
         "user 'carol' lacks permission MANAGE_WAIVERS"),
        (["add", "--control", "ZZ-9", "--asset", "x", "--until", "2099-01-01", "--user", "erin", "--reason", REASON],
         "unknown control 'ZZ-9'"),
        (["add", "--control", "SI-2", "--asset", "x", "--until", "2099-01-01", "--user", "erin", "--reason", "because"],
         "reason of at least 10 characters"),
        (["add", "--control", "SI-2", "--asset", "x", "--until", "31/12/2099", "--user", "erin", "--reason", REASON],
         "'31/12/2099' is not a date (YYYY-MM-DD)"),
        (["revoke", "W-000001", "--user", "erin", "--reason", "revoking twice here"], "already revoked by dave"),
    ]
    for args, message in refusals:
        done = qlrf(tmp_path, "waivers", *args, check=False)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)

    events = json.loads(qlrf(tmp_path, "audit", "list", "--user", "erin", "--json").stdout)
    assert [e["action"] for e in events] == [
        "waiver_added", "waiver_added", "waiver_revoked", "waiver_refused", "waiver_refused", "waiver_refused",
        "waiver_revoke_refused",
    ]
    assert "ok" in qlrf(tmp_path, "audit", "verify").stdout.lower()


def test_evidence_export_and_verify(tmp_path):
    build_lake(tmp_path)
    verified = qlrf(tmp_path, "evidence", "verify")
    assert verified.stdout.strip().endswith(": ok") and "evidence rows in" in verified.stdout

    done = qlrf(tmp_path, "evidence", "export", "--framework", "soc2", "--at", T2.isoformat(), "--out", str(tmp_path / "p"))
    assert done.stdout.splitlines()[0] == "soc2 as of 2026-05-06T09:30:00.000000Z: 6 controls (5 pass, 1 waived)"
    assert (tmp_path / "p" / "assessment-results.json").exists() and (tmp_path / "p" / "MANIFEST.sha256").exists()
    again = qlrf(tmp_path, "evidence", "export", "--framework", "soc2", "--at", "2026-05-06T09:30:00Z",
                 "--out", str(tmp_path / "p"), "--force", "--format", "oscal")
    assert again.returncode == 0 and not (tmp_path / "p" / "CC6.1.csv").exists()

    errors = [
        (["export", "--framework", "soc2", "--at", "yesterday-ish", "--out", str(tmp_path / "x")], "expected YYYY-MM-DD"),
        (["export", "--framework", "pci-dss", "--at", "now", "--out", str(tmp_path / "x")], "no evidence for framework 'pci-dss'"),
        (["export", "--framework", "soc2", "--at", "2026-01-01", "--out", str(tmp_path / "x")], "the first evaluation was"),
        (["export", "--framework", "soc2", "--at", "now", "--out", str(tmp_path / "p")], "is not empty"),
        (["verify", "--framework", "pci-dss"], "no evidence for framework 'pci-dss'"),
    ]
    for args, message in errors:
        failed = qlrf(tmp_path, "evidence", *args, check=False)
        assert failed.returncode == 1 and message in failed.stderr, (args, failed.stderr)
    assert not (tmp_path / "x").exists()
