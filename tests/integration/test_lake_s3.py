"""The lake on an S3-compatible object store (QLRF_LAKE_URI), against moto's S3 server.

The bucket is the source of truth and QLRF_HOME/lake a local mirror that dbt reads: writes go
to the bucket first (conditional create, never overwrite), then locally; a warehouse build syncs
the mirror from the bucket first, so a fresh home with only the bucket builds the same warehouse.
"""

from __future__ import annotations

import socket
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from qlrf_pipelines.lake import LakeError, list_snapshots, snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.lake_remote import RemoteLake, sync_from_remote
from qlrf_pipelines.models import AssetRecord, Tag
from qlrf_pipelines.resources.control import BUNDLED_RBAC_FILE, ControlStoreResource
from qlrf_pipelines.resources.estate import EstateResource
from qlrf_pipelines.settings import LakeLocation
from tests.conftest import sql
from tests.emulators.aws.moto_server import aws_emulator  # noqa: F401  (fixture)
from tests.integration.test_bad_input import small_estate

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
ACCESS_KEY, SECRET_KEY = "AKIAQLRFLAKETEST0001", "qlrf-FAKE-lake-secret-7d1c9e3b"
PREFIX = "team/lake"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """Credentials only through the standard AWS chain (environment); no lake URI in the env, so
    every test says which remote it uses."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "QLRF_LAKE_URI", "QLRF_LAKE_ENDPOINT_URL", "QLRF_LAKE_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def s3(aws_emulator):  # noqa: F811
    return boto3.client("s3", endpoint_url=aws_emulator.url, region_name="us-east-1")


@pytest.fixture()
def bucket(s3) -> str:
    name = f"qlrf-lake-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def remote(endpoint: str, bucket_name: str, prefix: str = PREFIX, **options) -> RemoteLake:
    return RemoteLake(LakeLocation.parse(f"s3://{bucket_name}/{prefix}", endpoint), **options)


def snapshot_tables(site_id: str, snapshot_id: str, *native_ids: str) -> dict:
    assets = [
        AssetRecord(
            asset_id=f"aws:{site_id}:{n}", site_id=site_id, provider="aws", native_id=n, kind="vm", name=n,
            state="running", discovered_at=NOW, tags=[Tag("env", "prod")],
        )
        for n in native_ids
    ]
    return {"assets": to_table("assets", assets, snapshot_id), "images": to_table("images", [], snapshot_id)}


def bucket_objects(s3, bucket_name: str, prefix: str = PREFIX) -> dict[str, bytes]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name, Prefix=f"{prefix}/")
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket_name, Key=key)["Body"].read() for key in keys}


def local_files(lake: Path) -> dict[str, bytes]:
    return {p.relative_to(lake).as_posix(): p.read_bytes() for p in lake.rglob("*.parquet")}


def assert_no_credentials(*texts: str) -> None:
    for text in texts:
        assert ACCESS_KEY not in text and SECRET_KEY not in text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_write_uploads_then_publishes_locally(tmp_path, aws_emulator, s3, bucket):  # noqa: F811
    lake = tmp_path / "home" / "lake"
    sid = snapshot_id_for(NOW)
    files = write_snapshot(lake, "aws-a", sid, snapshot_tables("aws-a", sid, "i-1", "i-2"),
                           remote=remote(aws_emulator.url, bucket))

    objects = bucket_objects(s3, bucket)
    assert set(objects) == {
        f"{PREFIX}/raw/assets/site=aws-a/snapshot={sid}.parquet",
        f"{PREFIX}/raw/images/site=aws-a/snapshot={sid}.parquet",
    }
    assert {f"{PREFIX}/{k}": v for k, v in local_files(lake).items()} == objects  # the same bytes
    assert [f.rows for f in files] == [2, 0]
    assert not list(lake.rglob("*.tmp"))
    for body in objects.values():
        assert ACCESS_KEY.encode() not in body and SECRET_KEY.encode() not in body


def test_writers_without_a_resource_use_qlrf_lake_uri(tmp_path, aws_emulator, s3, bucket, monkeypatch):  # noqa: F811
    """discovery, failure records and the control export call write_snapshot without a remote:
    it comes from the environment (the CLI's case)."""
    monkeypatch.setenv("QLRF_LAKE_URI", f"s3://{bucket}/{PREFIX}/")
    monkeypatch.setenv("QLRF_LAKE_ENDPOINT_URL", aws_emulator.url)
    sid = snapshot_id_for(NOW)
    write_snapshot(tmp_path / "lake", "aws-a", sid, snapshot_tables("aws-a", sid, "i-1"))
    assert len(bucket_objects(s3, bucket)) == 2
    monkeypatch.setenv("QLRF_LAKE_URI", "https://not-s3/bucket")
    with pytest.raises(LakeError, match="s3://bucket"):
        write_snapshot(tmp_path / "lake", "aws-b", sid, snapshot_tables("aws-b", sid, "i-1"))
    assert not list((tmp_path / "lake").rglob("site=aws-b/*"))


def test_a_snapshot_is_never_overwritten_in_the_bucket(tmp_path, aws_emulator, s3, bucket):  # noqa: F811
    target = remote(aws_emulator.url, bucket)
    sid = snapshot_id_for(NOW)
    write_snapshot(tmp_path / "one" / "lake", "aws-a", sid, snapshot_tables("aws-a", sid, "i-1"), remote=target)
    before = bucket_objects(s3, bucket)

    # Another machine (empty local lake) writes the same snapshot id: the bucket refuses it.
    other = tmp_path / "two" / "lake"
    with pytest.raises(LakeError) as raised:
        write_snapshot(other, "aws-a", sid, snapshot_tables("aws-a", sid, "i-9"), remote=target)
    message = str(raised.value)
    assert "site aws-a" in message and "entity assets" in message and "PutObject" in message
    assert "never overwritten" in message
    assert_no_credentials(message)
    assert bucket_objects(s3, bucket) == before
    assert not list(other.rglob("*.parquet")) and not list(other.rglob("*.tmp"))

    # A snapshot whose second entity collides: the first entity, already uploaded, is removed again.
    tables = {"sites": to_table("sites", [], sid)} | snapshot_tables("aws-a", sid, "i-9")
    with pytest.raises(LakeError, match="entity assets"):
        write_snapshot(other, "aws-a", sid, tables, remote=target)
    assert bucket_objects(s3, bucket) == before, "no half snapshot left in the bucket"
    assert not list(other.rglob("*.parquet"))


def test_a_store_without_conditional_writes_gets_head_then_put(
    tmp_path, aws_emulator, s3, bucket, caplog  # noqa: F811
):
    """moto honours If-None-Match; a store answering 501 to it is emulated around moto's client."""
    target = remote(aws_emulator.url, bucket)
    real = target.client

    class NoConditionalPut:
        def __getattr__(self, name):
            return getattr(real, name)

        def put_object(self, **kwargs):
            if "IfNoneMatch" in kwargs:
                raise ClientError({"Error": {"Code": "NotImplemented", "Message": "If-None-Match"}}, "PutObject")
            return real.put_object(**kwargs)

    target._client = NoConditionalPut()
    sid = snapshot_id_for(NOW)
    write_snapshot(tmp_path / "one", "aws-a", sid, snapshot_tables("aws-a", sid, "i-1"), remote=target)
    before = bucket_objects(s3, bucket)
    assert len(before) == 2 and "falling back to HeadObject then PutObject" in caplog.text
    with pytest.raises(LakeError, match="never overwritten"):
        write_snapshot(tmp_path / "two", "aws-a", sid, snapshot_tables("aws-a", sid, "i-9"), remote=target)
    assert bucket_objects(s3, bucket) == before


def test_a_second_home_syncs_byte_identical_files(tmp_path, aws_emulator, s3, bucket):  # noqa: F811
    target = remote(aws_emulator.url, bucket)
    first = tmp_path / "first" / "lake"
    for minutes, site in enumerate(["aws-a", "aws-b", "aws-a"]):
        sid = snapshot_id_for(NOW + timedelta(minutes=minutes))
        write_snapshot(first, site, sid, snapshot_tables(site, sid, f"i-{minutes}"), remote=target)
    # Keys that are not snapshot files are listed but never copied (nor can they escape the mirror).
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/raw/README.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/raw/assets/site=../snapshot={sid}.parquet", Body=b"x")

    second = tmp_path / "second" / "lake"
    local_only = second / "raw" / "assets" / "site=aws-z" / f"snapshot={sid}.parquet"
    local_only.parent.mkdir(parents=True)
    local_only.write_bytes(b"kept")  # the mirror never deletes

    result = sync_from_remote(second, remote(aws_emulator.url, bucket, max_attempts=2))
    assert (result.downloaded, result.already_present, result.skipped) == (6, 0, 2)
    assert local_files(second) == local_files(first) | {local_only.relative_to(second).as_posix(): b"kept"}
    assert len(list_snapshots(second, "assets", "aws-a")) == 2
    assert not list(second.rglob("*.tmp")) and not (second.parent / "README.txt").exists()

    again = sync_from_remote(second, target)
    assert (again.downloaded, again.already_present) == (0, 6)


@pytest.mark.parametrize("failure", ["unreachable endpoint", "missing bucket"])
def test_a_failed_upload_publishes_nothing(tmp_path, aws_emulator, failure):  # noqa: F811
    if failure == "unreachable endpoint":
        target = remote(f"http://127.0.0.1:{closed_port()}", "qlrf-lake-anywhere", max_attempts=2, connect_timeout=1)
        expected = "Could not connect"
    else:
        target = remote(aws_emulator.url, "qlrf-lake-no-such-bucket")
        expected = "NoSuchBucket"
    lake = tmp_path / "lake"
    sid = snapshot_id_for(NOW)
    with pytest.raises(LakeError) as raised:
        write_snapshot(lake, "aws-a", sid, snapshot_tables("aws-a", sid, "i-1"), remote=target)
    message = str(raised.value)
    assert "site aws-a" in message and "entity assets" in message and "S3 PutObject" in message
    assert expected in message and "nothing published" in message
    assert_no_credentials(message)
    assert not [p for p in lake.rglob("*") if p.is_file()], "no local file published or left behind"


def test_refresh_job_lands_in_the_bucket_and_a_fresh_home_builds_from_it(
    tmp_path, aws_emulator, s3, bucket, dagster_instance, prepared_manifest  # noqa: F811
):
    from qlrf_pipelines.definitions import build_definitions

    sites_file = small_estate(tmp_path / "estate", ["aws-stg-euw1", "gcp-prod-euw1"])
    defs = build_definitions()

    def resources(home: Path) -> dict:
        return {
            "estate": EstateResource(
                home=str(home), sites_file=str(sites_file),
                lake_uri=f"s3://{bucket}/{PREFIX}", lake_endpoint_url=aws_emulator.url,
            ),
            "control": ControlStoreResource(home=str(home), url=None, rbac_file=str(BUNDLED_RBAC_FILE)),
            "dbt": defs.resources["dbt"],
        }

    home = tmp_path / "home"
    refresh = defs.resolve_job_def("refresh_estate_job").execute_in_process(
        instance=dagster_instance, resources=resources(home), raise_on_error=False
    )
    assert refresh.success
    objects = bucket_objects(s3, bucket)
    sites_in_bucket = {key.split("/")[4] for key in objects}
    # discovery, the control store export, the configuration (drift rules, compliance catalog)
    # and the compliance evidence all land in the bucket
    assert sites_in_bucket == {
        "site=aws-stg-euw1", "site=gcp-prod-euw1", "site=control", "site=config", "site=compliance",
    }
    assert {f"{PREFIX}/{k}": v for k, v in local_files(home / "lake").items()} == objects

    # A fresh home that has only the bucket: the warehouse build syncs the mirror, then dbt.
    fresh = tmp_path / "fresh"
    build = defs.resolve_job_def("build_warehouse_job").execute_in_process(
        instance=dagster_instance, resources={k: v for k, v in resources(fresh).items() if k != "control"},
        raise_on_error=False,
    )
    assert build.success
    assert local_files(fresh / "lake") == local_files(home / "lake")
    logs = [e.user_message or "" for run in (refresh, build) for e in dagster_instance.all_logs(run.run_id)]
    assert any(f"{len(objects)} files downloaded, 0 already present" in m for m in logs)
    assert_no_credentials(*logs, *(body.decode("latin-1") for body in objects.values()))
    for statement in (
        "SELECT site_id, provider, asset_count, image_count, snapshot_count FROM sites ORDER BY site_id",
        "SELECT * FROM assets ORDER BY asset_id",
        "SELECT site_id, count(*) FROM drift_items GROUP BY site_id ORDER BY site_id",
    ):
        assert sql(fresh, statement) == sql(home, statement)
    assert sql(fresh, "SELECT count(*) FROM assets")[0][0] > 0
