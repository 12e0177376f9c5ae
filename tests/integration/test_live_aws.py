"""The live AWS connector (qlrf_pipelines.connectors.live.aws) against moto's server on 127.0.0.1,
seeded once per session (tests/emulators/aws), with throttling, rejected credentials and a hung
endpoint put on the wire by a local proxy / socket server (tests/emulators/aws/faults.py).

Run alone with -s to see the measured wall time and API calls of discovering the seeded estate.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from qlrf_pipelines.connectors import aws as aws_normalize
from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext
from qlrf_pipelines.connectors.live import aws as live_aws
from qlrf_pipelines.discovery import discover_site
from qlrf_pipelines.lake import list_snapshots
from qlrf_pipelines.sites import Site, load_sites
from tests.emulators.aws.faults import FaultProxy, SilentServer
from tests.emulators.aws.moto_server import aws_emulator, aws_estate  # noqa: F401  (fixtures)
from tests.emulators.aws.seed import ACCOUNT, BUILT, CUSTOMER_KEY_ALIAS, GOLDEN, PUBLIC_UBUNTU, REGIONS, Estate

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)

# Fake credentials, handed over through environment variables the sites name (moto accepts any key).
GOOD_KEY_ENV, GOOD_SECRET_ENV = "QLRF_TEST_AWS_KEY_ID", "QLRF_TEST_AWS_SECRET"
BAD_KEY_ENV, BAD_SECRET_ENV = "QLRF_TEST_AWS_BAD_KEY_ID", "QLRF_TEST_AWS_BAD_SECRET"
GOOD_KEY, GOOD_SECRET = "AKIAQLRFTESTGOOD0001", "qlrf-FAKE-secret-9f3a7c1e5b"
BAD_KEY, BAD_SECRET = "AKIAQLRFTESTBAD00001", "qlrf-FAKE-bad-secret-2b8e4d6a0c"
SECRETS = (GOOD_KEY, GOOD_SECRET, BAD_KEY, BAD_SECRET)

SMALL_PAGE = 10


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    for name, value in {GOOD_KEY_ENV: GOOD_KEY, GOOD_SECRET_ENV: GOOD_SECRET, BAD_KEY_ENV: BAD_KEY, BAD_SECRET_ENV: BAD_SECRET}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture()
def proxy(aws_emulator):  # noqa: F811
    with FaultProxy(aws_emulator.url) as running:
        yield running


def make_site(endpoint: str, site_id: str = "aws-emu", bad: bool = False, **fields) -> Site:
    values = dict(
        id=site_id,
        provider="aws",
        name=f"AWS emulator ({site_id})",
        location="us-east-1",
        regions=["eu-west-1"],
        environment="development",
        account=ACCOUNT,
        endpoint_url=endpoint,
        credentials={
            "access_key_id_env": BAD_KEY_ENV if bad else GOOD_KEY_ENV,
            "secret_access_key_env": BAD_SECRET_ENV if bad else GOOD_SECRET_ENV,
        },
    )
    values.update(fields)
    return Site(**values)


def assert_no_secret(text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"a credential value leaked: {secret[:8]}..."


def fetch_timed(site: Site) -> tuple[dict, FetchContext, float]:
    ctx = FetchContext.for_site(site)
    started = time.perf_counter()
    payload = live_aws.fetch(ctx)
    return payload, ctx, time.perf_counter() - started


# -- (1) fetch + normalize against the seeded estate -------------------------------------------


@pytest.fixture(scope="module")
def discovered(aws_emulator, aws_estate):  # noqa: F811
    """The seeded estate fetched at the API's page size (cold, then warm) and at SMALL_PAGE."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {GOOD_KEY_ENV: GOOD_KEY, GOOD_SECRET_ENV: GOOD_SECRET}.items():
            mp.setenv(name, value)
        site = make_site(aws_emulator.url)
        _, _, cold_s = fetch_timed(site)
        payload, ctx, warm_s = fetch_timed(site)
        started = time.perf_counter()
        found = aws_normalize.normalize(payload, site, NOW)
        normalize_s = time.perf_counter() - started
        paged_site = make_site(aws_emulator.url, settings={"page_size": SMALL_PAGE})
        paged_payload, paged_ctx, paged_s = fetch_timed(paged_site)
    return {
        "site": site,
        "payload": payload,
        "found": found,
        "api_calls": dict(ctx.api_calls),
        "cold_s": cold_s,
        "warm_s": warm_s,
        "normalize_s": normalize_s,
        "paged_payload": paged_payload,
        "paged_api_calls": dict(paged_ctx.api_calls),
        "paged_s": paged_s,
    }


def test_fetch_and_normalize_the_seeded_estate(discovered, aws_estate: Estate, capsys):  # noqa: F811
    found, site = discovered["found"], discovered["site"]
    assets = {asset.native_id: asset for asset in found.assets}
    assert set(assets) == set(aws_estate.instances)
    for instance_id, seeded in aws_estate.instances.items():
        asset = assets[instance_id]
        assert asset.asset_id == f"aws:{site.id}:{instance_id}"
        assert asset.kind == "vm" and asset.provider == "aws" and asset.site_id == site.id
        assert asset.name == seeded.name
        assert asset.state == seeded.state
        assert asset.region == seeded.region
        assert asset.zone == f"{seeded.region}a"
        assert asset.image_ref == seeded.image_id
        assert asset.network == aws_estate.vpcs[seeded.region]
        assert asset.launched_at is not None
        # From the root volume: unencrypted, under alias/aws/ebs, or under alias/qlrf-ebs.
        assert asset.disk_encryption == seeded.disk_encryption, asset.name
    assert {a.disk_encryption for a in found.assets} == {"none", "platform_managed", "customer_managed"}
    assert sorted({a.region for a in found.assets}) == sorted(REGIONS)
    assert sum(a.state == "stopped" for a in found.assets) == 3 * len(REGIONS)

    images = {(image.provider_image_id, image.region): image for image in found.images}
    for image_id, golden in aws_estate.golden.items():
        image = images[(image_id, golden.region)]
        assert (image.family, image.version, image.status) == (golden.family, golden.version, golden.status)
        assert image.created_at is not None
    families = {(g.family, g.version, g.status) for g in aws_estate.golden.values()}
    assert families == {*GOLDEN["us-east-1"], *GOLDEN["eu-west-1"], BUILT}
    # The non-owned AMI instances run is looked up too (by id), in every region that uses it.
    for region in REGIONS:
        public = images[(PUBLIC_UBUNTU, region)]
        assert public.family is None and public.status is None
    # Every image_ref resolves to an image discovered in the asset's region.
    assert all((a.image_ref, a.region) in images for a in found.assets)

    with capsys.disabled():
        print(
            f"\n[live aws] seeded estate: {len(found.assets)} instances, {len(found.images)} images, "
            f"{len(REGIONS)} regions | fetch cold {discovered['cold_s']:.2f}s, warm {discovered['warm_s']:.2f}s, "
            f"normalize {discovered['normalize_s'] * 1000:.1f}ms | API calls: {discovered['api_calls']}"
            f"\n[live aws] page_size={SMALL_PAGE}: fetch {discovered['paged_s']:.2f}s | API calls: "
            f"{discovered['paged_api_calls']}"
        )


def test_payload_carries_volumes_aliases_vpcs_subnets(discovered, aws_estate: Estate):  # noqa: F811
    payload = discovered["payload"]
    json.dumps(payload)  # plain JSON: timestamps stay EC2's text
    for region in REGIONS:
        calls = payload["regions"][region]
        assert set(calls) == {
            "DescribeInstances", "DescribeImages", "DescribeVolumes", "DescribeVpcs", "DescribeSubnets", "ListAliases",
        }
        assert aws_estate.volumes[region] <= {v["VolumeId"] for v in calls["DescribeVolumes"]["Volumes"]}
        aliases = {a["AliasName"]: a.get("TargetKeyId") for a in calls["ListAliases"]["Aliases"]}
        assert {"alias/aws/ebs", CUSTOMER_KEY_ALIAS} <= set(aliases)
        assert aws_estate.vpcs[region] in {v["VpcId"] for v in calls["DescribeVpcs"]["Vpcs"]}
        assert aws_estate.subnets[region] in {s["SubnetId"] for s in calls["DescribeSubnets"]["Subnets"]}
        launch = calls["DescribeInstances"]["Reservations"][0]["Instances"][0]["LaunchTime"]
        assert isinstance(launch, str) and launch.endswith("Z")

    # VPCs and subnets are kept for configuration drift; normalize does not read them.
    stripped = {
        "regions": {
            region: {k: v for k, v in calls.items() if k not in ("DescribeVpcs", "DescribeSubnets")}
            for region, calls in payload["regions"].items()
        }
    }
    site = discovered["site"]
    assert aws_normalize.normalize(stripped, site, NOW) == discovered["found"]


# -- (2) pagination -----------------------------------------------------------------------------


def test_pagination_follows_every_page(discovered, aws_estate: Estate):  # noqa: F811
    calls, paged_calls = discovered["api_calls"], discovered["paged_api_calls"]
    assert calls["ec2:DescribeInstances"] == len(REGIONS)  # one page per region at the API maximum
    expected_pages = aws_estate.pages(SMALL_PAGE)
    assert aws_estate.reservations["us-east-1"] > 5 * SMALL_PAGE
    assert paged_calls["ec2:DescribeInstances"] == expected_pages >= 7
    # Same estate either way: pages merged into one DescribeInstances per region.
    for region in REGIONS:
        full = discovered["payload"]["regions"][region]["DescribeInstances"]["Reservations"]
        paged = discovered["paged_payload"]["regions"][region]["DescribeInstances"]["Reservations"]
        assert [r["ReservationId"] for r in paged] == [r["ReservationId"] for r in full]
    # Own images + one lookup of the non-owned ids, per region.
    assert calls["ec2:DescribeImages"] == 2 * len(REGIONS)
    for op in ("DescribeVolumes", "DescribeVpcs", "DescribeSubnets"):
        assert calls[f"ec2:{op}"] == len(REGIONS)
    assert calls["kms:ListAliases"] == len(REGIONS)


def test_without_kms_list_aliases_discovery_goes_on_at_most_platform_managed(proxy, aws_estate: Estate):  # noqa: F811
    """kms:ListAliases is optional: denied, the payload has no aliases, and volumes under a
    customer managed key can no longer be told from the AWS managed one."""
    proxy.deny_service("kms")
    site = make_site(proxy.url)
    payload, ctx, _ = fetch_timed(site)
    assert all("ListAliases" not in calls for calls in payload["regions"].values())
    assert ctx.api_calls["kms:ListAliases"] == len(REGIONS)  # asked once per region, not retried
    found = {a.native_id: a for a in aws_normalize.normalize(payload, site, NOW).assets}
    for instance_id, seeded in aws_estate.instances.items():
        expected = "platform_managed" if seeded.disk_encryption == "customer_managed" else seeded.disk_encryption
        assert found[instance_id].disk_encryption == expected


def test_kms_unreachable_fails_the_site_naming_the_call(proxy):
    proxy.drop_service("kms")
    site = make_site(proxy.url, regions=[], settings={"max_attempts": 1})
    with pytest.raises(ConnectorError) as raised:
        live_aws.fetch(FetchContext.for_site(site))
    assert raised.value.call == "us-east-1 kms:ListAliases"
    assert_no_secret(str(raised.value))


# -- (3) throttling then success ----------------------------------------------------------------


def test_throttled_requests_are_retried_until_they_succeed(proxy, discovered, aws_estate: Estate):  # noqa: F811
    proxy.throttle("DescribeInstances", 2)
    site = make_site(proxy.url)
    payload, ctx, _ = fetch_timed(site)

    found = aws_normalize.normalize(payload, site, NOW)
    assert {a.native_id for a in found.assets} == set(aws_estate.instances)
    statuses = proxy.statuses("DescribeInstances")
    assert statuses.count(503) == 2 and statuses.count(200) == len(REGIONS)
    # before-send counts every attempt: the pages plus the two retries.
    assert ctx.api_calls["ec2:DescribeInstances"] == len(REGIONS) + 2


def test_throttling_beyond_max_attempts_fails_naming_the_call(proxy):
    proxy.throttle("DescribeInstances", 1000)
    site = make_site(proxy.url, regions=[], settings={"max_attempts": 2})
    with pytest.raises(ConnectorError) as raised:
        live_aws.fetch(FetchContext.for_site(site))
    assert raised.value.site_id == "aws-emu"
    assert raised.value.call == "us-east-1 ec2:DescribeInstances"
    assert "RequestLimitExceeded" in str(raised.value) and "after 2 attempts" in str(raised.value)
    assert proxy.statuses("DescribeInstances") == [503, 503]
    assert_no_secret(str(raised.value))


# -- (4) bad credentials beside good ones -------------------------------------------------------


def test_rejected_credentials_fail_one_site_and_leave_the_others(proxy, tmp_path: Path, aws_estate: Estate):  # noqa: F811
    sites_file = tmp_path / "sites.yaml"
    sites = [
        make_site(proxy.url, site_id=site_id, bad=bad).model_dump(mode="json", exclude_none=True)
        for site_id, bad in (("aws-good", False), ("aws-bad", True))
    ]
    sites_file.write_text(yaml.safe_dump({"version": 1, "sites": sites}))
    loaded = load_sites(sites_file)
    lake = tmp_path / "lake"

    # While its key was still valid, the bad site landed a snapshot.
    earlier = discover_site(loaded, "aws-bad", lake, now=NOW)
    assert earlier.asset_count == len(aws_estate.instances)
    earlier_bytes = {f.path: f.path.read_bytes() for f in earlier.files}

    proxy.reject_key(BAD_KEY)  # the key is revoked
    good = discover_site(loaded, "aws-good", lake, now=NOW + timedelta(hours=1))
    with pytest.raises(ConnectorError) as raised:
        discover_site(loaded, "aws-bad", lake, now=NOW + timedelta(hours=1, seconds=1))

    error = raised.value
    assert error.site_id == "aws-bad"
    assert error.call == "us-east-1 ec2:DescribeInstances"
    assert "AuthFailure" in str(error) and "aws-bad" in str(error)
    assert_no_secret(str(error))

    assert good.asset_count == len(aws_estate.instances)
    assert good.api_calls["ec2:DescribeInstances"] == len(REGIONS)
    assert [s.snapshot_id for s in list_snapshots(lake, "assets", "aws-bad")] == [earlier.snapshot_id]
    assert {f.path: f.path.read_bytes() for f in earlier.files} == earlier_bytes

    # (7) no credential value in any lake file, compressed bytes or decoded values.
    parquet_files = sorted(lake.rglob("*.parquet"))
    assert len(parquet_files) == 2 * 3
    for path in parquet_files:
        assert_no_secret(path.read_bytes())
        assert_no_secret(json.dumps(pq.read_table(path).to_pylist(), default=str))


# -- (5) a hung endpoint ------------------------------------------------------------------------


def test_an_endpoint_that_never_answers_times_out():
    with SilentServer() as silent:
        site = make_site(silent.url, settings={"timeout_seconds": 0.5, "max_attempts": 2})
        started = time.perf_counter()
        with pytest.raises(ConnectorError) as raised:
            live_aws.fetch(FetchContext.for_site(site))
        elapsed = time.perf_counter() - started
    # Two attempts of 0.5 s each (regions in parallel), a short backoff between them.
    assert 0.9 < elapsed < 5, elapsed
    assert raised.value.call == "us-east-1 ec2:DescribeInstances"
    assert "timed out after 0.5s" in str(raised.value)
    assert silent.connections >= 2
    assert_no_secret(str(raised.value))


def test_an_endpoint_that_refuses_connections():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]  # free once closed: nothing listens there
    site = make_site(f"http://127.0.0.1:{port}", settings={"max_attempts": 2})
    with pytest.raises(ConnectorError) as raised:
        live_aws.fetch(FetchContext.for_site(site))
    assert raised.value.call == "us-east-1 ec2:DescribeInstances"
    assert f"could not connect to http://127.0.0.1:{port}" in str(raised.value)


# -- (6) check ------------------------------------------------------------------------------------


def test_check_reports_the_account_and_regions(aws_emulator, aws_estate):  # noqa: F811
    ctx = FetchContext.for_site(make_site(aws_emulator.url))
    message = live_aws.check(ctx)
    assert message.startswith(f"account {ACCOUNT} ")
    assert message.endswith("2 regions: us-east-1, eu-west-1")
    assert dict(ctx.api_calls) == {"sts:GetCallerIdentity": 1}


def test_check_fails_on_rejected_credentials(proxy):
    proxy.reject_key(BAD_KEY)
    with pytest.raises(ConnectorError) as raised:
        live_aws.check(FetchContext.for_site(make_site(proxy.url, bad=True)))
    assert raised.value.call == "sts:GetCallerIdentity"
    assert "InvalidClientTokenId" in str(raised.value)
    assert_no_secret(str(raised.value))


def test_check_fails_when_the_credentials_are_for_another_account(aws_emulator):  # noqa: F811
    with pytest.raises(ConnectorError) as raised:
        live_aws.check(FetchContext.for_site(make_site(aws_emulator.url, account="999988887777")))
    assert raised.value.call == "sts:GetCallerIdentity"
    assert f"account {ACCOUNT}" in str(raised.value) and "999988887777" in str(raised.value)


def test_check_falls_back_to_ec2_when_sts_is_unreachable(proxy):
    proxy.drop_service("sts")
    ctx = FetchContext.for_site(make_site(proxy.url, settings={"max_attempts": 1}))
    message = live_aws.check(ctx)
    assert message.startswith("account unknown (sts:GetCallerIdentity: ")
    assert message.endswith("2 regions: us-east-1, eu-west-1")
    assert ctx.api_calls["ec2:DescribeRegions"] == 1


def test_role_is_assumed_before_discovery(aws_emulator, aws_estate):  # noqa: F811
    role = "arn:aws:iam::111122223333:role/qlrf-read"
    site = make_site(aws_emulator.url, account="111122223333", credentials={
        "access_key_id_env": GOOD_KEY_ENV, "secret_access_key_env": GOOD_SECRET_ENV, "role_arn": role,
    })
    ctx = FetchContext.for_site(site)
    assert live_aws.check(ctx).startswith("account 111122223333 (arn:aws:sts::111122223333:assumed-role/qlrf-read/qlrf-discovery)")
    assert ctx.api_calls["sts:AssumeRole"] == 1
    # moto keeps a separate (empty) estate per account: the assumed credentials were used.
    payload, fetch_ctx, _ = fetch_timed(site)
    assert aws_normalize.normalize(payload, site, NOW).assets == []
    assert fetch_ctx.api_calls["sts:AssumeRole"] == 1


def test_assume_role_refused(proxy):
    proxy.reject_key(BAD_KEY)
    site = make_site(proxy.url, credentials={
        "access_key_id_env": BAD_KEY_ENV, "secret_access_key_env": BAD_SECRET_ENV,
        "role_arn": "arn:aws:iam::111122223333:role/qlrf-read",
    })
    with pytest.raises(ConnectorError) as raised:
        live_aws.fetch(FetchContext.for_site(site))
    assert raised.value.call == "sts:AssumeRole"
    assert "InvalidClientTokenId" in str(raised.value)
    assert_no_secret(str(raised.value))


def test_named_profile(aws_emulator, aws_estate, tmp_path, monkeypatch):  # noqa: F811
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[qlrf-test]\naws_access_key_id = {GOOD_KEY}\naws_secret_access_key = {GOOD_SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    site = make_site(aws_emulator.url, credentials={"profile": "qlrf-test"})
    assert live_aws.check(FetchContext.for_site(site)).startswith(f"account {ACCOUNT} ")

    missing = make_site(aws_emulator.url, credentials={"profile": "nobody"})
    with pytest.raises(ConnectorError) as raised:
        live_aws.check(FetchContext.for_site(missing))
    assert raised.value.call == "credentials" and "'nobody'" in str(raised.value)


# -- (7) no secret in any message -----------------------------------------------------------------


def test_a_key_quoted_by_the_service_is_scrubbed_from_the_message(proxy):
    proxy.reject_key(BAD_KEY, echo_key=True)  # as some AWS services quote the key id they refused
    with pytest.raises(ConnectorError) as raised:
        live_aws.fetch(FetchContext.for_site(make_site(proxy.url, bad=True, regions=[])))
    message = str(raised.value)
    assert "AuthFailure" in message and "(***)" in message
    assert_no_secret(message)


def test_missing_credentials_name_the_variable_not_a_value(aws_emulator, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv(GOOD_SECRET_ENV)
    with pytest.raises(ConnectorError) as raised:
        live_aws.fetch(FetchContext.for_site(make_site(aws_emulator.url)))
    assert raised.value.call == "credentials"
    assert f"environment variable {GOOD_SECRET_ENV}" in str(raised.value)
    assert_no_secret(str(raised.value))

    # No keys named, no profile, an empty default chain.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConnectorError) as raised:
        live_aws.fetch(FetchContext.for_site(make_site(aws_emulator.url, credentials={})))
    assert raised.value.call == "credentials" and "no AWS credentials found" in str(raised.value)


def test_read_permissions_name_every_call_made(discovered):
    actions = set(live_aws.READ_PERMISSIONS["iam_actions"])
    assert set(discovered["api_calls"]) <= actions
    assert {"sts:GetCallerIdentity", "ec2:DescribeRegions"} <= actions
    assert live_aws.READ_PERMISSIONS["iam_actions_for_role_arn"] == ["sts:AssumeRole"]
