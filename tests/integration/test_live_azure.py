"""The Azure live connector against a local Entra ID + Resource Manager emulator (HTTPS, its own
test CA): the unmodified SDK clients page through an emulated subscription, the payload goes
through the same normalize as the sample connector, and failures name the site and the call
without leaking the client secret or the bearer token."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from qlrf_pipelines.connectors import azure
from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext
from qlrf_pipelines.connectors.live import azure as live
from qlrf_pipelines.discovery import discover_site
from qlrf_pipelines.sites import Credentials, Site, SitesFile
from tests.emulators.azure import N_VMS, SUBSCRIPTION, TENANT, AzureEmulator
from tests.emulators.azure.server import load_data

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)
GOOD_CLIENT, GOOD_SECRET = "0c9d1e2f-qlrf-reader", "Qx7~good.client.secret-VALUE-1234"
NOROLE_CLIENT, NOROLE_SECRET = "5a6b7c8d-qlrf-norole", "Zr4~norole.client.secret-VALUE-5678"
WRONG_SECRET = "Wq2~wrong.client.secret-VALUE-0000"
ENV = {
    "QLRF_TEST_AZ_TENANT": TENANT,
    "QLRF_TEST_AZ_CLIENT": GOOD_CLIENT,
    "QLRF_TEST_AZ_SECRET": GOOD_SECRET,
    "QLRF_TEST_AZ_NOROLE_CLIENT": NOROLE_CLIENT,
    "QLRF_TEST_AZ_NOROLE_SECRET": NOROLE_SECRET,
}
DATA = load_data()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with AzureEmulator(tmp_path_factory.mktemp("azure-emulator")) as emu:
        emu.add_principal(GOOD_CLIENT, GOOD_SECRET)
        emu.add_principal(NOROLE_CLIENT, NOROLE_SECRET, reader=False)
        yield emu


@pytest.fixture(autouse=True)
def fresh_emulator(emulator, monkeypatch):
    emulator.reset()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    yield


def make_site(emulator: AzureEmulator, site_id: str = "azure-emu", client: str = "", **settings) -> Site:
    """A site on the emulator: a service principal from env vars, the emulator as ARM endpoint
    and as authority, its test CA trusted through settings.ca_bundle."""
    merged = {"authority": emulator.base_url, "ca_bundle": str(emulator.certs.ca_file), "timeout_seconds": 10}
    merged.update(settings)
    merged = {k: v for k, v in merged.items() if v is not None}
    return Site(
        id=site_id,
        provider="azure",
        name=f"Azure emulated ({site_id})",
        location="westeurope",
        environment="production",
        account=SUBSCRIPTION,
        endpoint_url=emulator.base_url,
        credentials=Credentials(
            tenant_id_env="QLRF_TEST_AZ_TENANT",
            client_id_env=f"QLRF_TEST_AZ{client}_CLIENT",
            client_secret_env=f"QLRF_TEST_AZ{client}_SECRET",
        ),
        settings=merged,
    )


def assert_no_secrets(emulator: AzureEmulator, text: str) -> None:
    for secret in (GOOD_SECRET, NOROLE_SECRET, WRONG_SECRET, *emulator.tokens):
        assert secret not in text
    assert "eyJ" not in text  # no JWT-shaped token at all


def error_text(exc: BaseException) -> str:
    """Everything an error carries that could end up in a log: message, repr, causes."""
    parts = []
    while exc is not None:
        parts += [str(exc), repr(exc), repr(getattr(exc, "args", ""))]
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return "\n".join(parts)


def site_files(lake: Path, site_id: str) -> dict[Path, bytes]:
    """Every file (hidden ones too) the lake holds for one site, with its bytes."""
    return {p: p.read_bytes() for p in lake.rglob("*") if f"site={site_id}" in str(p) and p.is_file()}


def data_by_name(collection: str) -> dict[str, dict]:
    return {item["name"]: item for item in DATA[collection]}


def power_state(vm: dict) -> str:
    codes = [s["code"] for s in vm["properties"]["instanceView"]["statuses"]]
    power = [c.split("/", 1)[1] for c in codes if c.startswith("PowerState/")]
    if power:
        return azure.POWER_STATES[power[0]]
    provisioning = vm["properties"]["provisioningState"].lower()
    return {"creating": "pending", "deleting": "terminated"}.get(provisioning, "unknown")


# -- discovery --------------------------------------------------------------------------------


def test_fetch_and_normalize_the_emulated_subscription(emulator):
    site = make_site(emulator)
    ctx = FetchContext.for_site(site)
    started = time.perf_counter()
    payload = live.fetch(ctx)
    fetched = time.perf_counter() - started
    found = azure.normalize(payload, site, NOW)
    total = time.perf_counter() - started

    # Every collection, in the REST JSON shape (camelCase, nested properties).
    assert {k: len(v["value"]) for k, v in payload.items()} == {
        "virtualMachines": N_VMS,
        "galleryImages": len(DATA["galleryImages"]),
        "galleryImageVersions": len(DATA["galleryImageVersions"]),
        "images": len(DATA["images"]),
        "disks": len(DATA["disks"]),
        "networkInterfaces": len(DATA["networkInterfaces"]),
        "publicIPAddresses": len(DATA["publicIPAddresses"]),
    }
    first = payload["virtualMachines"]["value"][0]
    assert first == DATA["virtualMachines"][0]  # unchanged by the SDK models' round trip
    assert "vmId" in first["properties"] and "instanceView" in first["properties"]

    # Assets: one per VM, id azure:<site>:<vmId>, power state from the statusOnly instance view.
    vms = data_by_name("virtualMachines")
    assets = {a.name: a for a in found.assets}
    assert set(assets) == set(vms)
    for name, vm in vms.items():
        asset = assets[name]
        assert asset.asset_id == f"azure:{site.id}:{vm['properties']['vmId']}"
        assert asset.state == power_state(vm), name
    states = Counter(a.state for a in found.assets)
    assert states["running"] > 0 and states["stopped"] > 0

    gallery = (
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg-golden-images"
        "/providers/microsoft.compute/galleries/qlrf_golden"
    )
    anchor = assets["anchor-current-01"]
    assert anchor.image_ref == f"{gallery}/images/ubuntu-22.04-base/versions/1.3.0"
    assert anchor.state == "running" and anchor.zone == "1" and anchor.region == "westeurope"
    assert anchor.private_ip and anchor.network == "anchor-current-01-nic01"
    assert sum(1 for a in found.assets if a.public_ip) == len(DATA["publicIPAddresses"])
    # Managed disks: the databases' under the disk encryption set (as their disk resources say).
    for name, asset in assets.items():
        database = name.split("-")[0] in ("db", "mssql")
        assert asset.disk_encryption == ("customer_managed" if database else "platform_managed"), name
    assert assets["anchor-unknown-01"].image_ref.startswith("Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2")

    # Golden images: every gallery version with its family / version / status from the qlrf tags.
    images = {i.provider_image_id: i for i in found.images}
    for version in DATA["galleryImageVersions"]:
        image = images[version["id"].lower()]
        assert (image.family, image.version, image.status) == (
            version["tags"]["qlrf:family"],
            version["tags"]["qlrf:version"],
            version["tags"]["qlrf:status"],
        )
    assert images[f"{gallery}/images/ubuntu-22.04-base/versions/1.3.0"].platform == "linux"
    statuses = Counter(i.status for i in found.images if i.family)
    assert statuses["production"] and statuses["revoked"] and statuses["deprecated"]
    # Every gallery image reference resolves to a discovered golden version.
    gallery_refs = {a.image_ref for a in found.assets if a.image_ref and "/galleries/" in a.image_ref}
    assert gallery_refs and gallery_refs <= set(images)

    # Cost: one request per page; one token for the whole fetch; every ARM request authorised.
    pages = math.ceil(N_VMS / emulator.behaviour.page_size)
    assert ctx.api_calls[live.VMS] == pages
    assert ctx.api_calls[live.NICS] == math.ceil(len(DATA["networkInterfaces"]) / emulator.behaviour.page_size)
    assert ctx.api_calls[live.GALLERY_VERSIONS] == len(DATA["galleryImages"])
    assert sum(ctx.api_calls.values()) == len(emulator.arm_requests())
    assert all(r.status == 200 and r.client_id == GOOD_CLIENT for r in emulator.arm_requests())
    assert len(emulator.token_requests()) == 1
    vm_requests = [r for r in emulator.arm_requests() if r.path.endswith("/virtualMachines")]
    assert all(r.query["statusOnly"] == "true" for r in vm_requests)

    calls = dict(sorted(ctx.api_calls.items()))
    print(
        f"\nAzure emulated estate: {N_VMS} VMs, {len(found.images)} images; fetch {fetched:.2f} s, "
        f"fetch+normalize {total:.2f} s; {sum(calls.values())} ARM requests + 1 token request: {json.dumps(calls)}"
    )


def test_pagination_counts_every_page(emulator):
    emulator.behaviour.page_size = 40
    site = make_site(emulator)
    ctx = FetchContext.for_site(site)
    payload = live.fetch(ctx)
    vm_pages = math.ceil(N_VMS / 40)
    assert vm_pages >= 4
    assert ctx.api_calls[live.VMS] == vm_pages
    assert len(DATA["disks"]) > N_VMS  # OS disks and the databases' data disks
    assert ctx.api_calls[live.DISKS] == math.ceil(len(DATA["disks"]) / 40)
    assert ctx.api_calls[live.NICS] == math.ceil(len(DATA["networkInterfaces"]) / 40)
    ids = [vm["id"] for vm in payload["virtualMachines"]["value"]]
    assert len(ids) == len(set(ids)) == N_VMS
    vm_requests = [r for r in emulator.arm_requests() if r.path.endswith("/virtualMachines")]
    assert len(vm_requests) == vm_pages
    assert sum("$skiptoken" in r.query for r in vm_requests) == vm_pages - 1  # followed the nextLinks


def test_throttling_then_success(emulator):
    emulator.throttle(2, "/providers/Microsoft.Compute/virtualMachines", retry_after="0")
    ctx = FetchContext.for_site(make_site(emulator))
    started = time.perf_counter()
    payload = live.fetch(ctx)
    elapsed = time.perf_counter() - started
    assert len(payload["virtualMachines"]["value"]) == N_VMS
    assert ctx.api_calls[live.VMS] == math.ceil(N_VMS / emulator.behaviour.page_size)  # pages, not attempts
    assert ctx.api_calls[f"{live.VMS} (retry)"] == 2
    assert [r.status for r in emulator.arm_requests() if r.path.endswith("/virtualMachines")][:3] == [429, 429, 200]
    assert elapsed < 10


def test_throttled_beyond_the_retries(emulator):
    emulator.throttle(1000, "/providers/Microsoft.Compute/virtualMachines", retry_after="0")
    ctx = FetchContext.for_site(make_site(emulator, retry_total=2, retry_backoff_factor=0.05))
    with pytest.raises(ConnectorError) as caught:
        live.fetch(ctx)
    error = caught.value
    assert error.site_id == "azure-emu" and error.call == live.VMS
    assert "HTTP 429 TooManyRequests" in str(error) and "after 2 retries" in str(error)
    assert ctx.api_calls[f"{live.VMS} (retry)"] == 2
    assert_no_secrets(emulator, error_text(error))


def test_principal_without_the_reader_role(emulator):
    ctx = FetchContext.for_site(make_site(emulator, client="_NOROLE"))
    with pytest.raises(ConnectorError) as caught:
        live.fetch(ctx)
    error = caught.value
    assert error.call == live.VMS
    assert "HTTP 403 AuthorizationFailed" in str(error) and "Reader" in str(error)
    assert "Microsoft.Compute/virtualMachines/read" in str(error)
    assert_no_secrets(emulator, error_text(error))


def test_missing_credential_variable_is_named(emulator, monkeypatch):
    monkeypatch.delenv("QLRF_TEST_AZ_SECRET")
    with pytest.raises(ConnectorError) as caught:
        live.fetch(FetchContext.for_site(make_site(emulator)))
    assert caught.value.call == "credentials" and "QLRF_TEST_AZ_SECRET" in str(caught.value)
    assert emulator.requests == []


def test_bad_credentials_beside_a_good_site(emulator, monkeypatch, tmp_path):
    lake = tmp_path / "lake"
    good, bad = make_site(emulator, "azure-good"), make_site(emulator, "azure-bad", client="_BAD")
    sites = SitesFile(sites=[good, bad])
    monkeypatch.setenv("QLRF_TEST_AZ_BAD_CLIENT", GOOD_CLIENT)
    monkeypatch.setenv("QLRF_TEST_AZ_BAD_SECRET", GOOD_SECRET)
    earlier = discover_site(sites, "azure-bad", lake, NOW - timedelta(days=1))
    assert earlier.asset_count == N_VMS
    earlier_files = site_files(lake, "azure-bad")
    assert earlier_files

    monkeypatch.setenv("QLRF_TEST_AZ_BAD_SECRET", WRONG_SECRET)  # the secret was rotated, the site not updated
    landed = discover_site(sites, "azure-good", lake, NOW)
    with pytest.raises(ConnectorError) as caught:
        discover_site(sites, "azure-bad", lake, NOW)
    error = caught.value
    assert error.site_id == "azure-bad" and error.call == live.TOKEN_CALL
    assert str(error).startswith("site azure-bad: oauth2/token: authentication failed")
    assert "AADSTS7000215" in str(error) and "QLRF_TEST_AZ_BAD_SECRET" in str(error)
    assert [r.status for r in emulator.token_requests()][-1] == 401

    # The good site landed; the bad site's earlier snapshot is untouched and nothing new was written.
    assert landed.asset_count == N_VMS and landed.api_calls[live.VMS] == 3
    assert all(path.exists() for path in (f.path for f in landed.files))
    now_files = site_files(lake, "azure-bad")
    assert now_files == earlier_files

    assert_no_secrets(emulator, error_text(error))
    for path in lake.rglob("*.parquet"):  # every value of every row the lake holds
        assert_no_secrets(emulator, json.dumps(pq.read_table(path).to_pylist(), default=str))


def test_timeout_is_bounded(emulator):
    emulator.hang("/providers/Microsoft.Compute/virtualMachines")
    ctx = FetchContext.for_site(make_site(emulator, timeout_seconds=1))
    started = time.perf_counter()
    with pytest.raises(ConnectorError) as caught:
        live.fetch(ctx)
    elapsed = time.perf_counter() - started
    error = caught.value
    assert error.call == live.VMS
    assert "timed out after 1s" in str(error)
    assert elapsed < 8, elapsed  # two attempts of 1 s, not the SDK's default 300 s
    assert_no_secrets(emulator, error_text(error))


def test_token_endpoint_timeout_is_bounded(emulator):
    emulator.hang("/oauth2/v2.0/token")
    started = time.perf_counter()
    with pytest.raises(ConnectorError) as caught:
        live.check(FetchContext.for_site(make_site(emulator, timeout_seconds=1)))
    assert time.perf_counter() - started < 8
    assert caught.value.call == live.TOKEN_CALL and "timed out after 1s" in str(caught.value)


# -- check and TLS ----------------------------------------------------------------------------


def test_check(emulator):
    ctx = FetchContext.for_site(make_site(emulator))
    assert live.check(ctx) == f"subscription {SUBSCRIPTION}: reachable (QL-RF emulated production, Enabled)"
    assert dict(ctx.api_calls) == {live.SUBSCRIPTION_READ: 1}


def test_default_azure_credential_without_site_credentials(emulator, monkeypatch):
    site = make_site(emulator).model_copy(update={"credentials": Credentials()})
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", GOOD_CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", GOOD_SECRET)
    assert live.check(FetchContext.for_site(site)).startswith(f"subscription {SUBSCRIPTION}: reachable")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", WRONG_SECRET)
    with pytest.raises(ConnectorError) as caught:
        live.check(FetchContext.for_site(site))
    assert caught.value.call == live.TOKEN_CALL and "DefaultAzureCredential" in str(caught.value)
    assert_no_secrets(emulator, error_text(caught.value))


def test_check_with_a_wrong_secret(emulator, monkeypatch):
    monkeypatch.setenv("QLRF_TEST_AZ_SECRET", WRONG_SECRET)
    with pytest.raises(ConnectorError) as caught:
        live.check(FetchContext.for_site(make_site(emulator)))
    assert caught.value.call == live.TOKEN_CALL
    assert_no_secrets(emulator, error_text(caught.value))


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("trust", ["ca_bundle", "REQUESTS_CA_BUNDLE", "verify_ssl_off", "untrusted"])
def test_tls_trust(emulator, monkeypatch, trust):
    fields: dict = {"ca_bundle": None}
    if trust == "ca_bundle":
        fields["ca_bundle"] = str(emulator.certs.ca_file)
    elif trust == "REQUESTS_CA_BUNDLE":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.certs.ca_file))
    site = make_site(emulator, **fields)
    if trust == "verify_ssl_off":
        site = site.model_copy(update={"verify_ssl": False})
    ctx = FetchContext.for_site(site)
    if trust == "untrusted":
        with pytest.raises(ConnectorError) as caught:
            live.check(ctx)
        assert caught.value.call == live.TOKEN_CALL and "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    else:
        assert live.check(ctx).endswith("reachable (QL-RF emulated production, Enabled)")


def test_read_permissions_cover_every_call():
    assert live.READ_PERMISSIONS["azure_role"] == ["Reader"]
    actions = set(live.READ_PERMISSIONS["actions"])
    for call in (live.VMS, live.GALLERIES, live.GALLERY_IMAGES, live.GALLERY_VERSIONS, live.IMAGES, live.DISKS,
                 live.NICS, live.PUBLIC_IPS):
        assert call.removesuffix("/list") + "/read" in actions
    assert "Microsoft.Compute/virtualMachines/instanceView/read" in actions


def test_operation_names():
    name = live.operation_name
    assert name("GET", f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/virtualMachines") == live.VMS
    versions = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d/versions"
    assert name("GET", versions) == live.GALLERY_VERSIONS
    assert name("GET", f"/subscriptions/{SUBSCRIPTION}") == live.SUBSCRIPTION_READ
    assert name("GET", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1") == (
        "Microsoft.Compute/virtualMachines/read"
    )


def test_data_files_are_arm_list_items():
    for name, items in DATA.items():
        if name == "subscription":
            continue
        assert items and all(item["id"].startswith(f"/subscriptions/{SUBSCRIPTION}/") for item in items), name
    assert Path(__file__).resolve().parents[1].joinpath("emulators/azure/data/virtualMachines.json").exists()
