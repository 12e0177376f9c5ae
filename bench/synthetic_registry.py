"""A synthetic golden image registry for the benchmark, landed in the lake the way the platform does.

Not part of the platform: run_benchmark.py's `registry-generate` stage calls write_registry(). Every
file goes through the platform's own writers, so dbt reads exactly what discovery, the
supply-chain importer and the control store export would have written:

  sites, assets, images   one discovery snapshot per site (lake.to_table + lake.write_snapshot,
                          what discovery.discover_site writes)
  image_vulnerabilities,  supply-chain imports under site "supply-chain", as landing.land_file
  image_components,       writes them (one supply_chain_imports row per imported file plus its
  image_builds,           findings / components), except that several imports share one lake
  supply_chain_imports    snapshot so 1M findings are tens of files, not 20k tiny ones
  image_lineage_links,    one control snapshot (control_export.write_control_snapshot)
  image_promotions, ...

Shape (deterministic, no randomness):
  - BASE_COUNT base images (family base-os-NN, version 1.0.0) and the rest in families of
    VERSIONS_PER_FAMILY versions; version n of a family is patched_from version n-1, and a family's
    first version is derived_from base (family % BASE_COUNT). A base has ~images/BASE_COUNT
    descendants and the forest is VERSIONS_PER_FAMILY + 1 levels deep.
  - The parent of an image is named by its tags (parent_image / parent_relation; half by golden
    image id, half by provider image id), except for ~5% of images whose parent is a registered
    link in the control snapshot; ~1% have both (the registered link wins).
  - Four sites (aws, azure, gcp, kubernetes); a family is published on one of them.
  - Assets (images // 5 of them, 5% terminated) run versions of every family (half of them one of
    the 5 newest), in the family's site.
  - Scans of 50 findings each (vulns // 50 imports, trivy or grype; 10% are re-scans that replace
    an earlier scan of the same image), over a pool of CVEs in 2,000 packages.
  - SBOMs (spdx / cyclonedx, 10 components each) for every 10th image.
  - CHOSEN_CVE (openssl 3.0.2, fixed in 3.0.8) is in base-os-00 and in the versions of its
    descendant families before that family's fix version: scans of those images report it and
    their SBOMs list openssl 3.0.2; later versions' SBOMs list 3.0.8, so the blast-radius walk has
    scanned, carried ('sbom'), inherited and stopped (fixed) cases.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from qlrf_pipelines.control_export import write_control_snapshot
from qlrf_pipelines.lake import snapshot_id_for, to_table, write_snapshot
from qlrf_pipelines.models.records import version_sort_key
from qlrf_pipelines.supply_chain.landing import SUPPLY_CHAIN_SITE

BASE_COUNT = 20
VERSIONS_PER_FAMILY = 50
FINDINGS_PER_SCAN = 50
COMPONENTS_PER_SBOM = 10
PACKAGES = 2_000
CVE_POOL = 20_000
IMPORTS_PER_SNAPSHOT = 500
CHOSEN_CVE = "CVE-2099-0001"
CHOSEN_PACKAGE = "openssl"
VULNERABLE_VERSION = "3.0.2"
FIXED_VERSION = "3.0.8"
SEVERITIES = ("critical", "high", "high", "medium", "medium", "medium", "low", "low", "negligible", "unknown")

SITES = (
    # site_id, provider, environment, location, asset kind
    ("reg-aws-prod", "aws", "production", "us-east-1", "vm"),
    ("reg-azure-prod", "azure", "production", "westeurope", "vm"),
    ("reg-gcp-stg", "gcp", "staging", "europe-west1", "vm"),
    ("reg-k8s-dev", "kubernetes", "development", "eks-dev", "container"),
)
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Image:
    index: int
    family: str
    version: str
    family_no: int  # -1 for base images
    n: int  # version number within the family (1-based; 0 for base images)
    site: int

    @property
    def image_id(self) -> str:
        return f"{self.family}@{self.version}"

    @property
    def provider_image_id(self) -> str:
        provider = SITES[self.site][1]
        if provider == "aws":
            return f"ami-{self.index:017x}"
        if provider == "azure":
            return (f"/subscriptions/00000000-0000-0000-0000-00000000beef/resourcegroups/golden/providers/"
                    f"microsoft.compute/galleries/qlrf/images/{self.family}/versions/{self.version}")
        if provider == "gcp":
            return f"projects/qlrf-golden/global/images/{self.family}-v{self.version.replace('.', '-')}"
        return f"registry.example.com/golden/{self.family}:{self.version}"


@dataclass(frozen=True)
class Registry:
    """What write_registry built, for the queries and the report."""

    images: int
    families: int
    assets: int
    scans: int
    sboms: int
    vulnerability_rows: int
    component_rows: int
    registered_links: int
    chosen_cve: str
    chosen_base: str
    chosen_base_descendants: int


def _version(n: int) -> str:
    return f"{1 + (n - 1) // 20}.{(n - 1) % 20}.0"


def build_images(total: int) -> list[Image]:
    """Base images first, then families of VERSIONS_PER_FAMILY versions (the last one may be short)."""
    bases = min(BASE_COUNT, max(1, total // 100))
    images = [Image(i, f"base-os-{i:02d}", "1.0.0", -1, 0, 0) for i in range(bases)]
    family = 0
    while len(images) < total:
        for n in range(1, VERSIONS_PER_FAMILY + 1):
            if len(images) == total:
                break
            images.append(Image(len(images), f"app-{family:05d}", _version(n), family, n, family % len(SITES)))
        family += 1
    return images


def _bases(images: list[Image]) -> int:
    return sum(1 for image in images if image.family_no < 0)


def parent_of(images: list[Image], image: Image) -> tuple[Image, str] | None:
    if image.family_no < 0:
        return None
    if image.n == 1:
        return images[image.family_no % _bases(images)], "derived_from"
    return images[image.index - 1], "patched_from"


def fix_version_of(image: Image) -> int:
    """The first version of the family that ships openssl FIXED_VERSION."""
    return 10 + (image.family_no * 7) % 40


def carries_chosen_cve(image: Image, bases: int) -> bool:
    if image.family_no < 0:
        return image.index == 0
    return image.family_no % bases == 0 and image.n < fix_version_of(image)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _package_version(package: int) -> str:
    return f"1.{package % 7}.{package % 3}"


def write_registry(lake_dir: Path, total_images: int, total_vulns: int) -> Registry:
    images = build_images(total_images)
    bases = _bases(images)
    now = T0 + timedelta(days=30)

    # -- discovery snapshots: sites, assets, images per site ------------------------------------------------
    links: list[dict] = []
    image_rows: dict[int, list[dict]] = {s: [] for s in range(len(SITES))}
    for image in images:
        parent = parent_of(images, image)
        parent_image = parent_relation = None
        if parent is not None:
            registered = image.index % 20 == 7 or image.index % 100 == 11
            tagged = image.index % 20 != 7
            if registered:
                links.append({
                    "child_image_id": image.image_id, "parent_image_id": parent[0].image_id, "relation": parent[1],
                    "linked_by": "bench", "reason": "synthetic registry",
                    "linked_at": T0 + timedelta(minutes=image.index),
                })
            if tagged:
                parent_image = parent[0].image_id if image.index % 2 else parent[0].provider_image_id
                parent_relation = parent[1]
        newest = image.family_no < 0 or image.n == VERSIONS_PER_FAMILY or image.index == len(images) - 1
        provider = SITES[image.site][1]
        image_rows[image.site].append({
            "provider_image_id": image.provider_image_id, "site_id": SITES[image.site][0], "provider": provider,
            "name": f"{image.family}-{image.version}", "discovered_at": now,
            "family": image.family, "version": image.version, "version_key": version_sort_key(image.version),
            "status": "production" if newest or image.n >= VERSIONS_PER_FAMILY - 2 else "deprecated",
            "region": SITES[image.site][3], "platform": "linux", "os": "ubuntu-22.04",
            "created_at": T0 + timedelta(hours=image.index % 5000, minutes=image.n),
            "tags": [{"key": "qlrf:family", "value": image.family}, {"key": "qlrf:version", "value": image.version}],
            "parent_image": parent_image, "parent_relation": parent_relation,
        })

    families = [i for i in images if i.family_no >= 0]
    newest_by_family: dict[int, Image] = {}
    for image in families:
        newest_by_family[image.family_no] = image
    asset_rows: dict[int, list[dict]] = {s: [] for s in range(len(SITES))}
    asset_total = total_images // 5
    family_count = len(newest_by_family)
    for k in range(asset_total):
        newest = newest_by_family[k % family_count]
        round_no = k // family_count
        # even rounds run one of the family's 5 newest versions, odd rounds any version
        back = round_no % 5 if round_no % 2 == 0 else (round_no * 7 + k) % newest.n
        image = images[max(newest.index - back, newest.index - newest.n + 1)]
        site_id, provider, _env, location, kind = SITES[image.site]
        spread = (k + round_no) % 20
        state = "terminated" if spread == 0 else "stopped" if spread == 1 else "running"
        asset_rows[image.site].append({
            "asset_id": f"{provider}:{site_id}:i-{k:08x}", "site_id": site_id, "provider": provider,
            "native_id": f"i-{k:08x}", "kind": kind, "name": f"{image.family}-{k}", "state": state,
            "discovered_at": now, "image_ref": image.provider_image_id, "platform": "linux", "os": "ubuntu-22.04",
            "instance_type": "m6i.large", "cpu_count": 2, "memory_mb": 8192, "region": location,
            "zone": f"{location}a", "network": "vpc-golden",
            "private_ip": f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}",
            "public_ip": None, "launched_at": T0, "tags": [], "attributes_json": None,
        })

    for s, (site_id, provider, environment, location, _kind) in enumerate(SITES):
        snapshot_id = snapshot_id_for(now + timedelta(seconds=s))
        site_row = {
            "site_id": site_id, "provider": provider, "name": f"Registry {site_id}", "location": location,
            "environment": environment, "account": "bench", "endpoint_url": None,
            "asset_count": len(asset_rows[s]), "image_count": len(image_rows[s]),
        }
        write_snapshot(lake_dir, site_id, snapshot_id, {
            "sites": to_table("sites", [site_row], snapshot_id),
            "assets": to_table("assets", asset_rows[s], snapshot_id),
            "images": to_table("images", image_rows[s], snapshot_id),
        }, remote=None)
    del image_rows, asset_rows

    # -- control snapshot: registered lineage links and a few promotions ------------------------------------
    promotions = [
        {"promotion_id": p + 1, "image_id": image.image_id, "from_status": "deprecated", "to_status": "revoked",
         "promoted_by": "bench", "reason": "synthetic revoke", "promoted_at": T0 + timedelta(days=1, minutes=p),
         "cascade_from": None}
        for p, image in enumerate(i for i in families if i.n == 1 and i.family_no % 10 == 5)
    ]
    write_control_snapshot(lake_dir, {"image_lineage_links": links, "image_promotions": promotions},
                           now=now + timedelta(minutes=1))

    # -- supply-chain imports: scans and SBOMs, IMPORTS_PER_SNAPSHOT imports per lake snapshot --------------
    scans = max(1, math.ceil(total_vulns / FINDINGS_PER_SCAN))
    distinct = min(len(images), max(1, math.ceil(scans * 0.9)))
    imports: list[dict] = []  # one entry per imported file, in import order
    for j in range(scans):
        target = images[(j % distinct) * len(images) // distinct]
        findings = min(FINDINGS_PER_SCAN, total_vulns - j * FINDINGS_PER_SCAN)
        imports.append({"kind": "scan", "j": j, "image": target, "rows": findings,
                        "format": "trivy" if (j % distinct) % 2 == 0 else "grype"})
    sbom_images = [image for image in images if image.index % 10 == 3]
    for image in sbom_images:
        imports.append({"kind": "sbom", "j": image.index, "image": image, "rows": COMPONENTS_PER_SBOM,
                        "format": "spdx" if image.index % 20 == 3 else "cyclonedx"})

    vulnerability_rows = component_rows = 0
    for batch_no in range(0, len(imports), IMPORTS_PER_SNAPSHOT):
        batch = imports[batch_no:batch_no + IMPORTS_PER_SNAPSHOT]
        vulns: list[dict] = []
        components: list[dict] = []
        import_rows: list[dict] = []
        for offset, item in enumerate(batch):
            image: Image = item["image"]
            imported_at = now + timedelta(hours=1, seconds=batch_no + offset)
            import_id = _hash(f"{item['kind']}-{item['j']}")
            common = {"import_id": import_id, "image_ref": image.provider_image_id, "imported_at": imported_at}
            if item["kind"] == "scan":
                j = item["j"]
                for f in range(item["rows"]):
                    if f == 0 and carries_chosen_cve(image, bases):
                        vulns.append(common | {
                            "vulnerability_id": CHOSEN_CVE, "severity": "critical", "package_name": CHOSEN_PACKAGE,
                            "package_type": "deb", "installed_version": VULNERABLE_VERSION,
                            "fixed_version": FIXED_VERSION, "fix_state": "fixed",
                            "purl": f"pkg:deb/ubuntu/{CHOSEN_PACKAGE}@{VULNERABLE_VERSION}",
                            "title": "synthetic critical openssl flaw", "source": item["format"],
                            "source_version": "0.50.0", "target": "ubuntu 22.04 (os)",
                        })
                        continue
                    cve = (j * 37 + f * 401) % CVE_POOL
                    package = cve % PACKAGES
                    version = _package_version(package)
                    fixable = cve % 5 != 0
                    vulns.append(common | {
                        "vulnerability_id": f"CVE-2025-{cve:05d}", "severity": SEVERITIES[cve % len(SEVERITIES)],
                        "package_name": f"pkg-{package:04d}", "package_type": "deb", "installed_version": version,
                        "fixed_version": f"{version}-fix1" if fixable else None,
                        "fix_state": "fixed" if fixable else "not-fixed",
                        "purl": f"pkg:deb/ubuntu/pkg-{package:04d}@{version}", "title": None,
                        "source": item["format"], "source_version": "0.50.0", "target": "ubuntu 22.04 (os)",
                    })
                vulnerability_rows += item["rows"]
                count = {"vulnerability_count": item["rows"], "component_count": 0}
            else:
                packages = [(image.index * 3 + k * 211) % PACKAGES for k in range(COMPONENTS_PER_SBOM - 1)]
                openssl = VULNERABLE_VERSION if carries_chosen_cve(image, bases) else FIXED_VERSION
                entries = [(f"pkg-{p:04d}", _package_version(p)) for p in dict.fromkeys(packages)]
                entries.append((CHOSEN_PACKAGE, openssl))
                for name, version in entries:
                    components.append(common | {
                        "name": name, "version": version, "purl": f"pkg:deb/ubuntu/{name}@{version}",
                        "licenses": ["Apache-2.0 OR MIT"] if len(name) % 2 else ["MIT"], "supplier": "Canonical",
                        "component_type": "library", "source": item["format"], "document_name": image.image_id,
                    })
                component_rows += len(entries)
                count = {"vulnerability_count": 0, "component_count": len(entries)}
            import_rows.append(common | count | {
                "filename": f"{item['kind']}-{item['j']}.json", "format": item["format"],
                "format_version": "2" if item["kind"] == "scan" else "2.3",
                "image_aliases": [f"registry.example.com/golden/{image.family}@sha256:{import_id[:16]}"],
                "envelope": None, "build_count": 0, "warnings": [],
            })
        snapshot_id = snapshot_id_for(now + timedelta(hours=2, seconds=batch_no))
        write_snapshot(lake_dir, SUPPLY_CHAIN_SITE, snapshot_id, {
            "image_vulnerabilities": to_table("image_vulnerabilities", vulns, snapshot_id),
            "image_components": to_table("image_components", components, snapshot_id),
            "image_builds": to_table("image_builds", [], snapshot_id),
            "supply_chain_imports": to_table("supply_chain_imports", import_rows, snapshot_id),
        }, remote=None)

    chosen = images[0]
    descendants = sum(1 for i in families if i.family_no % bases == 0)
    return Registry(
        images=len(images), families=len(newest_by_family), assets=asset_total, scans=scans,
        sboms=len(sbom_images), vulnerability_rows=vulnerability_rows, component_rows=component_rows,
        registered_links=len(links), chosen_cve=CHOSEN_CVE, chosen_base=chosen.image_id,
        chosen_base_descendants=descendants,
    )
