"""Sample supply-chain files for golden images of the sample estate: a Trivy report, a Grype
report, a CycloneDX and an SPDX SBOM and two SLSA provenance statements, each in its tool's own
JSON format (the shapes the parsers in qlrf_pipelines.supply_chain read; compare
tests/fixtures/supply_chain/).

Every file names its image by the AMI the image has in the bundled production AWS site's region
(catalog.aws_ami_id), the provider image id discovery records, so the warehouse
(int_supply_chain_image_ids) maps each file to its golden image:

* Trivy `trivy vm ami:<ami>`: ArtifactName `ami:<ami>` (the parser takes the AMI id as image_ref).
* Grype: source.target.userInput `<ami>` (image_ref).
* CycloneDX / SPDX: the root component / package is named `<ami>` (image_ref).
* SLSA: the subject is `<ami>` with the sha256 of the image's root snapshot; image_ref is that
  digest, the AMI id an alias.

The scenario: ubuntu-22.04-base 1.1.0 was scanned with openssh CVEs (CVE-2024-6387 on
openssh-server, CVE-2023-38408 on openssh-client); 1.2.0's SBOM still has the vulnerable
openssh-server, 1.3.0's has the fixed one and build provenance; rhel-9-base 9.4.0 (production)
has a critical fixable glibc finding but neither SBOM nor provenance; windows-2022-base 2026.10
has provenance, 2026.08 nothing. `qlrf import --sample` imports them.

`python -m qlrf_pipelines.sample.estate` writes them (deterministic: same bytes every run).
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from qlrf_pipelines.models.records import version_sort_key
from qlrf_pipelines.sample.catalog import CatalogVersion, aws_ami_id
from qlrf_pipelines.sample.common import catalog_version
from qlrf_pipelines.settings import BUNDLED_SITES_FILE

FOLDER = "supply_chain"
BUNDLED_FOLDER = BUNDLED_SITES_FILE.parent / FOLDER
AWS_SITE = "aws-prod-use1"
"""The bundled AWS site whose AMIs the files name (its region's AMI ids)."""

TRIVY_VERSION = "0.56.2"
GRYPE_VERSION = "0.82.1"
SOURCE_REPO = "https://github.com/example-org/golden-images"
BUILDER_ID = "https://github.com/actions/runner/github-hosted"
BUILD_TYPE = "https://actions.github.io/buildtypes/workflow/v1"


def _z(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _uuid(text: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(text.encode()).digest()[:16], version=4))


@functools.cache
def aws_region() -> str:
    """The region of the bundled AWS site the sample files name AMIs in (us-east-1)."""
    from qlrf_pipelines.sites import load_sites

    site = next(s for s in load_sites(BUNDLED_SITES_FILE).sites if s.id == AWS_SITE)
    return site.location


def ami(version: CatalogVersion) -> str:
    return aws_ami_id(aws_region(), version)


def snapshot_digest(version: CatalogVersion) -> str:
    """sha256 (hex) standing for the AMI's root snapshot: the provenance subject's digest."""
    return hashlib.sha256(f"{aws_region()}/{ami(version)}/root-snapshot".encode()).hexdigest()


# -- Ubuntu packages ---------------------------------------------------------------------------

# (name, version, source package, license) of the packages the Ubuntu SBOMs list.
_UBUNTU_PACKAGES: tuple[tuple[str, str, str, str], ...] = (
    ("base-files", "12ubuntu4.6", "base-files", "GPL-2.0-or-later"),
    ("bash", "5.1-6ubuntu1.1", "bash", "GPL-3.0-or-later"),
    ("coreutils", "8.32-4.1ubuntu1.2", "coreutils", "GPL-3.0-or-later"),
    ("gpgv", "2.2.27-3ubuntu2.1", "gnupg2", "GPL-3.0-or-later"),
    ("libc6", "2.35-0ubuntu3.8", "glibc", "LGPL-2.1-or-later"),
    ("libssl3", "3.0.2-0ubuntu1.15", "openssl", "Apache-2.0"),
    ("openssh-client", "1:8.9p1-3ubuntu0.6", "openssh", "BSD-2-Clause"),
    ("openssh-server", "1:8.9p1-3ubuntu0.6", "openssh", "BSD-2-Clause"),
    ("openssl", "3.0.2-0ubuntu1.15", "openssl", "Apache-2.0"),
    ("sudo", "1.9.9-1ubuntu2.4", "sudo", "ISC"),
    ("systemd", "249.11-0ubuntu3.12", "systemd", "LGPL-2.1-or-later"),
    ("zlib1g", "1:1.2.11.dfsg-2ubuntu9.2", "zlib", "Zlib"),
)
# 1.3.0 was rebuilt with the openssh fix for CVE-2024-6387.
_OPENSSH_FIXED = "1:8.9p1-3ubuntu0.10"


def _ubuntu_packages(version: CatalogVersion) -> list[tuple[str, str, str, str]]:
    if version_sort_key(version.version) < version_sort_key("1.3.0"):
        return list(_UBUNTU_PACKAGES)
    return [
        (name, _OPENSSH_FIXED if source == "openssh" else pkg_version, source, lic)
        for name, pkg_version, source, lic in _UBUNTU_PACKAGES
    ]


def _deb_purl(name: str, version: str, distro: str = "ubuntu-22.04") -> str:
    """Trivy's purl for a deb: the epoch goes in a qualifier (1:8.9p1-... -> 8.9p1-...&epoch=1)."""
    epoch, _, plain = version.rpartition(":")
    purl = f"pkg:deb/ubuntu/{name}@{plain}?arch=amd64&distro={distro}"
    return f"{purl}&epoch={epoch}" if epoch else purl


# -- Trivy -------------------------------------------------------------------------------------


def _trivy_vuln(
    vuln_id: str, name: str, installed: str, fixed: str | None, severity: str, title: str, **extra: Any
) -> dict:
    vuln = {
        "VulnerabilityID": vuln_id,
        "PkgID": f"{name}@{installed}",
        "PkgName": name,
        "PkgIdentifier": {"PURL": _deb_purl(name, installed), "UID": _hex(f"{name}@{installed}", 16)},
        "InstalledVersion": installed,
    }
    if fixed:
        vuln["FixedVersion"] = fixed
    vuln["Status"] = "fixed" if fixed else "affected"
    vuln["SeveritySource"] = "ubuntu"
    vuln["PrimaryURL"] = f"https://avd.aquasec.com/nvd/{vuln_id.lower()}"
    vuln["Title"] = title
    vuln.update(extra)
    vuln["Severity"] = severity
    return vuln


def trivy_ubuntu_1_1_0() -> dict:
    version = catalog_version("ubuntu-22.04-base", "1.1.0")
    artifact = f"ami:{ami(version)}"
    return {
        "SchemaVersion": 2,
        "CreatedAt": "2026-05-05T09:00:00Z",
        "ArtifactName": artifact,
        "ArtifactType": "vm",
        "Metadata": {
            "OS": {"Family": "ubuntu", "Name": "22.04"},
            "ImageConfig": {"architecture": "amd64", "os": "linux"},
        },
        "Trivy": {"Version": TRIVY_VERSION},
        "Results": [
            {
                "Target": f"{artifact} (ubuntu 22.04)",
                "Class": "os-pkgs",
                "Type": "ubuntu",
                "Vulnerabilities": [
                    _trivy_vuln(
                        "CVE-2022-3219", "gpgv", "2.2.27-3ubuntu2.1", None, "LOW",
                        "gnupg: denial of service issue (resource consumption) using compressed packets",
                        PublishedDate="2023-02-23T20:15:12.393Z",
                    ),
                    _trivy_vuln(
                        "CVE-2024-2511", "libssl3", "3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.16", "LOW",
                        "openssl: Unbounded memory growth with session handling in TLSv1.3",
                        PublishedDate="2024-04-08T14:15:07.660Z",
                    ),
                    _trivy_vuln(
                        "CVE-2023-38408", "openssh-client", "1:8.9p1-3ubuntu0.1", "1:8.9p1-3ubuntu0.3", "CRITICAL",
                        "openssh: potential remote code execution due to PKCS#11 provider loading in ssh-agent",
                        Description="The PKCS#11 feature in ssh-agent in OpenSSH before 9.3p2 has an insufficiently "
                        "trustworthy search path, leading to remote code execution if an agent is forwarded to an "
                        "attacker-controlled system.",
                        CweIDs=["CWE-428"],
                        CVSS={"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": 9.8}},
                        PublishedDate="2023-07-20T03:15:10.170Z",
                    ),
                    _trivy_vuln(
                        "CVE-2023-48795", "openssh-client", "1:8.9p1-3ubuntu0.1", "1:8.9p1-3ubuntu0.5", "MEDIUM",
                        "ssh: Prefix truncation attack on Binary Packet Protocol (BPP)",
                        CweIDs=["CWE-222"],
                        CVSS={"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N", "V3Score": 5.9}},
                        PublishedDate="2023-12-18T16:15:10.897Z",
                    ),
                    _trivy_vuln(
                        "CVE-2024-6387", "openssh-server", "1:8.9p1-3ubuntu0.6", "1:8.9p1-3ubuntu0.10", "HIGH",
                        "openssh: regreSSHion - race condition in SSH allows RCE/DoS",
                        Description="A signal handler race condition was found in sshd, where a client does not "
                        "authenticate within LoginGraceTime seconds; a remote unauthenticated attacker may be able "
                        "to execute arbitrary code as root.",
                        CweIDs=["CWE-364"],
                        CVSS={"redhat": {"V3Vector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": 8.1}},
                        PublishedDate="2024-07-01T13:15:06.467Z",
                    ),
                ],
            }
        ],
    }


# -- Grype -------------------------------------------------------------------------------------


def _grype_match(vuln_id: str, severity: str, description: str, fix: list[str], state: str,
                 name: str, installed: str, source_rpm: str, licenses: list[str]) -> dict:
    epoch, _, plain = installed.rpartition(":")
    purl = f"pkg:rpm/redhat/{name}@{plain}?arch=x86_64&distro=rhel-9.4" + (f"&epoch={epoch}" if epoch else "")
    return {
        "vulnerability": {
            "id": vuln_id,
            "dataSource": f"https://access.redhat.com/security/cve/{vuln_id}",
            "namespace": "redhat:distro:redhat:9",
            "severity": severity,
            "urls": [f"https://access.redhat.com/security/cve/{vuln_id}"],
            "description": description,
            "cvss": [],
            "fix": {"versions": fix, "state": state},
            "advisories": [],
        },
        "relatedVulnerabilities": [
            {"id": vuln_id, "dataSource": f"https://nvd.nist.gov/vuln/detail/{vuln_id}", "namespace": "nvd:cpe",
             "severity": severity}
        ],
        "matchDetails": [
            {"type": "exact-indirect-match", "matcher": "rpm-matcher",
             "searchedBy": {"distro": {"type": "redhat", "version": "9.4"}, "namespace": "redhat:distro:redhat:9",
                            "package": {"name": source_rpm.split("-")[0], "version": installed}},
             "found": {"versionConstraint": f"< {fix[0]} (rpm)" if fix else "none (rpm)", "vulnerabilityID": vuln_id}}
        ],
        "artifact": {
            "id": _hex(f"{name}@{installed}", 16),
            "name": name,
            "version": installed,
            "type": "rpm",
            "locations": [{"path": "/var/lib/rpm/rpmdb.sqlite"}],
            "language": "",
            "licenses": licenses,
            "cpes": [f"cpe:2.3:a:redhat:{name}:{plain}:*:*:*:*:*:*:*"],
            "purl": f"{purl}&upstream={source_rpm}",
            "upstreams": [{"name": source_rpm.split("-")[0]}],
        },
    }


def grype_rhel_9_4_0() -> dict:
    version = catalog_version("rhel-9-base", "9.4.0")
    scanned = datetime(2026, 10, 28, 7, 0, 0, tzinfo=timezone.utc)
    return {
        "matches": [
            _grype_match(
                "CVE-2024-2961", "Critical",
                "The iconv() function in the GNU C Library versions 2.39 and older may overflow the output buffer "
                "passed to it by up to 4 bytes when converting strings to the ISO-2022-CN-EXT character set.",
                ["2.34-100.el9_4.2"], "fixed", "glibc", "2.34-100.el9", "glibc-2.34-100.el9.src.rpm",
                ["LGPLv2+ and LGPLv2+ with exceptions and GPLv2+"],
            ),
            _grype_match(
                "CVE-2024-6119", "Medium",
                "Applications performing certificate name checks may attempt to read an invalid memory address "
                "resulting in abnormal termination of the application process.",
                ["1:3.0.7-28.el9_4"], "fixed", "openssl-libs", "1:3.0.7-27.el9", "openssl-3.0.7-27.el9.src.rpm",
                ["ASL 2.0"],
            ),
            _grype_match(
                "CVE-2022-3219", "Low",
                "GnuPG can be made to spin on a relatively small input by crafting a public key with thousands "
                "of signatures attached, compressed down to just a few KB.",
                [], "wont-fix", "gnupg2", "2.3.3-4.el9", "gnupg2-2.3.3-4.el9.src.rpm", ["GPLv3+"],
            ),
        ],
        "source": {
            "type": "image",
            "target": {
                "userInput": ami(version),
                "tags": [],
                "repoDigests": [],
                "architecture": "amd64",
                "os": "linux",
            },
        },
        "distro": {"name": "redhat", "version": "9.4", "idLike": ["fedora"]},
        "descriptor": {
            "name": "grype",
            "version": GRYPE_VERSION,
            "configuration": {"output": ["json"], "fail-on-severity": "", "only-fixed": False},
            "db": {"built": "2026-10-28T01:31:07Z", "schemaVersion": 5, "checksum": f"sha256:{_hex('grype-db', 64)}"},
            "timestamp": _z(scanned),
        },
    }


# -- CycloneDX ---------------------------------------------------------------------------------


def cyclonedx_ubuntu(version: CatalogVersion) -> dict:
    image = ami(version)
    root_ref = _uuid(f"cyclonedx/{image}/root")
    components = []
    for name, pkg_version, source, lic in _ubuntu_packages(version):
        purl = _deb_purl(name, pkg_version)
        components.append(
            {
                "bom-ref": purl,
                "type": "library",
                "supplier": {"name": "Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>"},
                "name": name,
                "version": pkg_version,
                "licenses": [{"license": {"id": lic}}],
                "purl": purl,
                "properties": [
                    {"name": "aquasecurity:trivy:PkgID", "value": f"{name}@{pkg_version}"},
                    {"name": "aquasecurity:trivy:PkgType", "value": "ubuntu"},
                    {"name": "aquasecurity:trivy:SrcName", "value": source},
                ],
            }
        )
    components.append(
        {
            "bom-ref": _uuid(f"cyclonedx/{image}/os"),
            "type": "operating-system",
            "name": "ubuntu",
            "version": "22.04",
            "properties": [
                {"name": "aquasecurity:trivy:Class", "value": "os-pkgs"},
                {"name": "aquasecurity:trivy:Type", "value": "ubuntu"},
            ],
        }
    )
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{_uuid(f'cyclonedx/{image}')}",
        "version": 1,
        "metadata": {
            "timestamp": _z(version.created_at + timedelta(minutes=20)),
            "tools": {
                "components": [
                    {"type": "application", "group": "aquasecurity", "name": "trivy", "version": TRIVY_VERSION}
                ]
            },
            "component": {
                "bom-ref": root_ref,
                "type": "container",
                "name": image,
                "properties": [
                    {"name": "aquasecurity:trivy:SchemaVersion", "value": "2"},
                    {"name": "qlrf:image", "value": version.image_id},
                ],
            },
        },
        "components": components,
        "dependencies": [
            {"ref": root_ref, "dependsOn": [c["bom-ref"] for c in components]},
            *({"ref": c["bom-ref"], "dependsOn": []} for c in components),
        ],
    }


# -- SPDX --------------------------------------------------------------------------------------


def spdx_ubuntu(version: CatalogVersion) -> dict:
    image = ami(version)
    root_id = f"SPDXRef-VM-{image}"
    packages: list[dict] = [
        {
            "name": image,
            "SPDXID": root_id,
            "supplier": "NOASSERTION",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": f"golden image {version.image_id}",
            "primaryPackagePurpose": "CONTAINER",
        },
        {
            "name": "ubuntu",
            "SPDXID": f"SPDXRef-OperatingSystem-{_hex(f'{image}/os', 16)}",
            "versionInfo": "22.04",
            "supplier": "Organization: Canonical Ltd.",
            "downloadLocation": "NONE",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        },
    ]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root_id},
        {"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": packages[1]["SPDXID"]},
    ]
    for name, pkg_version, source, lic in _ubuntu_packages(version):
        spdx_id = f"SPDXRef-Package-{_hex(f'{name}@{pkg_version}', 16)}"
        packages.append(
            {
                "name": name,
                "SPDXID": spdx_id,
                "versionInfo": pkg_version,
                "supplier": "Organization: Ubuntu Developers (ubuntu-devel-discuss@lists.ubuntu.com)",
                "downloadLocation": "NONE",
                "filesAnalyzed": False,
                "sourceInfo": f"built package from: {source} {pkg_version}",
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": lic,
                "copyrightText": "NOASSERTION",
                "externalRefs": [
                    {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                     "referenceLocator": _deb_purl(name, pkg_version)}
                ],
                "primaryPackagePurpose": "LIBRARY",
            }
        )
        relationships.append(
            {"spdxElementId": packages[1]["SPDXID"], "relationshipType": "CONTAINS", "relatedSpdxElement": spdx_id}
        )
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"ami:{image}",
        "documentNamespace": f"http://aquasecurity.github.io/trivy/vm/ami:{image}-{_uuid(f'spdx/{image}')}",
        "creationInfo": {
            "licenseListVersion": "3.24",
            "creators": ["Organization: aquasecurity", f"Tool: trivy-{TRIVY_VERSION}"],
            "created": _z(version.created_at + timedelta(minutes=25)),
        },
        "packages": packages,
        "relationships": relationships,
    }


# -- SLSA provenance ---------------------------------------------------------------------------


def slsa_provenance(version: CatalogVersion, base_image: dict, started: datetime, minutes: int) -> dict:
    """An in-toto Statement v1 with SLSA provenance v1 for the AMI, built by GitHub Actions from
    the source repo at one commit and `base_image` (the image the build started from)."""
    image = ami(version)
    run_id = int(_hex(f"run/{version.image_id}", 12), 16) % 9_000_000_000 + 10_000_000_000
    commit = hashlib.sha1(f"{SOURCE_REPO}/{version.image_id}".encode()).hexdigest()
    family_slug = version.family.replace(".", "-")
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": image, "digest": {"sha256": snapshot_digest(version)}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "workflow": {
                        "ref": "refs/heads/main",
                        "repository": SOURCE_REPO,
                        "path": f".github/workflows/build-{family_slug}.yml",
                    },
                    "inputs": {"version": version.version},
                },
                "internalParameters": {
                    "github": {
                        "event_name": "workflow_dispatch",
                        "repository_id": "712345678",
                        "repository_owner_id": "98765432",
                        "runner_environment": "github-hosted",
                    }
                },
                "resolvedDependencies": [
                    {"uri": f"git+{SOURCE_REPO}@refs/heads/main", "digest": {"gitCommit": commit}},
                    base_image,
                ],
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID},
                "metadata": {
                    "invocationId": f"{SOURCE_REPO}/actions/runs/{run_id}/attempts/1",
                    "startedOn": _z(started),
                    "finishedOn": _z(started + timedelta(minutes=minutes)),
                },
            },
        },
    }


def slsa_ubuntu_1_3_0() -> dict:
    version = catalog_version("ubuntu-22.04-base", "1.3.0")
    # rebuilt_from 1.2.0: built afresh from Canonical's Jammy cloud image, not from 1.2.0's AMI.
    upstream = {
        "uri": "https://cloud-images.ubuntu.com/releases/22.04/release-20260901/"
        "ubuntu-22.04-server-cloudimg-amd64.img",
        "digest": {"sha256": _hex("ubuntu-22.04-server-cloudimg-amd64/20260901", 64)},
    }
    return slsa_provenance(version, upstream, version.created_at - timedelta(minutes=34), 27)


def slsa_windows_2026_10() -> dict:
    version = catalog_version("windows-2022-base", "2026.10")
    # patched_from 2026.08: the build starts from the parent golden image's AMI.
    parent = catalog_version(version.parent_family, version.parent_version)
    base = {
        "uri": f"ami:{ami(parent)}",
        "name": parent.image_id,
        "digest": {"sha256": snapshot_digest(parent)},
        "annotations": {"relation": version.relation},
    }
    return slsa_provenance(version, base, version.created_at - timedelta(minutes=78), 71)


def sample_files() -> dict[str, dict]:
    """File name -> document, for the bundled supply_chain folder."""
    return {
        "trivy-ubuntu-22.04-base-1.1.0.json": trivy_ubuntu_1_1_0(),
        "cyclonedx-ubuntu-22.04-base-1.2.0.json": cyclonedx_ubuntu(catalog_version("ubuntu-22.04-base", "1.2.0")),
        "spdx-ubuntu-22.04-base-1.3.0.spdx.json": spdx_ubuntu(catalog_version("ubuntu-22.04-base", "1.3.0")),
        "grype-rhel-9-base-9.4.0.json": grype_rhel_9_4_0(),
        "slsa-ubuntu-22.04-base-1.3.0.intoto.json": slsa_ubuntu_1_3_0(),
        "slsa-windows-2022-base-2026.10.intoto.json": slsa_windows_2026_10(),
    }


def write_supply_chain(folder: Path) -> list[Path]:
    """Write the sample files into `folder` (created), replacing any other .json there."""
    folder.mkdir(parents=True, exist_ok=True)
    files = sample_files()
    for stale in folder.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, document in files.items():
        path = folder / name
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written
