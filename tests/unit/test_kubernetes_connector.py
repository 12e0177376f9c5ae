"""Kubernetes connector: API list responses to canonical records, and the sample generator."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from qlrf_pipelines.connectors import kubernetes, provider_module
from qlrf_pipelines.connectors.base import PayloadError
from qlrf_pipelines.connectors.sample import discover_from_sample
from qlrf_pipelines.models import Tag, version_sort_key
from qlrf_pipelines.sample import gen_kubernetes
from qlrf_pipelines.sample.catalog import GOLDEN_REGISTRY, MACHINE_IMAGE_VERSIONS, aws_ami_id, current_production
from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from qlrf_pipelines.sites import Site, load_sites
from tests.unit.connector_helpers import (
    by_name,
    check_bundled_sample_drift,
    images_by_id,
    payload_fixture,
    production_site,
)

AT = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)
CART_DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # pinned in the fixture
LEDGER_DIGEST = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

SITE = production_site(
    id="k8s-prod-eks",
    provider="kubernetes",
    name="EKS production cluster",
    location="prod-eks-use1",
    account="prod-eks-use1",
    settings={"golden_registry": "registry.example.com/golden"},
)

payload = payload_fixture("kubernetes/cluster-small.json")


def test_registry_finds_the_module():
    assert provider_module("kubernetes") is kubernetes
    assert kubernetes.PROVIDER == "kubernetes"


def test_nodes_become_assets(payload):
    assets = by_name(kubernetes.normalize(payload, SITE, AT).assets)
    node = assets["ip-10-0-12-34.ec2.internal"]
    assert node.asset_id == "kubernetes:k8s-prod-eks:0f1e2d3c-1111-4a5b-8c7d-000000000001"
    assert node.native_id == "0f1e2d3c-1111-4a5b-8c7d-000000000001"
    assert (node.kind, node.state, node.provider) == ("node", "running", "kubernetes")
    assert node.image_ref == "ami-0123456789abcdef0"
    assert (node.os, node.platform, node.instance_type) == ("Ubuntu 22.04.5 LTS", "linux", "m6i.xlarge")
    assert (node.region, node.zone) == ("us-east-1", "us-east-1a")
    assert (node.cpu_count, node.memory_mb) == (4, 16086712 // 1024)
    assert (node.private_ip, node.public_ip) == ("10.0.12.34", "54.210.1.2")
    assert node.launched_at == datetime(2026, 10, 20, 7, 15, tzinfo=timezone.utc)
    assert Tag("eks.amazonaws.com/nodegroup", "ng-general-a") in node.tags
    assert len(node.tags) == 6
    attributes = json.loads(node.attributes_json)
    assert attributes["kubeletVersion"] == "v1.30.4-eks-a737599"
    assert attributes["containerRuntimeVersion"] == "containerd://1.7.22"
    assert attributes["kernelVersion"] == "6.5.0-1024-aws"
    assert attributes["providerID"] == "aws:///us-east-1a/i-0abc1234def567890"

    other = assets["gke-stg-pool-b-1a2b3c4d-x7k2"]
    assert other.state == "degraded", "Ready=False"
    assert other.image_ref == "projects/qlrf-prod-euw1/global/images/golden-ubuntu-22-04-base-1-2-0"
    assert other.instance_type == "n2-standard-8", "legacy beta label"
    assert (other.cpu_count, other.memory_mb) == (8, 32 * 1024)
    assert (other.region, other.zone) == (None, "europe-west1-b")
    assert json.loads(other.attributes_json)["unschedulable"] is True


def test_unschedulable_ready_node_is_still_running(payload):
    payload["nodes"]["items"][0]["spec"]["unschedulable"] = True
    node = by_name(kubernetes.normalize(payload, SITE, AT).assets)["ip-10-0-12-34.ec2.internal"]
    assert node.state == "running"


def test_workloads_become_assets(payload):
    discovery = kubernetes.normalize(payload, SITE, AT)
    workloads = [a for a in discovery.assets if a.kind == "workload"]
    assert [a.name for a in workloads] == [
        "web/storefront", "web/cart", "payments/ledger-api", "data/redis",
        "monitoring/node-exporter", "data/etl-nightly", "data/report-sync",
    ]
    w = by_name(workloads)

    storefront = w["web/storefront"]
    assert storefront.asset_id == "kubernetes:k8s-prod-eks:d0000000-0000-4000-8000-000000000001"
    assert (storefront.state, storefront.network) == ("running", "web")
    assert storefront.image_ref == "registry.example.com/golden/python-3.12:3.12.8-r2"
    assert storefront.platform == "linux"
    assert storefront.launched_at == datetime(2026, 10, 5, 9, 0, tzinfo=timezone.utc)
    assert storefront.tags == [Tag("app.kubernetes.io/name", "storefront"), Tag("team", "web")]
    attributes = json.loads(storefront.attributes_json)
    assert attributes["kind"] == "Deployment"
    assert (attributes["replicas"], attributes["readyReplicas"]) == (3, 3)
    assert attributes["containers"] == [
        {"name": "app", "image": "registry.example.com/golden/python-3.12:3.12.8-r2",
         "imageID": "registry.example.com/golden/python-3.12@sha256:" + "1" * 64},
        {"name": "log-shipper", "image": "docker.io/fluent/fluent-bit:3.1.9",
         "imageID": "docker.io/fluent/fluent-bit@sha256:" + "2" * 64},
    ]
    assert attributes["initContainers"] == [{"name": "migrate", "image": "registry.example.com/golden/tools/migrate:1.0.4"}]

    assert w["web/cart"].state == "degraded"
    # Pinned by tag and digest: named by its tag (the catalog's version), the pin kept as written.
    assert w["web/cart"].image_ref == "registry.example.com/golden/nginx-1.27:1.27.1-r1"
    cart = json.loads(w["web/cart"].attributes_json)["containers"][0]
    assert cart["image"] == "registry.example.com/golden/nginx-1.27:1.27.1-r1@sha256:" + CART_DIGEST
    assert "imageID" not in cart, "no pods, no digest"
    assert w["payments/ledger-api"].state == "stopped"
    # Pinned by digest alone: nothing better to name it by.
    assert w["payments/ledger-api"].image_ref == "ghcr.io/acme/ledger@sha256:" + LEDGER_DIGEST
    assert {a.disk_encryption for a in discovery.assets} == {None}, "not a VM's disks"

    redis = w["data/redis"]
    assert (redis.state, redis.image_ref) == ("running", "docker.io/library/redis:7.2.5")
    redis_attributes = json.loads(redis.attributes_json)
    assert redis_attributes["kind"] == "StatefulSet"
    assert redis_attributes["containers"][0]["imageID"] == "docker.io/library/redis@sha256:" + "3" * 64

    exporter = w["monitoring/node-exporter"]
    assert (exporter.state, exporter.image_ref) == ("running", "quay.io/prometheus/node-exporter:v1.8.2")
    assert json.loads(exporter.attributes_json)["replicas"] == 2

    etl = w["data/etl-nightly"]
    assert (etl.state, etl.image_ref) == ("stopped", "registry.example.com/golden/python-3.12:3.12.7-r1")
    etl_attributes = json.loads(etl.attributes_json)
    assert (etl_attributes["kind"], etl_attributes["schedule"], etl_attributes["suspend"]) == ("CronJob", "30 2 * * *", True)
    assert "replicas" not in etl_attributes
    assert w["data/report-sync"].state == "running"


@pytest.mark.parametrize(
    ("kind_key", "index", "status", "expected"),
    [
        ("deployments", 1, {"replicas": 2, "readyReplicas": 2}, "running"),
        ("deployments", 1, {"replicas": 2}, "degraded"),
        ("statefulsets", 0, {"readyReplicas": 1}, "degraded"),
        ("daemonsets", 0, {"desiredNumberScheduled": 3, "numberReady": 2}, "degraded"),
        ("daemonsets", 0, {"desiredNumberScheduled": 0, "numberReady": 0}, "stopped"),
    ],
)
def test_workload_state_from_desired_and_ready(payload, kind_key, index, status, expected):
    payload[kind_key]["items"][index]["status"] = status
    discovery = kubernetes.normalize(payload, SITE, AT)
    name = payload[kind_key]["items"][index]["metadata"]
    asset = by_name(discovery.assets)[f"{name['namespace']}/{name['name']}"]
    assert asset.state == expected


def test_golden_container_images(payload):
    images = kubernetes.normalize(payload, SITE, AT).images
    assert [i.provider_image_id for i in images] == [
        "registry.example.com/golden/nginx-1.27:1.27.1-r1",
        "registry.example.com/golden/python-3.12:3.12.7-r1",
        "registry.example.com/golden/python-3.12:3.12.8-r2",
        "registry.example.com/golden/tools/migrate:1.0.4",
    ]
    python = images[2]
    assert (python.family, python.version, python.status, python.created_at) == ("python-3.12", "3.12.8-r2", None, None)
    assert python.version_key == version_sort_key("3.12.8-r2")
    assert python.name == python.provider_image_id
    assert (python.site_id, python.provider, python.discovered_at) == ("k8s-prod-eks", "kubernetes", AT)
    assert (images[3].family, images[3].version) == ("tools/migrate", "1.0.4")


def test_no_golden_registry_no_images(payload):
    site = SITE.model_copy(update={"settings": {}})
    assert kubernetes.normalize(payload, site, AT).images == []


def test_image_name_drops_the_digest_of_a_tagged_reference():
    digest = "@sha256:" + "a" * 64
    assert kubernetes.image_name("registry.example.com/golden/python-3.12:3.12.8-r2" + digest) == (
        "registry.example.com/golden/python-3.12:3.12.8-r2"
    )
    assert kubernetes.image_name("registry.example.com:5000/golden/python-3.12" + digest) == (
        "registry.example.com:5000/golden/python-3.12" + digest
    ), "a registry port is not a tag"
    assert kubernetes.image_name("docker.io/library/redis:7.2.5") == "docker.io/library/redis:7.2.5"
    assert kubernetes.image_name("redis") == "redis"


def test_golden_image_parsing():
    prefixes = ["registry.example.com/golden/"]
    assert kubernetes.golden_image("registry.example.com/golden/python-3.12:3.12.8-r2", prefixes) == ("python-3.12", "3.12.8-r2")
    assert kubernetes.golden_image(
        "registry.example.com/golden/python-3.12:3.12.8-r2@sha256:" + "a" * 64, prefixes
    ) == ("python-3.12", "3.12.8-r2")
    assert kubernetes.golden_image("registry.example.com/golden/python-3.12", prefixes) == ("python-3.12", None)
    assert kubernetes.golden_image("registry.example.com/goldenrod/x:1", prefixes) is None
    assert kubernetes.golden_image("docker.io/library/redis:7.2.5", prefixes) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("4", Decimal(4)), ("3920m", Decimal("3.92")), ("16086712Ki", Decimal(16086712 * 1024)),
     ("32Gi", Decimal(32 * 2**30)), ("1e3", Decimal(1000)), ("2G", Decimal(2 * 10**9)), (8, Decimal(8))],
)
def test_quantities(text, value):
    assert kubernetes.parse_quantity(text, "x") == value


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p["deployments"]["items"][2]["spec"]["template"]["spec"].pop("containers"),
         "deployments.items[2].spec.template.spec.containers"),
        (lambda p: p["deployments"]["items"][2]["spec"]["template"]["spec"].update({"containers": []}),
         "deployments.items[2].spec.template.spec.containers"),
        (lambda p: p["deployments"]["items"][0]["spec"]["template"]["spec"]["containers"][1].pop("image"),
         "deployments.items[0].spec.template.spec.containers[1].image"),
        (lambda p: p["cronjobs"]["items"][1]["spec"].pop("jobTemplate"), "cronjobs.items[1].spec.jobTemplate"),
        (lambda p: p["statefulsets"]["items"][0]["metadata"].pop("uid"), "statefulsets.items[0].metadata.uid"),
        (lambda p: p["daemonsets"]["items"][0]["metadata"].pop("namespace"), "daemonsets.items[0].metadata.namespace"),
        (lambda p: p["deployments"]["items"][1]["status"].update({"readyReplicas": "1"}),
         "deployments.items[1].status.readyReplicas"),
        (lambda p: p["nodes"]["items"][1]["status"]["capacity"].update({"memory": "lots"}),
         "nodes.items[1].status.capacity.memory"),
        (lambda p: p["nodes"]["items"][0]["metadata"].pop("name"), "nodes.items[0].metadata.name"),
        (lambda p: p["nodes"]["items"][0]["metadata"].update({"creationTimestamp": "last week"}),
         "nodes.items[0].metadata.creationTimestamp"),
        (lambda p: p["pods"]["items"][1]["status"]["containerStatuses"][0].pop("name"),
         "pods.items[1].status.containerStatuses[0].name"),
        (lambda p: p.pop("nodes"), "nodes"),
        (lambda p: p["deployments"].pop("items"), "deployments.items"),
    ],
)
def test_malformed_payload_names_the_path(payload, mutate, where):
    mutate(payload)
    with pytest.raises(PayloadError) as error:
        kubernetes.normalize(payload, SITE, AT)
    assert error.value.where == where
    assert str(error.value).startswith(f"{where}: ")


def test_missing_workload_lists_mean_none(payload):
    for key in ("statefulsets", "daemonsets", "cronjobs", "pods", "namespaces"):
        del payload[key]
    discovery = kubernetes.normalize(payload, SITE, AT)
    assert Counter(a.kind for a in discovery.assets) == {"node": 2, "workload": 3}


def test_normalize_does_not_modify_the_payload(payload):
    before = copy.deepcopy(payload)
    kubernetes.normalize(payload, SITE, AT)
    assert payload == before


# --- the sample generator --------------------------------------------------------------------

SITES = load_sites(BUNDLED_SITES_FILE)
EKS = SITES.site("k8s-prod-eks")
GKE = SITES.site("k8s-stg-gke")


def _generate(site: Site, n: int, seed: int = 5) -> dict:
    return gen_kubernetes.generate_payload(site, n, random.Random(seed))


@pytest.mark.parametrize("site", [EKS, GKE], ids=lambda s: s.id)
def test_generated_payload_starts_with_the_anchors(site):
    payload = _generate(site, 40)
    assert payload["version"]["gitVersion"].startswith("v1.30")
    assert [payload[k]["kind"] for k in ("nodes", "deployments", "statefulsets", "daemonsets", "cronjobs", "pods")] == [
        "NodeList", "DeploymentList", "StatefulSetList", "DaemonSetList", "CronJobList", "PodList",
    ]
    assert {n["metadata"]["name"] for n in payload["namespaces"]["items"]} == {
        "payments", "web", "data", "monitoring", "kube-system",
    }
    discovery = kubernetes.normalize(payload, site, AT)
    assert len(discovery.assets) == 40
    python = current_production("python-3.12")
    anchors = discovery.assets[:3]
    assert [(a.name, a.image_ref, a.state) for a in anchors] == [
        ("web/anchor-current", f"{GOLDEN_REGISTRY}/python-3.12:{python.version}", "running"),
        ("web/anchor-behind", f"{GOLDEN_REGISTRY}/python-3.12:3.12.6-r1", "running"),
        ("web/anchor-unknown", "docker.io/library/redis:7.2.5", "running"),
    ]
    assert python.version == "3.12.8-r2"
    # The anchors have pods, so their digests are known; they pin their image by that digest.
    for anchor in anchors:
        container = json.loads(anchor.attributes_json)["containers"][0]
        assert container["imageID"].split("@sha256:")[0] == anchor.image_ref.rsplit(":", 1)[0]
        assert len(container["imageID"].split("@sha256:")[1]) == 64
        assert container["image"] == anchor.image_ref + "@sha256:" + container["imageID"].split("@sha256:")[1]
    nodes = [a for a in discovery.assets if a.kind == "node"]
    assert len(nodes) == max(3, 40 // 8)
    assert len({a.asset_id for a in discovery.assets}) == 40
    images = images_by_id(discovery)
    assert f"{GOLDEN_REGISTRY}/python-3.12:3.12.8-r2" in images
    assert "docker.io/library/redis:7.2.5" not in images
    assert all(i.family in {"python-3.12", "nginx-1.27"} and i.status is None for i in images.values())


def test_eks_nodes_run_amis_of_the_aws_site():
    discovery = kubernetes.normalize(_generate(EKS, 400), EKS, AT)
    nodes = [a for a in discovery.assets if a.kind == "node"]
    assert len(nodes) == 50
    ubuntu = {aws_ami_id("us-east-1", v): v.version for v in MACHINE_IMAGE_VERSIONS if v.family == "ubuntu-22.04-base"}
    versions = Counter(ubuntu[n.image_ref] for n in nodes)
    assert versions["1.1.0"] == 1
    assert versions["1.3.0"] > 0.8 * len(nodes)
    assert {n.region for n in nodes} == {"us-east-1"}
    assert {n.zone for n in nodes} == {"us-east-1a", "us-east-1b", "us-east-1c"}
    assert all(n.instance_type and n.cpu_count and n.memory_mb and n.private_ip for n in nodes)
    assert all(n.os == "Ubuntu 22.04.5 LTS" for n in nodes)


def test_non_eks_nodes_reference_gcp_image_paths():
    discovery = kubernetes.normalize(_generate(GKE, 24), GKE, AT)
    nodes = [a for a in discovery.assets if a.kind == "node"]
    assert len(nodes) == 3
    refs = Counter(n.image_ref for n in nodes)
    assert refs == {
        "projects/qlrf-prod-euw1/global/images/golden-ubuntu-22-04-base-1-3-0": 2,
        "projects/qlrf-prod-euw1/global/images/golden-ubuntu-22-04-base-1-1-0": 1,
    }
    site = GKE.model_copy(update={"settings": {**GKE.settings, "machine_image_project": "qlrf-prod-euw1"}})
    nodes = [a for a in kubernetes.normalize(_generate(site, 24), site, AT).assets if a.kind == "node"]
    assert all(n.image_ref.startswith("projects/qlrf-prod-euw1/global/images/golden-") for n in nodes)


def test_generated_workload_mix():
    discovery = kubernetes.normalize(_generate(EKS, 4000), EKS, AT)
    workloads = [a for a in discovery.assets if a.kind == "workload"]
    assert len(workloads) == 4000 - 500
    kinds = Counter(json.loads(a.attributes_json)["kind"] for a in workloads)
    assert set(kinds) == {"Deployment", "StatefulSet", "DaemonSet", "CronJob"}
    assert kinds["Deployment"] > kinds["CronJob"] > kinds["DaemonSet"]
    golden = sum(a.image_ref.startswith(GOLDEN_REGISTRY + "/") for a in workloads)
    assert 0.75 < golden / len(workloads) < 0.92
    refs = Counter(a.image_ref for a in workloads)
    assert refs["docker.io/library/redis:7.2.5"] > 0 and refs["quay.io/prometheus/node-exporter:v1.8.2"] > 0
    assert {a.network for a in workloads} == {"payments", "web", "data", "monitoring", "kube-system"}
    states = Counter(a.state for a in workloads)
    assert states["running"] > 0.8 * len(workloads) and states["degraded"] > 0 and states["stopped"] > 0
    with_digests = [a for a in workloads if "imageID" in a.attributes_json]
    assert len(with_digests) > 50
    # Every golden container version in the catalog is seen at this size.
    assert {(i.family, i.version) for i in discovery.images} == {
        ("python-3.12", "3.12.6-r1"), ("python-3.12", "3.12.7-r1"), ("python-3.12", "3.12.8-r2"),
        ("nginx-1.27", "1.27.1-r1"), ("nginx-1.27", "1.27.2-r1"),
    }


def test_generated_cluster_meets_the_desired_state_but_for_a_few():
    """Workloads pin every image by digest and nodes carry owner / cost-center labels, except
    about 1% per rule (common.DriftPlan)."""
    discovery = kubernetes.normalize(_generate(EKS, 8000), EKS, AT)
    workloads = [a for a in discovery.assets if a.kind == "workload"]
    images = {
        a.name: [c["image"] for c in (attributes.get("containers") or []) + (attributes.get("initContainers") or [])]
        for a in workloads
        for attributes in [json.loads(a.attributes_json)]
    }
    floating = [name for name, refs in images.items() if not all("@sha256:" in ref for ref in refs)]
    assert 0.002 < len(floating) / len(workloads) < 0.03
    assert all(not any("@sha256:" in ref for ref in images[name]) for name in floating)
    # Pinning does not rename images: image_ref and the golden images stay the tags.
    assert not any("@" in a.image_ref for a in workloads)
    assert not any("@" in i.provider_image_id for i in discovery.images)
    nodes = [a for a in discovery.assets if a.kind == "node"]
    assert len(nodes) == 1000
    unlabelled = [n for n in nodes if not {"owner", "cost-center"} <= {t.key for t in n.tags}]
    assert 0.002 < len(unlabelled) / len(nodes) < 0.03


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_small_clusters_have_exactly_n_assets(n):
    discovery = kubernetes.normalize(_generate(EKS, n), EKS, AT)
    assert len(discovery.assets) == n
    assert [a.name for a in discovery.assets[:3]] == ["web/anchor-current", "web/anchor-behind", "web/anchor-unknown"]
    nodes = sum(a.kind == "node" for a in discovery.assets)
    assert nodes == (3 if n >= 6 else n - 3)


def test_generated_payload_is_deterministic_and_json_serialisable():
    first, second = _generate(EKS, 300, seed=3), _generate(EKS, 300, seed=3)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert json.loads(json.dumps(first)) == first
    assert json.dumps(_generate(EKS, 300, seed=4)) != json.dumps(first)


def test_generated_payload_goes_through_the_sample_connector(tmp_path):
    path = tmp_path / "k8s.json"
    path.write_text(json.dumps(_generate(EKS, 40)))
    discovery = discover_from_sample(EKS, path, AT)
    assert len(discovery.assets) == 40
    assert discovery.assets[0].asset_id.startswith("kubernetes:k8s-prod-eks:")


def test_generator_refuses_too_few_assets():
    with pytest.raises(ValueError):
        _generate(EKS, 3)


@pytest.mark.parametrize("site_id", ["k8s-prod-eks", "k8s-stg-gke"])
def test_bundled_sample_breaks_exactly_the_documented_rules(site_id):
    """The stored sample payload carries the deliberate drift of DELIBERATE_DRIFT, and no other
    (tests/fixtures/sample_drift_expectations.yaml, which the drift and compliance tests use)."""
    check_bundled_sample_drift(site_id, AT)
