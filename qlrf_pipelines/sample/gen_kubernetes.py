"""Sample Kubernetes payloads: the API list responses of one cluster, as the kubernetes connector
reads them (see qlrf_pipelines.connectors.kubernetes for the shape).

Nodes carry the machine image they were built from: on EKS (site location containing "eks") the
`eks.amazonaws.com/nodegroup-image` label with the AMI id of a catalog ubuntu version in
us-east-1 (so it matches the AWS site's images); elsewhere the `qlrf.io/machine-image`
annotation with a GCP image path `projects/<project>/global/images/golden-<slug>`, where the
project is `settings.machine_image_project` or else the site's account. (A label value cannot
hold '/', so the GCP path is an annotation; the connector reads the label or the annotation.)

Workloads run golden container images `<GOLDEN_REGISTRY>/<family>:<version>` from the catalog,
and some third-party images. The first Deployments are fixed anchors in namespace `web`:

    web/anchor-current   python-3.12, current production version
    web/anchor-behind    python-3.12 3.12.6-r1
    web/anchor-unknown   docker.io/library/redis:7.2.5 (not a golden image)

Desired state: workloads pin every image by tag and digest (`<repository>:<tag>@sha256:<digest>`,
the digest the pods report), and nodes carry the owner / cost-center labels of their node group,
except the deliberate drift of DELIBERATE_DRIFT:

    k8s-prod-eks  data/feature-store-nightly-021    QLRF-K8S-001  images by tag only
                  data/ingest-db-022                QLRF-K8S-001  images by tag only
                  payments/checkout-api-024         QLRF-K8S-001  by tag, its log-shipper sidecar as :latest
                  ip-10-100-0-8.ec2.internal        QLRF-TAG-001  no cost-center label (even index;
                                                                  an odd one loses the owner label)
    k8s-stg-gke   data/warehouse-sync-worker-014    QLRF-K8S-001  images by tag only
                  kube-system/node-agent-api-013    QLRF-K8S-001  by tag, its log-shipper sidecar as :latest

Synthetic clusters larger than the bundled ones add about 1% random drift per rule
(common.DriftPlan).
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from datetime import datetime, timedelta

from qlrf_pipelines.connectors.base import gc_paused
from qlrf_pipelines.sample.catalog import (
    GOLDEN_REGISTRY,
    MACHINE_IMAGE_VERSIONS,
    SAMPLE_CLOCK,
    CatalogVersion,
    aws_ami_id,
    container_families,
    current_production,
    versions_of,
)
from qlrf_pipelines.sample.common import (
    K8S_RULE,
    TAG_RULE,
    DriftPlan,
    Picker,
    below,
    catalog_version,
    utc_iso,
)
from qlrf_pipelines.sites import Site

NAMESPACES = ("payments", "web", "data", "monitoring", "kube-system")
NODE_FAMILY = "ubuntu-22.04-base"

REDIS_IMAGE = "docker.io/library/redis:7.2.5"
NODE_EXPORTER_IMAGE = "quay.io/prometheus/node-exporter:v1.8.2"
OTHER_IMAGES = (
    REDIS_IMAGE,
    "docker.io/bitnami/postgresql:16.4.0",
    "ghcr.io/external-secrets/external-secrets:v0.10.4",
    "docker.io/grafana/grafana:11.2.2",
)
SIDECAR_IMAGE = "docker.io/fluent/fluent-bit:3.1.9"

# instance type -> (vCPUs, memory GiB)
EKS_INSTANCE_TYPES = {"m6i.xlarge": (4, 16), "m6i.2xlarge": (8, 32), "c6i.2xlarge": (8, 16), "r6i.xlarge": (4, 32)}
GKE_MACHINE_TYPES = {"e2-standard-4": (4, 16), "n2-standard-8": (8, 32), "n2-highmem-4": (4, 32)}

WORKLOAD_KINDS = (("Deployment", 70), ("StatefulSet", 10), ("DaemonSet", 5), ("CronJob", 15))
NAMESPACE_WEIGHTS = {
    "Deployment": (("payments", 30), ("web", 35), ("data", 10), ("monitoring", 15), ("kube-system", 10)),
    "StatefulSet": (("payments", 15), ("data", 70), ("monitoring", 15)),
    "DaemonSet": (("monitoring", 60), ("kube-system", 40)),
    "CronJob": (("payments", 40), ("data", 45), ("web", 15)),
}
SERVICES = {
    "payments": ("checkout", "ledger", "invoices", "refunds", "fraud-score", "payouts"),
    "web": ("storefront", "search", "catalog", "cart", "accounts", "cms"),
    "data": ("etl", "ingest", "reporting", "feature-store", "warehouse-sync"),
    "monitoring": ("alert-router", "metrics-proxy", "log-shipper", "uptime"),
    "kube-system": ("dns-autoscaler", "node-agent", "policy-agent", "cert-rotator"),
}
SUFFIXES = {
    "Deployment": ("api", "web", "worker"),
    "StatefulSet": ("db", "cache", "queue"),
    "DaemonSet": ("agent", "collector"),
    "CronJob": ("nightly", "sync", "cleanup"),
}
TEAMS = {"payments": "payments", "web": "web", "data": "data", "monitoring": "platform", "kube-system": "platform"}
SCHEDULES = ("*/15 * * * *", "0 * * * *", "30 2 * * *", "0 4 * * 0", "*/5 * * * *")

# Node group labels QLRF-TAG-001 asks for (label values cannot hold '@').
NODE_OWNER = "team-platform"
NODE_COST_CENTER = "CC-2200"

DELIBERATE_DRIFT: dict[str, dict[str, tuple[str, ...]]] = {
    "k8s-prod-eks": {
        "data/feature-store-nightly-021": (K8S_RULE,),
        "data/ingest-db-022": (K8S_RULE,),
        "payments/checkout-api-024": (K8S_RULE,),
        "ip-10-100-0-8.ec2.internal": (TAG_RULE,),
    },
    "k8s-stg-gke": {
        "data/warehouse-sync-worker-014": (K8S_RULE,),
        "kube-system/node-agent-api-013": (K8S_RULE,),
    },
}
SYNTHETIC_NODE_RULES = (TAG_RULE,)
SYNTHETIC_WORKLOAD_RULES = (K8S_RULE,)

# Kubernetes' pod-template-hash alphabet (rand.SafeEncodeString: no vowels, no look-alikes).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def _uid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def _safe(rng: random.Random, length: int) -> str:
    return "".join(_SAFE[int(rng.random() * 27)] for _ in range(length))


def golden_reference(version: CatalogVersion) -> str:
    return f"{GOLDEN_REGISTRY}/{version.family}:{version.version}"


@functools.lru_cache(maxsize=4096)
def _digest(image: str) -> str:
    """The imageID containerd reports: repository@sha256:<digest>, stable per image reference
    (the same digest whether the reference is pinned with it or not)."""
    image = image.split("@", 1)[0]
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def pinned(image: str) -> str:
    """A tag reference pinned by the digest it resolves to: 'repo:tag@sha256:<digest>'."""
    return f"{image}@{_digest(image).rsplit('@', 1)[1]}"


def _pin_or_float(containers: list[dict] | None, drift: frozenset[str]) -> None:
    """Pin every container image by digest, unless the workload breaks QLRF-K8S-001: then its
    images stay tag-only and a log-shipper sidecar floats on `:latest`."""
    for container in containers or ():
        image = container["image"]
        if K8S_RULE not in drift:
            container["image"] = pinned(image)
        elif image == SIDECAR_IMAGE:
            container["image"] = image.rsplit(":", 1)[0] + ":latest"


class _Clock:
    """Random instants between a start and SAMPLE_CLOCK, as API timestamps."""

    end = int(SAMPLE_CLOCK.timestamp())

    def __init__(self, rng: random.Random):
        self.rng = rng

    def after(self, start: datetime) -> str:
        low = int(start.timestamp()) + 3600
        high = max(low + 1, self.end - 600)
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(low + int(self.rng.random() * (high - low))))


def _machine_image(site: Site, version: CatalogVersion, eks: bool) -> str:
    if eks:
        return aws_ami_id("us-east-1", version)
    project = site.settings.get("machine_image_project") or site.account or site.id
    return f"projects/{project}/global/images/golden-{version.slug}"


def _nodes(site: Site, count: int, rng: random.Random, git_version: str, eks: bool) -> list[dict]:
    drift_of = DriftPlan(site, DELIBERATE_DRIFT, SYNTHETIC_NODE_RULES)
    clock = _Clock(rng)
    current = current_production(NODE_FAMILY)
    behind = catalog_version(NODE_FAMILY, "1.1.0")
    older = [v for v in MACHINE_IMAGE_VERSIONS if v.family == NODE_FAMILY and v.status == "production" and v != current]
    if eks:
        region = "us-east-1"
        zones = ("us-east-1a", "us-east-1b", "us-east-1c")
        types = EKS_INSTANCE_TYPES
    else:
        region = site.settings.get("region") or ("europe-west1" if "euw1" in site.location else "us-central1")
        zones = (f"{region}-b", f"{region}-c", f"{region}-d")
        types = GKE_MACHINE_TYPES
    type_names = list(types)
    cluster = site.account or site.id
    pool_hashes = [f"{rng.getrandbits(32):08x}" for _ in zones]
    nodes = []
    for index in range(count):
        # Mostly the current production image; exactly one node left on 1.1.0; a few on the
        # previous production version (a node group mid-rollout).
        if index == 1:
            version = behind
        elif older and rng.random() < 0.08:
            version = older[below(rng, len(older))]
        else:
            version = current
        zone_index = index % len(zones)
        zone = zones[zone_index]
        instance_type = type_names[below(rng, len(type_names))]
        cpus, gib = types[instance_type]
        ip = f"10.{100 + index // 62500}.{(index // 250) % 250}.{index % 250 + 4}"
        labels = {
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": instance_type,
            "topology.kubernetes.io/region": region,
            "topology.kubernetes.io/zone": zone,
        }
        annotations = {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
        if eks:
            name = f"ip-{ip.replace('.', '-')}.ec2.internal"
            labels["eks.amazonaws.com/capacityType"] = "ON_DEMAND"
            labels["eks.amazonaws.com/nodegroup"] = f"ng-general-{zone[-1]}"
            labels["eks.amazonaws.com/nodegroup-image"] = _machine_image(site, version, eks)
            provider_id = f"aws:///{zone}/i-0{rng.getrandbits(64):016x}"
            kernel = "6.5.0-1024-aws"
        else:
            suffix = "".join("abcdefghijklmnopqrstuvwxyz0123456789"[(index // 36**k) % 36] for k in range(4))
            name = f"gke-{cluster}-pool-{zone[-1]}-{pool_hashes[zone_index]}-{suffix}"
            labels["cloud.google.com/gke-nodepool"] = f"pool-{zone[-1]}"
            annotations["qlrf.io/machine-image"] = _machine_image(site, version, eks)
            provider_id = f"gce://{cluster}/{zone}/{name}"
            kernel = "6.5.0-1025-gcp"
        labels["kubernetes.io/hostname"] = name
        # Breaking QLRF-TAG-001 drops the owner (odd index) or the cost center (even index).
        drift = drift_of(name, index)
        if TAG_RULE not in drift or index % 2 == 0:
            labels["owner"] = NODE_OWNER
        if TAG_RULE not in drift or index % 2 == 1:
            labels["cost-center"] = NODE_COST_CENTER
        created = clock.after(version.created_at)

        draw = rng.random()
        ready = "True" if draw < 0.97 else "False" if draw < 0.99 else "Unknown"
        conditions = [
            {"type": kind, "status": "False", "reason": reason, "lastTransitionTime": created}
            for kind, reason in (
                ("MemoryPressure", "KubeletHasSufficientMemory"),
                ("DiskPressure", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "KubeletHasSufficientPID"),
            )
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": ready,
                "reason": "KubeletReady" if ready == "True" else "KubeletNotReady" if ready == "False" else "NodeStatusUnknown",
                "lastTransitionTime": created,
            }
        )
        max_pods = "58" if eks else "110"
        memory_ki = gib * 1048576 - 690000 - below(rng, 4096)
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "uid": _uid(rng),
                "creationTimestamp": created,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {"providerID": provider_id},
            "status": {
                "capacity": {
                    "cpu": str(cpus),
                    "memory": f"{memory_ki}Ki",
                    "pods": max_pods,
                    "ephemeral-storage": "83873772Ki",
                },
                "allocatable": {"cpu": f"{cpus * 1000 - 90}m", "memory": f"{memory_ki - 1200000}Ki", "pods": max_pods},
                "conditions": conditions,
                "addresses": [
                    {"type": "InternalIP", "address": ip},
                    {"type": "Hostname", "address": name},
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "containerRuntimeVersion": "containerd://1.7.22",
                    "kernelVersion": kernel,
                    "kubeProxyVersion": git_version,
                    "kubeletVersion": git_version,
                    "operatingSystem": "linux",
                    "osImage": "Ubuntu 22.04.5 LTS",
                },
            },
        }
        if rng.random() < 0.02:
            node["spec"]["unschedulable"] = True
            node["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
        nodes.append(node)
    return nodes


def _container_version_pickers() -> dict[str, dict[str, Picker]]:
    """family -> {'golden': picker over current / older production / deprecated versions}."""
    pickers = {}
    for family in container_families():
        current = current_production(family)
        weighted = []
        for version in versions_of(family):
            if version == current:
                weighted.append((version, 65))
            elif version.status == "production":
                weighted.append((version, 15))
            elif version.status == "deprecated":
                weighted.append((version, 20))
        pickers[family] = Picker([v for v, _ in weighted], [w for _, w in weighted])
    return pickers


def _workload(
    kind: str,
    namespace: str,
    name: str,
    containers: list[dict],
    created: str,
    rng: random.Random,
    replicas: int,
    ready: int,
    init_containers: list[dict] | None = None,
) -> dict:
    team = TEAMS[namespace]
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": namespace, "team": team}
    pod_spec: dict = {"containers": containers, "restartPolicy": "OnFailure" if kind == "CronJob" else "Always"}
    if init_containers:
        pod_spec["initContainers"] = init_containers
    if namespace in ("payments", "web"):
        pod_spec["nodeSelector"] = {"kubernetes.io/os": "linux"}
    template = {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": pod_spec}
    generation = 1 + below(rng, 12)
    metadata = {
        "name": name,
        "namespace": namespace,
        "uid": _uid(rng),
        "creationTimestamp": created,
        "generation": generation,
        "labels": labels,
    }
    item: dict = {"metadata": metadata}
    selector = {"matchLabels": {"app.kubernetes.io/name": name}}
    if kind == "Deployment":
        item["apiVersion"], item["kind"] = "apps/v1", kind
        metadata["annotations"] = {"deployment.kubernetes.io/revision": str(generation)}
        item["spec"] = {"replicas": replicas, "selector": selector, "template": template,
                        "strategy": {"type": "RollingUpdate"}}
        status = {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas}
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        item["status"] = status
    elif kind == "StatefulSet":
        item["apiVersion"], item["kind"] = "apps/v1", kind
        item["spec"] = {"replicas": replicas, "selector": selector, "serviceName": name, "template": template}
        status = {"observedGeneration": generation, "replicas": replicas, "currentReplicas": replicas}
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        item["status"] = status
    elif kind == "DaemonSet":
        item["apiVersion"], item["kind"] = "apps/v1", kind
        item["spec"] = {"selector": selector, "template": template,
                        "updateStrategy": {"type": "RollingUpdate"}}
        item["status"] = {
            "currentNumberScheduled": replicas,
            "desiredNumberScheduled": replicas,
            "numberAvailable": ready,
            "numberReady": ready,
            "numberMisscheduled": 0,
            "updatedNumberScheduled": replicas,
            "observedGeneration": generation,
        }
    else:  # CronJob
        item["apiVersion"], item["kind"] = "batch/v1", kind
        suspend = replicas == 0
        item["spec"] = {
            "schedule": SCHEDULES[below(rng, len(SCHEDULES))],
            "suspend": suspend,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"template": template}},
        }
        item["status"] = {} if suspend else {"lastScheduleTime": utc_iso(SAMPLE_CLOCK - timedelta(minutes=1 + below(rng, 600)))}
    return item


def _pods(workload: dict, count: int, nodes: list[dict], rng: random.Random) -> list[dict]:
    """Running pods of a workload with the image digests containerd reports."""
    metadata = workload["metadata"]
    kind, name, namespace = workload["kind"], metadata["name"], metadata["namespace"]
    containers = workload["spec"]["template"]["spec"]["containers"]
    template_hash = _safe(rng, 10)
    pods = []
    for ordinal in range(count):
        if kind == "Deployment":
            owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-{template_hash}"}
            pod_name = f"{name}-{template_hash}-{_safe(rng, 5)}"
        elif kind == "StatefulSet":
            owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name}
            pod_name = f"{name}-{ordinal}"
        else:
            owner = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name}
            pod_name = f"{name}-{_safe(rng, 5)}"
        owner.update({"uid": _uid(rng), "controller": True, "blockOwnerDeletion": True})
        node = nodes[below(rng, len(nodes))]
        labels = {"app.kubernetes.io/name": name}
        if kind == "Deployment":
            labels["pod-template-hash"] = template_hash
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "uid": _uid(rng),
                    "creationTimestamp": metadata["creationTimestamp"],
                    "labels": labels,
                    "ownerReferences": [owner],
                },
                "spec": {
                    "nodeName": node["metadata"]["name"],
                    "containers": [{"name": c["name"], "image": c["image"]} for c in containers],
                },
                "status": {
                    "phase": "Running",
                    "hostIP": node["status"]["addresses"][0]["address"],
                    "podIP": f"100.64.{below(rng, 256)}.{1 + below(rng, 254)}",
                    "startTime": metadata["creationTimestamp"],
                    "containerStatuses": [
                        {
                            "name": c["name"],
                            "image": c["image"],
                            "imageID": _digest(c["image"]),
                            "containerID": f"containerd://{rng.getrandbits(256):064x}",
                            "ready": True,
                            "started": True,
                            "restartCount": 0,
                        }
                        for c in containers
                    ],
                },
            }
        )
    return pods


def _list(kind: str, api_version: str, items: list[dict]) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "48213377"}, "items": items}


@gc_paused()
def generate_payload(site: Site, n_assets: int, rng: random.Random) -> dict:
    """A cluster's API payload with exactly n_assets assets: max(3, n_assets // 8) nodes, the
    rest workloads, the three anchor Deployments first.

    Below 6 assets there is no room for 3 anchor workloads and 3 nodes; the anchors win and the
    cluster gets n_assets - 3 nodes.
    """
    if n_assets < 4:
        raise ValueError("n_assets must be at least 4 (room for the anchor assets)")

    location = site.location.lower()
    eks = "eks" in location
    if eks:
        git_version = "v1.30.4-eks-a737599"
    elif "gke" in location:
        git_version = "v1.30.5-gke.1014001"
    else:
        git_version = "v1.30.4"
    n_nodes = max(3, n_assets // 8) if n_assets >= 6 else n_assets - 3
    n_workloads = n_assets - n_nodes

    nodes = _nodes(site, n_nodes, rng, git_version, eks)
    cluster_created = SAMPLE_CLOCK - timedelta(days=420)
    clock = _Clock(rng)

    namespaces = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "uid": _uid(rng),
                "creationTimestamp": utc_iso(cluster_created + timedelta(hours=i)),
                "labels": {"kubernetes.io/metadata.name": ns},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        for i, ns in enumerate(NAMESPACES)
    ]

    lists: dict[str, list[dict]] = {"Deployment": [], "StatefulSet": [], "DaemonSet": [], "CronJob": []}
    pods: list[dict] = []
    python_current = current_production("python-3.12")
    python_behind = catalog_version("python-3.12", "3.12.6-r1")
    anchors = (
        ("anchor-current", golden_reference(python_current), python_current.created_at),
        ("anchor-behind", golden_reference(python_behind), python_behind.created_at),
        ("anchor-unknown", REDIS_IMAGE, cluster_created),
    )
    drift_of = DriftPlan(site, DELIBERATE_DRIFT, SYNTHETIC_WORKLOAD_RULES)
    for name, image, since in anchors:
        containers = [{"name": "app", "image": image}]
        _pin_or_float(containers, drift_of(f"web/{name}", 0))
        workload = _workload("Deployment", "web", name, containers, clock.after(since), rng, 2, 2)
        lists["Deployment"].append(workload)
        pods.extend(_pods(workload, 2, nodes, rng))

    kinds = Picker([k for k, _ in WORKLOAD_KINDS], [w for _, w in WORKLOAD_KINDS])
    namespace_pickers = {kind: Picker([n for n, _ in w], [x for _, x in w]) for kind, w in NAMESPACE_WEIGHTS.items()}
    versions = _container_version_pickers()
    nginx_current = golden_reference(current_production("nginx-1.27"))
    width = max(3, len(str(n_workloads)))
    for index in range(len(anchors), n_workloads):
        kind = kinds(rng)
        namespace = namespace_pickers[kind](rng)
        services, suffixes = SERVICES[namespace], SUFFIXES[kind]
        name = f"{services[below(rng, len(services))]}-{suffixes[below(rng, len(suffixes))]}-{index:0{width}d}"

        # Image: ~85% golden, the rest third-party (node-exporter for monitoring agents).
        since = cluster_created
        if kind == "DaemonSet" and namespace == "monitoring" and rng.random() < 0.7:
            image = NODE_EXPORTER_IMAGE
        elif rng.random() < 0.85:
            family = "nginx-1.27" if namespace == "web" and rng.random() < 0.5 else "python-3.12"
            if namespace != "web" and kind == "Deployment" and rng.random() < 0.1:
                family = "nginx-1.27"
            version = versions[family](rng)
            image = golden_reference(version)
            since = version.created_at
        elif kind == "StatefulSet":
            image = REDIS_IMAGE if rng.random() < 0.6 else OTHER_IMAGES[1]
        else:
            image = OTHER_IMAGES[below(rng, len(OTHER_IMAGES))]
        containers = [{"name": "app", "image": image,
                       "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}]
        if kind == "Deployment" and rng.random() < 0.1:
            sidecar = nginx_current if rng.random() < 0.5 else SIDECAR_IMAGE
            containers.append({"name": "proxy" if sidecar == nginx_current else "log-shipper", "image": sidecar})
        init_containers = None
        if kind in ("Deployment", "StatefulSet") and rng.random() < 0.05:
            init_containers = [{"name": "migrate", "image": golden_reference(current_production("python-3.12"))}]

        # Desired vs ready: mostly healthy, some scaled to zero (or suspended), some degraded.
        if kind == "DaemonSet":
            desired = n_nodes
        elif kind == "StatefulSet":
            desired = (1, 3, 3, 5)[below(rng, 4)]
        else:
            desired = (1, 2, 2, 3, 3, 4, 6)[below(rng, 7)]
        draw = rng.random()
        if draw < 0.04 and kind != "DaemonSet":
            desired = ready = 0
        elif draw < 0.93:
            ready = desired
        else:
            ready = below(rng, desired)
        if kind == "CronJob":
            desired = ready = 0 if rng.random() < 0.08 else 1

        drift = drift_of(f"{namespace}/{name}", index)
        _pin_or_float(containers, drift)
        _pin_or_float(init_containers, drift)
        workload = _workload(
            kind, namespace, name, containers, clock.after(since), rng, desired, ready, init_containers
        )
        lists[kind].append(workload)
        if kind in ("Deployment", "StatefulSet") and ready and rng.random() < 0.1:
            pods.extend(_pods(workload, min(ready, 2), nodes, rng))

    return {
        "version": {
            "major": "1",
            "minor": "30",
            "gitVersion": git_version,
            "platform": "linux/amd64",
        },
        "nodes": _list("NodeList", "v1", nodes),
        "namespaces": _list("NamespaceList", "v1", namespaces),
        "deployments": _list("DeploymentList", "apps/v1", lists["Deployment"]),
        "statefulsets": _list("StatefulSetList", "apps/v1", lists["StatefulSet"]),
        "daemonsets": _list("DaemonSetList", "apps/v1", lists["DaemonSet"]),
        "cronjobs": _list("CronJobList", "batch/v1", lists["CronJob"]),
        "pods": _list("PodList", "v1", pods),
    }
