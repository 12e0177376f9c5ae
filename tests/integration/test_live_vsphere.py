"""Live vSphere discovery against govmomi's vCenter simulator (vcsim, built from
tests/emulators/vsphere): the real pyvmomi SOAP calls, then the same normalize as sample data."""

from __future__ import annotations

import math
import os
import socket
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from qlrf_pipelines.connectors import vsphere
from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext, live_module
from qlrf_pipelines.connectors.live import vsphere as live
from qlrf_pipelines.discovery import discover_site
from qlrf_pipelines.sites import Site, load_sites
from tests.emulators.vsphere.fixtures import vcsim, vcsim_binary  # noqa: F401 - pytest fixtures
from tests.emulators.vsphere.vcsim import APP_ATTRIBUTES, TEMPLATES, Vcsim

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
USER_ENV, PASSWORD_ENV = "QLRF_TEST_VC_USER", "QLRF_TEST_VC_PASSWORD"
WRONG_PASSWORD_ENV = "QLRF_TEST_VC_WRONG_PASSWORD"


@pytest.fixture
def credentials(vcsim, monkeypatch):
    monkeypatch.setenv(USER_ENV, vcsim.username)
    monkeypatch.setenv(PASSWORD_ENV, vcsim.password)
    monkeypatch.setenv(WRONG_PASSWORD_ENV, "not-" + vcsim.password)
    return vcsim


def make_site(url: str, *, id: str = "vc-lab", password_env: str = PASSWORD_ENV, **extra) -> Site:
    return Site(
        id=id,
        provider="vsphere",
        name="vcsim lab",
        location="dc0-lab",
        environment="production",
        account="127.0.0.1",
        endpoint_url=url,
        credentials={"username_env": USER_ENV, "password_env": password_env},
        **extra,
    )


def fetch(site: Site) -> tuple[dict, FetchContext, float]:
    ctx = FetchContext.for_site(site)
    started = time.perf_counter()
    payload = live.fetch(ctx)
    return payload, ctx, time.perf_counter() - started


def no_secret_in(vcsim: Vcsim, *texts: str) -> None:
    for text in texts:
        assert vcsim.password not in text


def test_contract_and_registry():
    assert live_module("vsphere") is live
    assert live.READ_PERMISSIONS["vsphere_privileges"] == ["System.Anonymous", "System.View", "System.Read"]
    assert any("Read-only role" in note and "root folder" in note for note in live.READ_PERMISSIONS["notes"])


def test_values_become_the_json_normalize_reads():
    from pyVmomi import vim

    assert live.plain(vim.VirtualMachine("vm-1001")) == "vm-1001"
    assert live.plain([vim.Network("network-31"), vim.Network("dvportgroup-13")]) == ["network-31", "dvportgroup-13"]
    assert live.plain(vim.VirtualMachine.PowerState.poweredOn) == "poweredOn"
    assert type(live.plain(vim.VirtualMachine.PowerState.poweredOn)) is str
    assert live.plain(datetime(2026, 7, 8, 11, 12, tzinfo=timezone(timedelta(hours=2)))) == "2026-07-08T09:12:00Z"
    assert live.plain(datetime(2026, 7, 8, 9, 12)) == "2026-07-08T09:12:00Z"
    custom = live.plain([vim.CustomFieldsManager.StringValue(key=104, value="tpl-1")])
    assert custom == [{"key": 104, "value": "tpl-1"}] and type(custom[0]["key"]) is int
    definition = vim.CustomFieldsManager.FieldDef(key=101, name="qlrf.family", managedObjectType=vim.VirtualMachine)
    field_def = live.plain(definition)
    assert field_def == {"key": 101, "name": "qlrf.family", "managedObjectType": "VirtualMachine"}


def test_fetch_and_normalize_real_values(credentials):
    vcsim = credentials
    site = make_site(vcsim.url)
    payload, ctx, elapsed = fetch(site)
    seeded = vcsim.seeded

    assert payload["about"]["fullName"].startswith("VMware vCenter Server")
    assert payload["about"]["apiType"] == "VirtualCenter"
    assert len(payload["VirtualMachine"]) == seeded["vm_count"] == 120
    assert {d["name"] for d in payload["customFieldDefs"]} >= {"qlrf.family", "qlrf.source-template"}
    assert all(type(d["key"]) is int for d in payload["customFieldDefs"])
    assert [dc["propSet"]["name"] for dc in payload["Datacenter"]] == ["DC0"]
    assert sorted(c["propSet"]["name"] for c in payload["ClusterComputeResource"]) == ["DC0_C0", "DC0_C1"]
    first_host = payload["HostSystem"][0]["propSet"]
    assert first_host["summary.config.product.fullName"].startswith("VMware ESXi")
    vm = next(v for v in payload["VirtualMachine"] if v["propSet"]["name"] == "app-01")
    assert vm["obj"].startswith("vm-") and vm["propSet"]["runtime.host"].startswith("host-")
    assert vm["propSet"]["customValue"] and all(type(c["key"]) is int for c in vm["propSet"]["customValue"])

    discovery = vsphere.normalize(payload, site, AT)
    assert len(discovery.assets) + len(discovery.images) == 120
    images = {image.name: image for image in discovery.images}
    assert sorted(images) == sorted(TEMPLATES)
    golden = images["tpl-ubuntu-22-04-base-1-3-0"]
    assert (golden.family, golden.version, golden.status, golden.platform) == (
        "ubuntu-22.04-base",
        "1.3.0",
        "production",
        "linux",
    )
    assert images["tpl-ubuntu-22-04-base-1-2-0"].status == "deprecated"
    assert (images["tpl-windows-2022-base-2026-10"].platform, images["tpl-windows-2022-base-2026-10"].status) == (
        "windows",
        "testing",
    )
    assert images["tpl-scratch"].family is None

    assets = {asset.native_id: asset for asset in discovery.assets}
    assert len(assets) == 116, "instance UUIDs are unique"
    app = assets[seeded["app_uuid"]]
    assert app.asset_id == f"vsphere:vc-lab:{seeded['app_uuid']}"
    assert (app.name, app.kind, app.state, app.region) == ("app-01", "vm", "running", "dc0-lab")
    assert app.image_ref == "tpl-ubuntu-22-04-base-1-3-0"
    assert (app.cpu_count, app.memory_mb, app.platform) == (4, 8192, "linux")
    assert app.zone == "DC0_C0", "the cluster of the VM's host"
    assert {(t.key, t.value) for t in app.tags} == set(APP_ATTRIBUTES.items())
    assert '"host":"%s"' % seeded["app_host"] in app.attributes_json
    assert '"annotation":"payments web tier"' in app.attributes_json
    assert assets[seeded["powered_off_uuid"]].state == "stopped"
    assert assets[seeded["suspended_uuid"]].state == "stopped"
    # config.keyId is requested: the encrypted VM is customer-managed, every other VM unencrypted.
    assert assets[seeded["encrypted_uuid"]].disk_encryption == "customer_managed"
    assert '"keyProvider":"qlrf-kms"' in assets[seeded["encrypted_uuid"]].attributes_json
    assert {a.disk_encryption for a in discovery.assets if a.native_id != seeded["encrypted_uuid"]} == {"none"}
    standalone = [a for a in discovery.assets if a.name.startswith("DC0_H0_")]
    assert standalone and all(a.zone is None for a in standalone), "a standalone host is in no cluster"
    assert sum(a.state == "running" for a in discovery.assets) == 114

    print(f"\nvsphere live fetch: {len(payload['VirtualMachine'])} VMs in {elapsed:.2f}s, {dict(ctx.api_calls)}")


def test_pagination_is_counted_per_page(credentials):
    vcsim = credentials
    page_size = 25
    payload, ctx, _ = fetch(make_site(vcsim.url, settings={"page_size": page_size}))
    vms = len(payload["VirtualMachine"])
    assert vms == 120
    assert len({v["obj"] for v in payload["VirtualMachine"]}) == vms, "no page read twice"
    # One RetrievePropertiesEx per object type (6) and one for the custom field definitions;
    # only the VM list is longer than a page here.
    assert ctx.api_calls["PropertyCollector.RetrievePropertiesEx"] == 7
    assert ctx.api_calls["PropertyCollector.ContinueRetrievePropertiesEx"] == math.ceil(vms / page_size) - 1 == 4
    assert ctx.api_calls["ViewManager.CreateContainerView"] == 6


def test_one_round_trip_per_object_type_not_per_vm(credentials, vcsim_binary, monkeypatch):
    """The same number of requests for 120 and 1,200 VMs, but for one more page of 500."""
    small, small_ctx, small_s = fetch(make_site(credentials.url))
    calls_small = sum(small_ctx.api_calls.values())
    assert calls_small < len(small["VirtualMachine"]) / 5

    started = time.perf_counter()
    big_sim = Vcsim.start(vcsim_binary, dc=1, cluster=2, host=3, standalone_host=1, vm=400, timeout_s=120)
    start_s = time.perf_counter() - started
    try:
        monkeypatch.setenv(USER_ENV, big_sim.username)
        monkeypatch.setenv(PASSWORD_ENV, big_sim.password)
        big, big_ctx, big_s = fetch(make_site(big_sim.url))
    finally:
        big_sim.stop()
    assert len(big["VirtualMachine"]) == 1200
    assert big_ctx.api_calls["PropertyCollector.ContinueRetrievePropertiesEx"] == 2  # 1,200 VMs / 500 a page
    assert sum(big_ctx.api_calls.values()) == calls_small + 2
    print(
        f"\nvsphere live fetch: 120 VMs {small_s:.2f}s / {calls_small} requests; "
        f"1,200 VMs {big_s:.2f}s / {sum(big_ctx.api_calls.values())} requests "
        f"(simulator start {start_s:.1f}s); {dict(big_ctx.api_calls)}"
    )


def test_check_reads_the_product_name(credentials):
    assert live.check(FetchContext.for_site(make_site(credentials.url))) == (
        "vCenter VMware vCenter Server 6.5.0 build-5973321: reachable"
    )


def test_bad_credentials_beside_a_good_site_and_the_lake(credentials, tmp_path, monkeypatch):
    vcsim = credentials
    sites_path = tmp_path / "sites.yaml"
    sites_path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "sites": [
                    make_site(vcsim.url, id="vc-good").model_dump(exclude_none=True),
                    make_site(vcsim.url, id="vc-bad", password_env=WRONG_PASSWORD_ENV).model_dump(exclude_none=True),
                ],
            }
        )
    )
    sites = load_sites(sites_path)
    lake = tmp_path / "lake"

    good = discover_site(sites, "vc-good", lake, now=AT)
    assert (good.asset_count, good.image_count, good.golden_image_count) == (116, 4, 3)
    assert good.api_calls["PropertyCollector.RetrievePropertiesEx"] == 7
    landed = {path: path.read_bytes() for path in lake.rglob("*") if path.is_file()}
    assert landed and all("vc-good" in str(path) for path in landed)

    with pytest.raises(ConnectorError) as bad:
        discover_site(sites, "vc-bad", lake, now=AT + timedelta(minutes=1))
    assert (bad.value.site_id, bad.value.call) == ("vc-bad", "SessionManager.Login")
    assert f"login refused for user {vcsim.username!r}" in str(bad.value)
    assert str(bad.value).startswith("site vc-bad: SessionManager.Login: ")

    # The good site's password is rotated in vCenter but not yet here: its next run fails and
    # the earlier snapshot stays as it was, with nothing new beside it.
    monkeypatch.setenv(PASSWORD_ENV, "rotated-" + vcsim.password)
    with pytest.raises(ConnectorError) as rotated:
        discover_site(sites, "vc-good", lake, now=AT + timedelta(minutes=2))
    assert rotated.value.call == "SessionManager.Login"
    after = {path: path.read_bytes() for path in lake.rglob("*") if path.is_file()}
    assert after == landed

    no_secret_in(vcsim, str(bad.value), repr(bad.value), str(rotated.value), sites_path.read_text())
    for content in after.values():
        assert vcsim.password.encode() not in content


def test_unanswering_endpoint_times_out_within_the_site_timeout(credentials):
    with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        site = make_site(f"http://127.0.0.1:{port}/sdk", settings={"timeout_seconds": 1})
        started = time.perf_counter()
        with pytest.raises(ConnectorError) as timed_out:
            live.fetch(FetchContext.for_site(site))
        elapsed = time.perf_counter() - started
    assert elapsed < 5
    assert timed_out.value.call == "GET vimServiceVersions.xml"
    assert "timed out after 1s" in str(timed_out.value)


def test_a_stalled_property_collector_times_out_without_waiting_again(credentials, vcsim_binary, monkeypatch):
    """Login works, then RetrievePropertiesEx hangs: one timeout, no DestroyView / Logout waits."""
    slow = Vcsim.start(
        vcsim_binary, method_delay={"RetrievePropertiesEx": 20_000}, dc=1, cluster=1, host=1, standalone_host=0, vm=1
    )
    try:
        monkeypatch.setenv(USER_ENV, slow.username)
        monkeypatch.setenv(PASSWORD_ENV, slow.password)
        ctx = FetchContext.for_site(make_site(slow.url, settings={"timeout_seconds": 1}))
        started = time.perf_counter()
        with pytest.raises(ConnectorError) as stalled:
            live.fetch(ctx)
        elapsed = time.perf_counter() - started
    finally:
        slow.stop()
    assert elapsed < 4
    assert stalled.value.call == "PropertyCollector.RetrievePropertiesEx"
    assert "timed out after 1s" in str(stalled.value)
    assert "SessionManager.Logout" not in ctx.api_calls and "ContainerView.DestroyView" not in ctx.api_calls


def test_refused_connection_is_named(credentials):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the fetch: nothing listens there
    with pytest.raises(ConnectorError) as refused:
        live.check(FetchContext.for_site(make_site(f"http://127.0.0.1:{port}/sdk", settings={"timeout_seconds": 2})))
    assert f"connection refused by 127.0.0.1:{port}" in str(refused.value)


def test_missing_credentials_name_the_variable(credentials, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(ConnectorError) as missing:
        live.fetch(FetchContext.for_site(make_site(credentials.url)))
    assert missing.value.call == "credentials" and PASSWORD_ENV in str(missing.value)


def test_tls_is_verified_unless_the_site_opts_out(credentials, vcsim_binary, tmp_path, monkeypatch):
    certificate = tmp_path / "vcsim.pem"
    tls_sim = Vcsim.start(
        vcsim_binary, tls=True, cert_out=certificate, dc=1, cluster=1, host=1, standalone_host=0, vm=1
    )
    try:
        monkeypatch.setenv(USER_ENV, tls_sim.username)
        monkeypatch.setenv(PASSWORD_ENV, tls_sim.password)
        assert tls_sim.url.startswith("https://")
        with pytest.raises(ConnectorError) as untrusted:
            live.check(FetchContext.for_site(make_site(tls_sim.url)))
        message = str(untrusted.value)
        assert untrusted.value.call == "GET vimServiceVersions.xml"
        assert "certificate" in message and "not verified" in message and "verify_ssl: false" in message
        no_secret_in(tls_sim, message)

        assert live.check(FetchContext.for_site(make_site(tls_sim.url, verify_ssl=False))).endswith(": reachable")

        # Trusting the simulator's self-signed certificate through settings.ca_file also works.
        trusted = make_site(tls_sim.url, settings={"ca_file": str(certificate)})
        payload = live.fetch(FetchContext.for_site(trusted))
        assert len(payload["VirtualMachine"]) == 1
    finally:
        tls_sim.stop()

