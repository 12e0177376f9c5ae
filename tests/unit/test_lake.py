from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from qlrf_pipelines.lake import LakeError, list_snapshots, snapshot_id_for, snapshot_time, to_table, write_snapshot
from qlrf_pipelines.models import AssetRecord, Tag, version_sort_key


def asset(native_id: str, now: datetime) -> AssetRecord:
    return AssetRecord(
        asset_id=f"aws:s1:{native_id}", site_id="s1", provider="aws", native_id=native_id, kind="vm",
        name=native_id, state="running", discovered_at=now, tags=[Tag("env", "prod")],
    )


def test_snapshot_id_round_trips():
    moment = datetime(2026, 11, 26, 19, 12, 0, 123456, tzinfo=timezone.utc)
    assert snapshot_id_for(moment) == "20261126T191200123456Z"
    assert snapshot_time("20261126T191200123456Z") == moment


def test_write_is_typed_and_never_overwrites(tmp_path):
    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    sid = snapshot_id_for(now)
    files = write_snapshot(tmp_path, "s1", sid, {"assets": to_table("assets", [asset("i-1", now)], sid)})
    table = pq.read_table(files[0].path)
    assert table.column("asset_id").to_pylist() == ["aws:s1:i-1"]
    assert table.column("tags").to_pylist() == [[{"key": "env", "value": "prod"}]]
    assert str(table.schema.field("snapshot_at").type) == "timestamp[us, tz=UTC]"
    before = files[0].path.read_bytes()
    with pytest.raises(LakeError, match="never overwritten"):
        write_snapshot(tmp_path, "s1", sid, {"assets": to_table("assets", [asset("i-2", now)], sid)})
    assert files[0].path.read_bytes() == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_failed_snapshot_publishes_nothing(tmp_path):
    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    sid = snapshot_id_for(now)

    class Boom:
        num_rows = 0

    with pytest.raises(Exception):
        write_snapshot(tmp_path, "s1", sid, {"assets": to_table("assets", [asset("i-1", now)], sid), "images": Boom()})
    assert list_snapshots(tmp_path, "assets") == []
    assert not list(tmp_path.rglob("*.tmp"))


def test_version_sort_key_orders_like_versions():
    versions = ["1.10.0", "1.9.3", "1.2.0", "2026.06", "v2", "3.12.8-r2", "3.12.6-r1"]
    assert sorted(["1.10.0", "1.9.3", "1.2.0"], key=version_sort_key) == ["1.2.0", "1.9.3", "1.10.0"]
    assert version_sort_key("3.12.6-r1") < version_sort_key("3.12.8-r2")
    assert version_sort_key("2026.06") < version_sort_key("2026.10")
    assert all(version_sort_key(v) for v in versions)
