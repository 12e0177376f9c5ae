"""Emulator data: Compute REST responses per project, derived from the sample GCP generator.

`build_projects(n)` turns `qlrf_pipelines.sample.gen_gcp.generate_payload` into two projects: the
site's project (instances, disks, networks and the non-golden images) and a shared image project
holding the golden images, which the instances' boot disks reference, as an estate that keeps its
golden images in one project does.

`python -m tests.emulators.gcp.estate` rewrites the data files under data/ (deterministic);
`load_projects()` reads them back.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from qlrf_pipelines.models.records import GCP_FAMILY_LABEL
from qlrf_pipelines.sample.gen_gcp import API, generate_payload
from qlrf_pipelines.sites import Site

DATA_DIR = Path(__file__).parent / "data"
PROJECT = "qlrf-emu-prod"
GOLDEN_PROJECT = "qlrf-golden-images"
SITE_ID = "gcp-emu-prod"
DATA_ASSETS = 48
SEED = "20261101/gcp-emu"
FILES = ("project", "instances", "disks", "images", "networks")


def template_site(project: str = PROJECT, site_id: str = SITE_ID) -> Site:
    return Site(
        id=site_id,
        provider="gcp",
        name="GCP emulator project",
        location="europe-west1",
        environment="production",
        account=project,
    )


def _numeric(text: str) -> str:
    return str(1_000_000_000_000_000_000 + sum(ord(c) * 7919 ** i for i, c in enumerate(text)) % 10**18)


def _expose_one(payload: dict) -> None:
    """An external IP on the first running web / api instance. The sample estate gives one only to
    the instances that break QLRF-NET-001 on purpose, which this small project has none of; the
    live tests need an accessConfig to come through the API."""
    for scoped in payload["instances.aggregatedList"]["items"].values():
        for instance in scoped.get("instances", []):
            if instance["status"] == "RUNNING" and instance["name"].split("-")[0] in ("web", "api"):
                instance["networkInterfaces"][0]["accessConfigs"] = [
                    {"type": "ONE_TO_ONE_NAT", "name": "External NAT", "natIP": "34.76.200.17"}
                ]
                return


def build_projects(n_assets: int, project: str = PROJECT, golden_project: str | None = GOLDEN_PROJECT,
                   seed: str = SEED) -> dict[str, dict[str, Any]]:
    payload = generate_payload(template_site(project), n_assets, random.Random(seed))
    _expose_one(payload)
    images = payload["images.list"]["items"]
    local_prefix = f"{API}/projects/{project}/global/images/"
    golden_prefix = f"{API}/projects/{golden_project}/global/images/" if golden_project else local_prefix
    golden = [image for image in images if GCP_FAMILY_LABEL in image.get("labels", {})]
    local = [image for image in images if GCP_FAMILY_LABEL not in image.get("labels", {})]
    if golden_project:
        for image in golden:
            image["selfLink"] = image["selfLink"].replace(local_prefix, golden_prefix)
            if "deprecated" in image:
                replacement = image["deprecated"]["replacement"]
                image["deprecated"]["replacement"] = replacement.replace(local_prefix, golden_prefix)
        golden_names = {image["name"] for image in golden}
        for scoped in payload["disks.aggregatedList"]["items"].values():
            for disk in scoped.get("disks", []):
                name = disk["sourceImage"].rsplit("/", 1)[-1]
                if disk["sourceImage"].startswith(local_prefix) and name in golden_names:
                    disk["sourceImage"] = golden_prefix + name

    project_url = f"{API}/projects/{project}"
    networks = [
        {
            "kind": "compute#network",
            "id": _numeric(f"{project}/{name}"),
            "creationTimestamp": "2025-01-14T03:12:45.101-08:00",
            "name": name,
            "selfLink": f"{project_url}/global/networks/{name}",
            "autoCreateSubnetworks": False,
            "subnetworks": [f"{project_url}/regions/europe-west1/subnetworks/snet-europe-west1"],
            "routingConfig": {"routingMode": "REGIONAL"},
            "mtu": 1460,
            "networkFirewallPolicyEnforcementOrder": "AFTER_CLASSIC_FIREWALL",
        }
        for name in ("vpc-prod", "vpc-shared-services")
    ]

    def project_body(name: str) -> dict:
        return {
            "kind": "compute#project",
            "id": _numeric(name),
            "creationTimestamp": "2024-06-03T10:00:00.000-07:00",
            "name": name,
            "selfLink": f"{API}/projects/{name}",
            "defaultServiceAccount": "123456789012-compute@developer.gserviceaccount.com",
            "xpnProjectStatus": "UNSPECIFIED_XPN_PROJECT_STATUS",
            "defaultNetworkTier": "PREMIUM",
            "vmDnsSetting": "ZONAL_ONLY",
        }

    projects = {
        project: {
            "project": project_body(project),
            "instances": payload["instances.aggregatedList"],
            "disks": payload["disks.aggregatedList"],
            "images": {"kind": "compute#imageList", "items": local if golden_project else images},
            "networks": {"kind": "compute#networkList", "items": networks},
        }
    }
    if golden_project:
        projects[golden_project] = {
            "project": project_body(golden_project),
            "instances": {"kind": "compute#instanceAggregatedList", "items": {}},
            "disks": {"kind": "compute#diskAggregatedList", "items": {}},
            "images": {"kind": "compute#imageList", "items": golden},
            "networks": {"kind": "compute#networkList", "items": []},
        }
    return projects


def write_projects(projects: dict[str, dict[str, Any]], folder: Path = DATA_DIR) -> None:
    for project, data in projects.items():
        target = folder / project
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            (target / f"{name}.json").write_text(json.dumps(data[name], indent=1) + "\n")


def load_projects(folder: Path = DATA_DIR) -> dict[str, dict[str, Any]]:
    return {
        project_dir.name: {name: json.loads((project_dir / f"{name}.json").read_text()) for name in FILES}
        for project_dir in sorted(folder.iterdir())
        if project_dir.is_dir()
    }


def rest_payload(projects: dict[str, dict[str, Any]], project: str = PROJECT,
                 image_projects: tuple[str, ...] = (GOLDEN_PROJECT,)) -> dict:
    """What a correct live fetch must return: the unpaged responses, images of every project."""
    images = list(projects[project]["images"]["items"])
    for other in image_projects:
        images.extend(projects[other]["images"]["items"])
    return {
        "instances.aggregatedList": projects[project]["instances"],
        "disks.aggregatedList": projects[project]["disks"],
        "images.list": {"items": images},
        "networks.list": projects[project]["networks"],
    }


if __name__ == "__main__":
    write_projects(build_projects(DATA_ASSETS))
    print(f"wrote {DATA_DIR}")
