"""A tiny hand-made lake for the dbt models: three sites, every drift case, written through
qlrf_pipelines.lake exactly as discovery writes it.

Sites (snapshot S1 = 2026-11-01 06:00 UTC unless noted):
  aws-prod-use1  aws, production; also an older snapshot S0 (2026-10-01) to give it history.
  aws-stg-euw1   aws, staging; `write_second_staging_snapshot` adds S2 (2026-11-02).
  k8s-prod-eks   kubernetes, production; its nodes run AMIs discovered by aws-prod-use1 and its
                 workloads run golden container images that carry no release status.

EXPECTED_DRIFT lists, per (site_id, asset name), the drift item the latest snapshot must produce:
(drift_type, severity, versions_behind, days_behind); assets not listed must have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from qlrf_pipelines.lake import snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.models import AssetRecord, ImageRecord, Tag, version_sort_key
from qlrf_pipelines.sample.catalog import (
    CONTAINER_IMAGE_VERSIONS,
    GOLDEN_REGISTRY,
    MACHINE_IMAGE_VERSIONS,
    CatalogVersion,
    aws_ami_id,
)

S0_AT = datetime(2026, 10, 1, 6, 0, tzinfo=timezone.utc)
S1_AT = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)
S2_AT = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc)
S0 = snapshot_id_for(S0_AT)
S1 = snapshot_id_for(S1_AT)
S2 = snapshot_id_for(S2_AT)

AWS_PROD = "aws-prod-use1"
AWS_STG = "aws-stg-euw1"
K8S_PROD = "k8s-prod-eks"

SITES = {
    AWS_PROD: dict(provider="aws", name="AWS production, N. Virginia", location="us-east-1",
                   environment="production", account="111122223333", endpoint_url=None),
    AWS_STG: dict(provider="aws", name="AWS staging, Ireland", location="eu-west-1",
                  environment="staging", account="444455556666", endpoint_url=None),
    K8S_PROD: dict(provider="kubernetes", name="EKS production cluster", location="prod-eks-use1",
                   environment="production", account="prod-eks-use1", endpoint_url="https://eks.example.com"),
}

THIRD_PARTY_AMI = "ami-0thirdparty0000001"  # discovered, but carries no golden image tags
UNDISCOVERED_AMI = "ami-0nobodyknows000001"  # discovered by no site at all
REDIS_IMAGE = "docker.io/library/redis:7.4"

# (site_id, asset name) -> (drift_type, severity, versions_behind, days_behind)
EXPECTED_DRIFT: dict[tuple[str, str], tuple[str, str, int | None, int | None]] = {
    # ubuntu 1.0.0 deprecated; current production 1.3.0: 1.1.0, 1.2.0, 1.3.0 newer; 2026-03-02 -> 09-07
    (AWS_PROD, "vm-deprecated-3"): ("image_deprecated", "critical", 3, 189),
    # ubuntu 1.2.0 production, one behind (2026-07-06 -> 09-07 = 63 days), production site
    (AWS_PROD, "vm-outdated-1"): ("image_outdated", "medium", 1, 63),
    (AWS_PROD, "vm-revoked"): ("image_revoked", "critical", None, None),
    (AWS_PROD, "vm-third-party"): ("image_unknown", "high", None, None),
    (AWS_PROD, "vm-no-image"): ("image_unknown", "high", None, None),
    (AWS_PROD, "vm-testing"): ("image_testing_in_production", "medium", None, None),
    # windows 2026.06 deprecated, 2 behind (2026.08, 2026.10), 2026-06-11 -> 10-08 = 119 days
    (AWS_PROD, "vm-windows-deprecated"): ("image_deprecated", "high", 2, 119),
    # same outdated ubuntu 1.2.0, but on a staging site
    (AWS_STG, "vm-outdated-1"): ("image_outdated", "low", 1, 63),
    (AWS_STG, "vm-undiscovered"): ("image_unknown", "medium", None, None),
    # a node on the ubuntu 1.2.0 AMI that only the AWS site discovered
    (K8S_PROD, "node-outdated"): ("image_outdated", "medium", 1, 63),
    # container family without status: current is the newest seen, 3.12.8-r2 (2026-10-01)
    (K8S_PROD, "web/python-behind-1"): ("image_outdated", "medium", 1, 61),
    (K8S_PROD, "web/python-behind-2"): ("image_outdated", "high", 2, 122),
    (K8S_PROD, "web/redis"): ("image_unknown", "high", None, None),
}

NO_DRIFT = {
    (AWS_PROD, "vm-current"),
    (AWS_PROD, "vm-terminated"),  # out of scope: terminated
    (AWS_STG, "vm-testing"),  # testing is fine outside production
    (K8S_PROD, "node-current"),
    (K8S_PROD, "web/python-current"),
    (K8S_PROD, "web/nginx-current"),
    (K8S_PROD, "sidecar"),  # out of scope: kind container
}


def catalog_version(family: str, version: str) -> CatalogVersion:
    for candidate in MACHINE_IMAGE_VERSIONS + CONTAINER_IMAGE_VERSIONS:
        if candidate.family == family and candidate.version == version:
            return candidate
    raise KeyError((family, version))


def ami(region: str, family: str, version: str) -> str:
    return aws_ami_id(region, catalog_version(family, version))


def container_ref(family: str, version: str) -> str:
    return f"{GOLDEN_REGISTRY}/{family}:{version}"


def asset_id(site_id: str, native_id: str) -> str:
    provider = SITES[site_id]["provider"]
    return f"{provider}:{site_id}:{native_id}"


def _site_row(site_id: str, assets: list[AssetRecord], images: list[ImageRecord]) -> dict:
    return {"site_id": site_id, **SITES[site_id], "asset_count": len(assets), "image_count": len(images)}


def _amis(site_id: str, region: str, at: datetime, families: tuple[str, ...]) -> list[ImageRecord]:
    images = []
    for v in MACHINE_IMAGE_VERSIONS:
        if v.family not in families:
            continue
        images.append(
            ImageRecord(
                provider_image_id=aws_ami_id(region, v), site_id=site_id, provider="aws",
                name=f"{v.slug}-{region}", discovered_at=at, family=v.family, version=v.version,
                version_key=version_sort_key(v.version), status=v.status, region=region,
                platform=v.platform, os=v.os, created_at=v.created_at,
                tags=[Tag("qlrf:family", v.family), Tag("qlrf:status", v.status), Tag("qlrf:version", v.version)],
            )
        )
    return images


def _vm(site_id: str, native_id: str, name: str, image_ref: str | None, at: datetime,
        state: str = "running", region: str = "us-east-1") -> AssetRecord:
    return AssetRecord(
        asset_id=asset_id(site_id, native_id), site_id=site_id, provider="aws", native_id=native_id,
        kind="vm", name=name, state=state, discovered_at=at, image_ref=image_ref, platform="linux",
        instance_type="t3.medium", cpu_count=2, memory_mb=4096, region=region, zone=f"{region}a",
        private_ip="10.0.0.10", launched_at=at - timedelta(days=30),
        tags=[Tag("Name", name), Tag("team", "platform")],
    )


def _publish(lake_dir: Path, site_id: str, snapshot_id: str, assets, images) -> None:
    write_snapshot(
        lake_dir, site_id, snapshot_id,
        {
            "sites": to_table("sites", [_site_row(site_id, assets, images)], snapshot_id),
            "assets": to_table("assets", assets, snapshot_id),
            "images": to_table("images", images, snapshot_id),
        },
    )


def _aws_prod(at: datetime, snapshot_id: str) -> tuple[list[AssetRecord], list[ImageRecord]]:
    site, region = AWS_PROD, "us-east-1"
    images = _amis(site, region, at, ("ubuntu-22.04-base", "rhel-9-base", "windows-2022-base"))
    images.append(ImageRecord(provider_image_id=THIRD_PARTY_AMI, site_id=site, provider="aws",
                              name="vendor-appliance-7", discovered_at=at, region=region))
    u = "ubuntu-22.04-base"
    if snapshot_id == S0:
        assets = [
            _vm(site, "i-0000000000000001", "vm-deprecated-3", ami(region, u, "1.0.0"), at),
            _vm(site, "i-0000000000000002", "vm-outdated-1", ami(region, u, "1.2.0"), at),
            _vm(site, "i-00000000000000ff", "vm-retired", ami(region, u, "1.1.0"), at),
        ]
        return assets, images
    assets = [
        _vm(site, "i-0000000000000001", "vm-deprecated-3", ami(region, u, "1.0.0"), at),
        _vm(site, "i-0000000000000002", "vm-outdated-1", ami(region, u, "1.2.0"), at),
        _vm(site, "i-0000000000000003", "vm-current", ami(region, u, "1.3.0"), at),
        _vm(site, "i-0000000000000004", "vm-revoked", ami(region, "rhel-9-base", "9.2.1"), at),
        _vm(site, "i-0000000000000005", "vm-third-party", THIRD_PARTY_AMI, at),
        _vm(site, "i-0000000000000006", "vm-no-image", None, at),
        _vm(site, "i-0000000000000007", "vm-testing", ami(region, u, "1.4.0"), at),
        _vm(site, "i-0000000000000008", "vm-windows-deprecated", ami(region, "windows-2022-base", "2026.06"), at),
        _vm(site, "i-0000000000000009", "vm-terminated", ami(region, u, "1.0.0"), at, state="terminated"),
    ]
    return assets, images


def _aws_stg(at: datetime, snapshot_id: str) -> tuple[list[AssetRecord], list[ImageRecord]]:
    site, region = AWS_STG, "eu-west-1"
    images = _amis(site, region, at, ("ubuntu-22.04-base",))
    u = "ubuntu-22.04-base"
    if snapshot_id == S2:
        # the outdated VM was rebuilt on the current version, the unknown one was retired
        assets = [
            _vm(site, "i-0000000000000101", "vm-outdated-1", ami(region, u, "1.3.0"), at, region=region),
            _vm(site, "i-0000000000000103", "vm-testing", ami(region, u, "1.4.0"), at, region=region),
        ]
        return assets, images
    assets = [
        _vm(site, "i-0000000000000101", "vm-outdated-1", ami(region, u, "1.2.0"), at, region=region),
        _vm(site, "i-0000000000000102", "vm-undiscovered", UNDISCOVERED_AMI, at, region=region),
        _vm(site, "i-0000000000000103", "vm-testing", ami(region, u, "1.4.0"), at, region=region),
    ]
    return assets, images


def _k8s_prod(at: datetime) -> tuple[list[AssetRecord], list[ImageRecord]]:
    site = K8S_PROD
    images = [
        # The Kubernetes API knows which golden container tags run, not their release status.
        ImageRecord(
            provider_image_id=container_ref(v.family, v.version), site_id=site, provider="kubernetes",
            name=f"{v.family}:{v.version}", discovered_at=at, family=v.family, version=v.version,
            version_key=version_sort_key(v.version), status=None, platform=v.platform, os=v.os,
            created_at=v.created_at,
        )
        for v in CONTAINER_IMAGE_VERSIONS
    ]

    def k8s(native_id: str, kind: str, name: str, image_ref: str | None) -> AssetRecord:
        return AssetRecord(
            asset_id=asset_id(site, native_id), site_id=site, provider="kubernetes", native_id=native_id,
            kind=kind, name=name, state="running", discovered_at=at, image_ref=image_ref,
            platform="linux", region="us-east-1", zone="prod-eks-use1",
            tags=[Tag("app.kubernetes.io/name", name.split("/")[-1])],
        )

    assets = [
        k8s("node-uid-1", "node", "node-current", ami("us-east-1", "ubuntu-22.04-base", "1.3.0")),
        k8s("node-uid-2", "node", "node-outdated", ami("us-east-1", "ubuntu-22.04-base", "1.2.0")),
        k8s("pod-uid-1", "workload", "web/python-current", container_ref("python-3.12", "3.12.8-r2")),
        k8s("pod-uid-2", "workload", "web/python-behind-1", container_ref("python-3.12", "3.12.7-r1")),
        k8s("pod-uid-3", "workload", "web/python-behind-2", container_ref("python-3.12", "3.12.6-r1")),
        k8s("pod-uid-4", "workload", "web/nginx-current", container_ref("nginx-1.27", "1.27.2-r1")),
        k8s("pod-uid-5", "workload", "web/redis", REDIS_IMAGE),
        k8s("ctr-uid-1", "container", "sidecar", REDIS_IMAGE),
    ]
    return assets, images


@dataclass(frozen=True)
class TinyLake:
    lake_dir: Path
    node_current_ami: str


def build_tiny_lake(lake_dir: Path) -> TinyLake:
    """Write the three sites' snapshots (aws-prod-use1 twice) into lake_dir."""
    lake_dir.mkdir(parents=True, exist_ok=True)
    _publish(lake_dir, AWS_PROD, S0, *_aws_prod(S0_AT, S0))
    _publish(lake_dir, AWS_PROD, S1, *_aws_prod(S1_AT, S1))
    _publish(lake_dir, AWS_STG, S1, *_aws_stg(S1_AT, S1))
    _publish(lake_dir, K8S_PROD, S1, *_k8s_prod(S1_AT))
    return TinyLake(lake_dir, ami("us-east-1", "ubuntu-22.04-base", "1.3.0"))


def write_second_staging_snapshot(lake_dir: Path) -> str:
    """A later discovery of aws-stg-euw1: the outdated VM upgraded, the unknown VM retired."""
    _publish(lake_dir, AWS_STG, S2, *_aws_stg(S2_AT, S2))
    return S2
