"""Live Kubernetes discovery against the API server emulator (tests/emulators/kubernetes).

The connector runs unmodified over the real `kubernetes` client: a kubeconfig written here
(two contexts: a good and a bad bearer token) is found through the environment variable the
site's `credentials.kubeconfig_env` names, and the client talks HTTP to the emulator.
"""

from __future__ import annotations

import json
import math
import secrets
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from qlrf_pipelines.connectors import kubernetes as normalizer
from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.connectors.live import FetchContext, live_module
from qlrf_pipelines.connectors.live import kubernetes as live
from qlrf_pipelines.discovery import discover_site
from qlrf_pipelines.sample.catalog import GOLDEN_REGISTRY, current_production
from qlrf_pipelines.sites import Credentials, Site, SitesFile
from tests.emulators.kubernetes import LIST_KEYS, PATHS, KubernetesEmulator, load_data, write_kubeconfig
from tests.emulators.kubernetes.make_data import api_payload

pytestmark = pytest.mark.integration

ENV = "QLRF_TEST_KUBECONFIG"
GOOD_TOKEN = "qlrf-good-" + secrets.token_hex(16)
BAD_TOKEN = "qlrf-bad-" + secrets.token_hex(16)
AT = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)
DATA = load_data()
LIST_PATHS = {key: path for path, key in PATHS.items() if key != "version"}


def no_secret(text: str) -> str:
    assert GOOD_TOKEN not in text and BAD_TOKEN not in text, "a bearer token leaked"
    return text


def site(site_id: str = "k8s-emu", context: str = "good", **overrides) -> Site:
    settings = {"golden_registry": GOLDEN_REGISTRY, **overrides.pop("settings", {})}
    return Site(
        id=site_id,
        provider="kubernetes",
        name=f"emulated cluster ({context})",
        location="prod-eks-use1",
        environment="production",
        account="prod-eks-use1",
        credentials=Credentials(kubeconfig_env=ENV, context=context),
        settings=settings,
        **overrides,
    )


def fetch(target: Site) -> tuple[dict, FetchContext]:
    ctx = FetchContext.for_site(target)
    return live.fetch(ctx), ctx


def failure(target: Site) -> tuple[ConnectorError, FetchContext]:
    ctx = FetchContext.for_site(target)
    with pytest.raises(ConnectorError) as caught:
        live.fetch(ctx)
    no_secret(str(caught.value))
    no_secret(repr(caught.value))
    return caught.value, ctx


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def emulator():
    with KubernetesEmulator(tokens={GOOD_TOKEN}) as running:
        yield running


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch, emulator) -> Path:
    path = write_kubeconfig(tmp_path / "kubeconfig", emulator.url, {"good": GOOD_TOKEN, "bad": BAD_TOKEN})
    monkeypatch.setenv(ENV, str(path))
    return path


# -- the happy path ------------------------------------------------------------------------------


def test_live_connector_is_registered():
    assert live_module("kubernetes") is live


def test_fetch_returns_the_api_lists_and_normalizes_to_real_records(emulator, kubeconfig):
    target = site()
    payload, ctx = fetch(target)

    # The API's own camelCase JSON, every item, one List per kind.
    assert payload["version"]["gitVersion"] == "v1.30.4-eks-a737599"
    for key in LIST_KEYS:
        assert payload[key]["kind"] == DATA[key]["kind"]
        assert payload[key]["apiVersion"] == DATA[key]["apiVersion"]
        assert payload[key]["items"] == DATA[key]["items"], key
        assert "continue" not in payload[key]["metadata"]
    assert "containerStatuses" in payload["pods"]["items"][0]["status"]
    # One page each at the default page size (500), each request counted under its REST path.
    assert dict(ctx.api_calls) == {"GET /version": 1, **{f"GET {LIST_PATHS[k]}": 1 for k in LIST_KEYS}}
    lists = [r for r in emulator.calls() if r.path != "/version"]
    assert all(r.query.get("limit") == "500" and r.authorized for r in lists)

    found = normalizer.normalize(payload, target, AT)
    assert found == normalizer.normalize(DATA, target, AT)  # live == stored, record for record
    kinds = {kind: sum(1 for a in found.assets if a.kind == kind) for kind in ("node", "workload")}
    n_workloads = sum(len(DATA[k]["items"]) for k in ("deployments", "statefulsets", "daemonsets", "cronjobs"))
    assert kinds == {"node": 20, "workload": n_workloads} and n_workloads == 140

    by_name = {a.name: a for a in found.assets}
    node = by_name[DATA["nodes"]["items"][0]["metadata"]["name"]]
    assert node.kind == "node" and node.image_ref.startswith("ami-")
    assert node.asset_id == f"kubernetes:k8s-emu:{DATA['nodes']['items'][0]['metadata']['uid']}"
    assert (node.platform, node.os, node.region) == ("linux", "Ubuntu 22.04.5 LTS", "us-east-1")

    python = current_production("python-3.12")
    current = by_name["web/anchor-current"]
    assert current.kind == "workload" and current.network == "web"
    assert current.image_ref == f"{GOLDEN_REGISTRY}/python-3.12:{python.version}"
    container = json.loads(current.attributes_json)["containers"][0]
    assert container["imageID"].startswith(f"{GOLDEN_REGISTRY}/python-3.12@sha256:")  # digest from the pods
    # Pinned by that digest in the pod template; image_ref keeps the tag the catalog knows.
    assert container["image"] == current.image_ref + "@sha256:" + container["imageID"].rsplit(":", 1)[1]
    assert current.disk_encryption is None
    assert by_name["web/anchor-behind"].image_ref == f"{GOLDEN_REGISTRY}/python-3.12:3.12.6-r1"
    assert by_name["web/anchor-unknown"].image_ref == "docker.io/library/redis:7.2.5"

    images = {i.provider_image_id: i for i in found.images}
    assert images and all(ref.startswith(GOLDEN_REGISTRY + "/") for ref in images)
    assert {i.family for i in images.values()} == {"python-3.12", "nginx-1.27"}
    assert images[current.image_ref].version == python.version
    assert "docker.io/library/redis:7.2.5" not in images


def test_check_reports_the_version(emulator, kubeconfig):
    assert live.check(FetchContext.for_site(site())) == "Kubernetes v1.30.4-eks-a737599: reachable"
    with pytest.raises(ConnectorError) as caught:
        live.check(FetchContext.for_site(site("k8s-bad", context="bad")))
    assert "GET /version: HTTP 401" in no_secret(str(caught.value))


def test_read_permissions_cover_every_list_call():
    rules = live.READ_PERMISSIONS["rbac_rules"]
    granted = {(group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]}
    assert all(rule["verbs"] == ["get", "list"] for rule in rules)
    for key in LIST_KEYS:
        path = LIST_PATHS[key]
        group = "" if path.startswith("/api/") else path.split("/")[2]
        assert (group, key) in granted


# -- pagination, throttling --------------------------------------------------------------------------


@pytest.mark.parametrize("page_size, server_cap", [(10, None), (500, 7)], ids=["client-limit", "server-cap"])
def test_pages_are_followed_merged_and_counted(emulator, kubeconfig, page_size, server_cap):
    emulator.max_page_size = server_cap
    payload, ctx = fetch(site(settings={"page_size": page_size}))
    per_page = min(page_size, server_cap or page_size)
    for key in LIST_KEYS:
        assert payload[key]["items"] == DATA[key]["items"], key
        pages = max(1, math.ceil(len(DATA[key]["items"]) / per_page))
        assert ctx.api_calls[f"GET {LIST_PATHS[key]}"] == pages, key
    assert ctx.api_calls["GET /apis/apps/v1/deployments"] >= 3 and ctx.api_calls["GET /api/v1/pods"] >= 3
    deployments = emulator.calls("/apis/apps/v1/deployments")
    assert "continue" not in deployments[0].query
    assert all(r.query.get("continue") for r in deployments[1:])
    assert all(r.query["limit"] == str(page_size) for r in deployments)


def test_an_expired_continue_token_restarts_the_list(emulator, kubeconfig):
    emulator.expire_continue(1)
    payload, ctx = fetch(site(settings={"page_size": 50}))
    assert payload["deployments"]["items"] == DATA["deployments"]["items"]
    # nodes (20) fit one page; deployments (108): page 1, 410 on page 2, then 3 pages again.
    assert ctx.api_calls["GET /apis/apps/v1/deployments"] == 5
    assert [r.status for r in emulator.calls("/apis/apps/v1/deployments")] == [200, 410, 200, 200, 200]


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_is_retried_then_succeeds(emulator, kubeconfig, status):
    emulator.throttle(3, status=status, retry_after="0", path="/apis/apps/v1/deployments")
    started = time.perf_counter()
    payload, ctx = fetch(site(settings={"page_size": 50}))
    assert time.perf_counter() - started < 5
    assert payload["deployments"]["items"] == DATA["deployments"]["items"]
    assert ctx.api_calls["GET /apis/apps/v1/deployments"] == 3 + 3  # 3 throttled + 3 pages
    assert [r.status for r in emulator.calls("/apis/apps/v1/deployments")][:4] == [status] * 3 + [200]


def test_throttling_gives_up_after_the_retry_budget(emulator, kubeconfig):
    emulator.throttle(50, retry_after="0", path="/apis/apps/v1/deployments")
    error, ctx = failure(site(settings={"max_retries": 2}))
    assert (error.site_id, error.call) == ("k8s-emu", "GET /apis/apps/v1/deployments")
    assert "HTTP 429 Too Many Requests" in str(error) and "after 2 retries" in str(error)
    assert ctx.api_calls["GET /apis/apps/v1/deployments"] == 3


# -- failures ---------------------------------------------------------------------------------------


def test_bad_credentials_fail_beside_a_good_site_and_leave_the_lake_alone(emulator, kubeconfig, tmp_path):
    lake = tmp_path / "lake"
    sites = SitesFile(sites=[site("k8s-good", "good"), site("k8s-bad", "bad")])
    first = discover_site(sites, "k8s-good", lake, now=AT)
    assert first.asset_count == 160 and first.assets_by_kind == {"workload": 140, "node": 20}
    assert first.api_calls["GET /version"] == 1 and sum(first.api_calls.values()) == 8
    before = {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()}

    with pytest.raises(ConnectorError) as caught:
        discover_site(sites, "k8s-bad", lake, now=AT + timedelta(minutes=1))
    error = caught.value
    assert (error.site_id, error.call) == ("k8s-bad", "GET /version")
    assert "site k8s-bad" in str(error) and "HTTP 401 Unauthorized" in no_secret(str(error))
    assert {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()} == before  # nothing written
    assert not [p for p in lake.rglob("*") if "k8s-bad" in str(p)]

    second = discover_site(sites, "k8s-good", lake, now=AT + timedelta(minutes=2))
    assert second.snapshot_id != first.snapshot_id and second.asset_count == 160
    after = {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()}
    assert all(after[p] == data for p, data in before.items())  # the earlier snapshot is untouched
    assert len(after) == 2 * len(before)

    for path in after:
        no_secret(path.read_bytes().decode("latin-1"))
        if path.suffix == ".parquet":
            no_secret(json.dumps(pq.read_table(path).to_pylist(), default=str))


def test_missing_rbac_permission_names_the_call(emulator, kubeconfig):
    emulator.forbid("/apis/apps/v1/deployments")
    error, _ = failure(site())
    assert error.call == "GET /apis/apps/v1/deployments"
    assert "HTTP 403 Forbidden" in str(error) and 'cannot list resource "deployments"' in str(error)


def test_a_hung_server_costs_one_timeout(emulator, kubeconfig):
    emulator.hang("/api/v1/pods")
    started = time.perf_counter()
    error, ctx = failure(site(settings={"timeout_seconds": 1}))
    elapsed = time.perf_counter() - started
    assert error.call == "GET /api/v1/pods" and "timed out after 1s" in str(error)
    assert elapsed < 4, f"took {elapsed:.1f}s"  # no hidden transport retries
    assert ctx.api_calls["GET /api/v1/pods"] == 1


def test_connection_refused(kubeconfig):
    error, _ = failure(site(endpoint_url=f"http://127.0.0.1:{closed_port()}"))
    assert error.call == "GET /version" and "Connection refused" in str(error)


def test_endpoint_url_overrides_the_kubeconfig_server(emulator, tmp_path, monkeypatch):
    path = write_kubeconfig(tmp_path / "elsewhere", f"http://127.0.0.1:{closed_port()}", {"good": GOOD_TOKEN})
    monkeypatch.setenv(ENV, str(path))
    payload, ctx = fetch(site(endpoint_url=emulator.url))  # kept for every request, not only the first
    assert len(payload["nodes"]["items"]) == 20 and sum(ctx.api_calls.values()) == 8


def test_verify_ssl_false_survives_the_token_refresh_hook(kubeconfig):
    configuration = live._configuration(FetchContext.for_site(site(endpoint_url="https://k8s.example:6443", verify_ssl=False)))
    for _ in range(3):  # each request runs the loader's refresh hook, which re-installs itself
        assert configuration.get_api_key_with_prefix("BearerToken") == f"Bearer {GOOD_TOKEN}"
        assert (configuration.host, configuration.verify_ssl) == ("https://k8s.example:6443", False)


def test_unset_kubeconfig_variable_is_named(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    error, _ = failure(site())
    assert error.call == "load kubeconfig" and ENV in str(error)


def test_unknown_context_fails_cleanly(emulator, kubeconfig):
    error, _ = failure(site(context="nope"))
    assert error.call == "load kubeconfig" and "nope" in str(error)


def test_in_cluster_service_account(emulator, tmp_path, monkeypatch):
    import kubernetes.config.incluster_config as incluster

    token_file, ca_file = tmp_path / "token", tmp_path / "ca.crt"
    token_file.write_text(GOOD_TOKEN)
    ca_file.write_text("-----BEGIN CERTIFICATE-----\nnot used over http\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(token_file))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(ca_file))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(emulator.port))
    target = Site(id="k8s-pod", provider="kubernetes", name="in-cluster", location="eks", environment="prod",
                  endpoint_url=emulator.url, settings={"in_cluster": True})  # the emulator speaks http
    payload, _ = fetch(target)
    assert len(payload["deployments"]["items"]) == 108
    assert all(r.authorized for r in emulator.calls())

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    error, _ = failure(target)
    assert error.call == "load in-cluster config"


# -- cost -----------------------------------------------------------------------------------------


def test_wall_time_and_api_calls_for_a_large_cluster(kubeconfig, capsys):
    data = api_payload(20_000, seed="benchmark")
    workloads = sum(len(data[k]["items"]) for k in ("deployments", "statefulsets", "daemonsets", "cronjobs"))
    with KubernetesEmulator(data, tokens={GOOD_TOKEN}) as big:
        target = site(endpoint_url=big.url)
        started = time.perf_counter()
        payload, ctx = fetch(target)
        fetched = time.perf_counter() - started
        found = normalizer.normalize(payload, target, AT)
        total = time.perf_counter() - started
    assert len(found.assets) == 20_000
    calls = sum(ctx.api_calls.values())
    pages = {path.split()[-1].rsplit("/", 1)[-1]: n for path, n in ctx.api_calls.items()}
    assert calls == 1 + sum(max(1, math.ceil(len(data[k]["items"]) / 500)) for k in LIST_KEYS)
    with capsys.disabled():
        print(
            f"\nkubernetes live: {workloads} workloads + {len(data['nodes']['items'])} nodes + "
            f"{len(data['pods']['items'])} pods: fetch {fetched:.2f}s, fetch+normalize {total:.2f}s, "
            f"{calls} API calls (page size 500): {pages}"
        )
