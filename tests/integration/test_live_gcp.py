"""The GCP live connector against a local Compute REST emulator (tests/emulators/gcp), through
the unmodified google-cloud-compute clients on their REST transport: paging, REST-shaped
payloads, retries, credentials, timeouts, and discovery into a lake."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from qlrf_pipelines.connectors import gcp
from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext
from qlrf_pipelines.connectors.live import gcp as live
from qlrf_pipelines.discovery import discover_site
from qlrf_pipelines.sites import Site, load_sites
from tests.emulators.gcp import ComputeEmulator
from tests.emulators.gcp.estate import (
    GOLDEN_PROJECT,
    PROJECT,
    SITE_ID,
    build_projects,
    load_projects,
    rest_payload,
    template_site,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
DR_PROJECT = "qlrf-emu-dr"
READER = "qlrf-reader@qlrf-emu-dr.iam.gserviceaccount.com"
INTRUDER = "someone-else@other-project.iam.gserviceaccount.com"
GOLDEN = f"projects/{GOLDEN_PROJECT}/global/images"
PAGE = 20  # 48 instances -> 3 pages


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def projects() -> dict:
    found = load_projects()
    found.update(build_projects(12, project=DR_PROJECT, golden_project=None, seed="dr"))
    return found


@pytest.fixture(scope="module", autouse=True)
def sdk_imported():
    """Import google-cloud-compute once up front (~1.2 s, all 100+ services), so the timings
    below measure the calls."""
    started = time.perf_counter()
    import google.cloud.compute_v1  # noqa: F401

    print(f"\ngoogle.cloud.compute_v1 import: {time.perf_counter() - started:.2f}s")


@pytest.fixture(scope="module")
def emulator(projects):
    with ComputeEmulator(projects) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_emulator(emulator):
    emulator.reset()
    yield
    emulator.reset()


def _service_account_key(folder: Path, email: str, key_id: str) -> tuple[Path, str, str]:
    """A new RSA service-account key file: (path, private key PEM, public key PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    path = folder / f"{key_id}.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": DR_PROJECT,
                "private_key_id": key_id,
                "private_key": private,
                "client_email": email,
                "client_id": "104857600000000000001",
                "token_uri": "http://127.0.0.1:9/token",  # never called: the SDK signs its own JWTs
            }
        )
    )
    return path, private, public


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gcp-keys")
    return {
        "reader": _service_account_key(folder, READER, "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"),
        "intruder": _service_account_key(folder, INTRUDER, "f0e1d2c3b4a5968778695a4b3c2d1e0f76543210"),
    }


def emulated_site(emulator: ComputeEmulator, **settings) -> Site:
    defaults = {
        "anonymous": True,
        "image_projects": [GOLDEN_PROJECT],
        "page_size": PAGE,
        "timeout_seconds": 5,
        "retry_initial_seconds": 0.01,
        "retry_deadline_seconds": 5,
    }
    return template_site().model_copy(update={"endpoint_url": emulator.url, "settings": defaults | settings})


def assets(payload: dict, site: Site) -> list:
    """The asset records of a payload, in asset id order (aggregatedList scope order is not kept)."""
    return sorted(gcp.normalize(payload, site, NOW).assets, key=lambda asset: asset.asset_id)


def fetch(site: Site) -> tuple[dict, FetchContext]:
    ctx = FetchContext.for_site(site)
    return live.fetch(ctx), ctx


def failure(site: Site, action=live.fetch) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        action(FetchContext.for_site(site))
    return caught.value


# -- payload and records ----------------------------------------------------------------------


def test_fetch_gives_the_records_the_rest_responses_give(emulator, projects):
    site = emulated_site(emulator)
    started = time.perf_counter()
    payload, ctx = fetch(site)
    elapsed = time.perf_counter() - started

    # Paged through the SDK pagers: one counted call per page, as the emulator saw them.
    assert dict(ctx.api_calls) == {
        "compute.instances.aggregatedList": 3,  # 48 instances, 20 a page
        "compute.disks.aggregatedList": 3,
        "compute.images.list": 2,  # the project, then the shared golden-image project
        "compute.networks.list": 1,
    }
    assert emulator.calls("/aggregated/instances", 200) == 3
    assert emulator.calls("/aggregated/disks", 200) == 3
    assert emulator.calls(f"/{GOLDEN_PROJECT}/global/images", 200) == 1
    assert len(emulator.requests) == sum(ctx.api_calls.values())
    instance_requests = [r for r in emulator.requests if r.path.endswith("/aggregated/instances")]
    assert all(r.query.get("maxResults") == str(PAGE) for r in instance_requests)
    assert [bool(r.query.get("pageToken")) for r in instance_requests] == [False, True, True]

    # REST JSON shape: camelCase json names, int64 ids as strings, enums as names, no defaults.
    scoped = payload["instances.aggregatedList"]["items"]
    instances = [vm for scope in scoped.values() for vm in scope.get("instances", [])]
    assert len(instances) == 48
    anchor = next(vm for vm in instances if vm["name"] == "anchor-current-01")
    assert isinstance(anchor["id"], str) and anchor["id"].isdigit()
    assert anchor["status"] == "RUNNING"
    assert anchor["machineType"].startswith("https://www.googleapis.com/compute/v1/projects/qlrf-emu-prod/zones/")
    assert {"creationTimestamp", "networkInterfaces", "disks", "labels"} <= set(anchor)
    assert "guestAccelerators" not in anchor and "serviceAccounts" not in anchor  # unset stays unset
    nat = [c for vm in instances for nic in vm["networkInterfaces"] for c in nic.get("accessConfigs", [])]
    assert nat and all(c["type"] == "ONE_TO_ONE_NAT" and c["natIP"] for c in nat)
    disk = next(d for s in payload["disks.aggregatedList"]["items"].values() for d in s.get("disks", []))
    assert isinstance(disk["sizeGb"], str) and "sourceImage" in disk
    empty_zone = payload["instances.aggregatedList"]["items"]["zones/us-central1-a"]
    assert empty_zone["warning"]["code"] == "NO_RESULTS_ON_PAGE"
    assert [n["name"] for n in payload["networks.list"]["items"]] == ["vpc-prod", "vpc-shared-services"]

    # The records: identical to normalizing the unpaged REST responses the emulator serves.
    found = gcp.normalize(payload, site, NOW)
    expected = gcp.normalize(rest_payload(projects), site, NOW)
    assert assets(payload, site) == assets(rest_payload(projects), site)
    assert found.images == expected.images
    # normalize ignores the extra networks.list key
    assert gcp.normalize({k: v for k, v in payload.items() if k != "networks.list"}, site, NOW) == found

    vms = {vm.name: vm for vm in found.assets}
    current = vms["anchor-current-01"]
    assert current.asset_id == f"gcp:{SITE_ID}:{anchor['id']}"
    assert current.state == "running" and current.kind == "vm"
    assert current.image_ref == f"{GOLDEN}/golden-ubuntu-22-04-base-1-3-0"  # from the boot disk
    assert current.region == "europe-west1" and current.zone == "europe-west1-b"
    assert current.network == "vpc-prod"
    assert vms["anchor-revoked-01"].image_ref == f"{GOLDEN}/golden-rhel-9-base-9-2-1"
    assert vms["anchor-unknown-01"].image_ref == "projects/ubuntu-os-cloud/global/images/ubuntu-2204-jammy-v20261015"
    assert {vm.state for vm in found.assets} == {"running", "stopped"}
    assert all(vm.asset_id.startswith(f"gcp:{SITE_ID}:") for vm in found.assets)
    # The CMEK of the database disks comes through the SDK's disk model (diskEncryptionKey).
    for vm in found.assets:
        database = vm.name.split("-")[0] in ("db", "mssql")
        assert vm.disk_encryption == ("customer_managed" if database else "platform_managed"), vm.name
    assert any(vm.disk_encryption == "customer_managed" for vm in found.assets)

    images = {image.provider_image_id: image for image in found.images}
    golden = {path: image for path, image in images.items() if image.family}
    assert len(golden) == 11 and all(path.startswith(GOLDEN + "/") for path in golden)
    assert images[f"{GOLDEN}/golden-ubuntu-22-04-base-1-3-0"].status == "production"
    assert images[f"{GOLDEN}/golden-ubuntu-22-04-base-1-3-0"].version == "1.3.0"
    assert images[f"{GOLDEN}/golden-ubuntu-22-04-base-1-0-0"].status == "deprecated"
    assert images[f"{GOLDEN}/golden-rhel-9-base-9-2-1"].status == "revoked"
    assert images[f"projects/{PROJECT}/global/images/legacy-erp-app-2025-03"].family is None
    print(f"\nGCP live fetch, 48 instances: {elapsed:.2f}s, {sum(ctx.api_calls.values())} calls {dict(ctx.api_calls)}")


def test_server_page_limit_is_followed(emulator, projects):
    emulator.page_size_cap = 7
    try:
        payload, ctx = fetch(emulated_site(emulator, page_size=500))
    finally:
        emulator.page_size_cap = None
    assert ctx.api_calls["compute.instances.aggregatedList"] == 7  # ceil(48 / 7)
    assert ctx.api_calls["compute.images.list"] == 1 + 2  # 2 local, 11 golden
    site = emulated_site(emulator)
    assert assets(payload, site) == assets(rest_payload(projects), site)


# -- throttling -------------------------------------------------------------------------------


def test_throttled_then_served(emulator, projects):
    emulator.throttle(3, status=429, path="/aggregated/instances")
    emulator.throttle(2, status=503, path="/aggregated/disks")
    site = emulated_site(emulator)
    payload, ctx = fetch(site)
    assert ctx.api_calls["compute.instances.aggregatedList"] == 3  # pages served
    assert ctx.api_calls["compute.instances.aggregatedList:retry"] == 3  # answered 429, retried
    assert ctx.api_calls["compute.disks.aggregatedList:retry"] == 2  # answered 503, retried
    assert emulator.calls("/aggregated/instances", 429) == 3
    assert emulator.calls("/aggregated/disks", 503) == 2
    assert assets(payload, site) == assets(rest_payload(projects), site)


def test_throttling_that_does_not_end_fails_within_the_retry_deadline(emulator):
    emulator.throttle(10**6, status=429, path="/aggregated/instances")
    started = time.perf_counter()
    error = failure(emulated_site(emulator, retry_deadline_seconds=0.5, retry_initial_seconds=0.05))
    assert time.perf_counter() - started < 5
    assert error.site_id == SITE_ID and error.call == "compute.instances.aggregatedList"
    assert "HTTP 429" in str(error) and "RATE_LIMIT_EXCEEDED" in str(error)
    assert "after retrying for 0.5s" in str(error)


# -- credentials ------------------------------------------------------------------------------


def _sites_file(folder: Path, emulator: ComputeEmulator) -> Path:
    common = {"location": "europe-west1", "endpoint_url": emulator.url}
    sites = [
        {
            "id": SITE_ID, "provider": "gcp", "name": "GCP production", "environment": "production",
            "account": PROJECT, "settings": {"anonymous": True, "image_projects": [GOLDEN_PROJECT]}, **common,
        },
        {
            "id": "gcp-emu-dr", "provider": "gcp", "name": "GCP DR", "environment": "dr",
            "account": DR_PROJECT, "credentials": {"service_account_file_env": "QLRF_TEST_GCP_DR_KEY"},
            "settings": {"timeout_seconds": 5, "retry_initial_seconds": 0.01}, **common,
        },
    ]
    path = folder / "sites.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "sites": sites}))
    return path


def _lake_files(lake: Path, site_id: str) -> dict[str, bytes]:
    return {str(p.relative_to(lake)): p.read_bytes() for p in lake.rglob(f"site={site_id}/*.parquet")}


def test_bad_credentials_fail_their_site_only(emulator, keys, tmp_path, monkeypatch):
    reader_path, reader_private, reader_public = keys["reader"]
    intruder_path, intruder_private, intruder_public = keys["intruder"]
    emulator.register_key(READER, reader_path.stem, reader_public)
    emulator.register_key(INTRUDER, intruder_path.stem, intruder_public)
    emulator.grant(DR_PROJECT, READER)  # DR now requires a signed token from the reader
    sites = load_sites(_sites_file(tmp_path, emulator))
    lake = tmp_path / "lake"

    # The DR site's service account works: its snapshot lands.
    monkeypatch.setenv("QLRF_TEST_GCP_DR_KEY", str(reader_path))
    first = discover_site(sites, "gcp-emu-dr", lake)
    assert first.asset_count == 12 and first.api_calls["compute.instances.aggregatedList"] == 1
    assert {r.principal for r in emulator.requests} == {READER}
    before = _lake_files(lake, "gcp-emu-dr")
    assert len(before) == 3

    # Then its key file is one of another principal (403), is revoked (401), or is missing.
    def intruder_key() -> None:
        monkeypatch.setenv("QLRF_TEST_GCP_DR_KEY", str(intruder_path))

    def revoked_key() -> None:
        monkeypatch.setenv("QLRF_TEST_GCP_DR_KEY", str(reader_path))
        emulator.revoke_key(reader_path.stem)

    def no_key() -> None:
        monkeypatch.delenv("QLRF_TEST_GCP_DR_KEY")

    errors: list[ConnectorError] = []
    for setup, expected in (
        (intruder_key, "HTTP 403 Forbidden (IAM_PERMISSION_DENIED)"),
        (revoked_key, "HTTP 401 Unauthorized"),
        (no_key, "environment variable QLRF_TEST_GCP_DR_KEY"),
    ):
        setup()
        good = discover_site(sites, SITE_ID, lake)  # the site beside it is unaffected
        assert good.asset_count == 48 and good.golden_image_count == 11
        with pytest.raises(ConnectorError) as caught:
            discover_site(sites, "gcp-emu-dr", lake)
        error = caught.value
        assert error.site_id == "gcp-emu-dr" and str(error).startswith("site gcp-emu-dr: ")
        assert expected in str(error), str(error)
        errors.append(error)
    assert [e.call for e in errors] == [
        "compute.instances.aggregatedList",
        "compute.instances.aggregatedList",
        "load credentials",
    ]
    assert "Required 'compute.instances.list' permission for 'projects/qlrf-emu-dr'" in str(errors[0])

    # The failed site's earlier snapshot is untouched and nothing new was written for it.
    assert _lake_files(lake, "gcp-emu-dr") == before
    assert len(_lake_files(lake, SITE_ID)) == 3 * 3

    # No credential material anywhere: not in errors, not in the lake.
    tokens = {r.token for r in emulator.requests if r.token}
    assert tokens  # signed JWTs were sent
    secrets = [
        *(line for line in (reader_private + intruder_private).splitlines() if len(line) > 20),
        reader_path.stem, intruder_path.stem, str(reader_path), str(intruder_path), *tokens,
    ]
    texts = [str(e) for e in errors] + [p.read_bytes().decode("latin-1") for p in lake.rglob("*.parquet")]
    for secret in secrets:
        assert not any(secret in text for text in texts), "credential material leaked"


def test_denied_anonymous_project(emulator):
    emulator.deny(PROJECT, 401)
    error = failure(emulated_site(emulator))
    assert error.call == "compute.instances.aggregatedList"
    assert "HTTP 401 Unauthorized" in str(error) and "without credentials" in str(error)


def test_shared_image_project_refused_names_the_project(emulator):
    emulator.grant(GOLDEN_PROJECT, READER)  # anonymous requests to it now fail
    error = failure(emulated_site(emulator))
    assert error.call == "compute.images.list"
    assert f"project {GOLDEN_PROJECT}: HTTP 401" in str(error)


# -- timeouts and partial answers -------------------------------------------------------------


def test_a_hung_call_times_out_within_its_bound(emulator):
    emulator.hang("/aggregated/instances")
    started = time.perf_counter()
    error = failure(emulated_site(emulator, timeout_seconds=1))
    elapsed = time.perf_counter() - started
    assert error.call == "compute.instances.aggregatedList"
    assert str(error).endswith("timed out after 1s")
    assert 0.9 < elapsed < 4


def test_unreachable_zone_is_refused_not_taken_as_empty(emulator):
    emulator.unreachable(PROJECT, "zones/europe-west1-c")
    error = failure(emulated_site(emulator))
    assert error.call == "compute.instances.aggregatedList"
    assert "partial result, unreachable: zones/europe-west1-c" in str(error)


def test_unreachable_endpoint(emulator):
    site = emulated_site(emulator).model_copy(update={"endpoint_url": "http://127.0.0.1:9"})
    error = failure(site)
    assert error.call == "compute.instances.aggregatedList"
    assert "cannot connect to http://127.0.0.1:9" in str(error)


# -- check ------------------------------------------------------------------------------------


def test_check(emulator):
    ctx = FetchContext.for_site(emulated_site(emulator))
    assert live.check(ctx) == f"project {PROJECT}: reachable"
    assert dict(ctx.api_calls) == {"compute.projects.get": 1}
    assert [r.path for r in emulator.requests] == [f"/compute/v1/projects/{PROJECT}"]

    emulator.deny(PROJECT, 403)
    error = failure(emulated_site(emulator), live.check)
    assert error.call == "compute.projects.get" and "HTTP 403" in str(error)

    emulator.reset()
    emulator.hang(f"/projects/{PROJECT}")
    error = failure(emulated_site(emulator, timeout_seconds=1), live.check)
    assert error.call == "compute.projects.get" and str(error).endswith("timed out after 1s")


def test_read_permissions_cover_every_call():
    assert live.READ_PERMISSIONS["gcp_role"] == ["roles/compute.viewer"]
    for permission in ("compute.instances.list", "compute.disks.list", "compute.images.list",
                       "compute.networks.list", "compute.projects.get"):
        assert permission in live.READ_PERMISSIONS["permissions"]


# -- scale ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_assets", [5000])
def test_scale(n_assets):
    projects = build_projects(n_assets, project="qlrf-emu-scale", seed="scale")
    with ComputeEmulator(projects) as emulator:
        site = template_site(project="qlrf-emu-scale").model_copy(
            update={"endpoint_url": emulator.url, "settings": {"anonymous": True, "image_projects": [GOLDEN_PROJECT]}}
        )
        started = time.perf_counter()
        payload, ctx = fetch(site)
        fetched = time.perf_counter() - started
        found = gcp.normalize(payload, site, NOW)
        total = time.perf_counter() - started
    assert len(found.assets) == n_assets
    pages = -(-n_assets // 500)
    assert dict(ctx.api_calls) == {
        "compute.instances.aggregatedList": pages,
        "compute.disks.aggregatedList": pages,
        "compute.images.list": 2,
        "compute.networks.list": 1,
    }
    print(
        f"\nGCP live fetch, {n_assets} instances: fetch {fetched:.2f}s, fetch+normalize {total:.2f}s, "
        f"{sum(ctx.api_calls.values())} calls {dict(ctx.api_calls)}"
    )
