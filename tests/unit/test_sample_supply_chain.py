"""The bundled sample supply-chain files (qlrf_pipelines/sample_data/supply_chain/): each parses,
names its golden image by the AMI id discovery records, carries the scenario's values, and
`qlrf import --sample` lands them once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from qlrf_pipelines.sample.catalog import aws_ami_id
from qlrf_pipelines.sample.common import catalog_version
from qlrf_pipelines.sample.gen_supply_chain import BUNDLED_FOLDER, aws_region, sample_files, write_supply_chain
from qlrf_pipelines.supply_chain.importer import parse_file

ROOT = Path(__file__).resolve().parents[2]


def _ami(family: str, version: str) -> str:
    return aws_ami_id("us-east-1", catalog_version(family, version))


def _parsed(name: str):
    return parse_file(BUNDLED_FOLDER / name)


def _names(result) -> set[str]:
    return {result.image_ref, *result.image_aliases}


def test_the_files_name_amis_of_the_production_aws_site():
    assert aws_region() == "us-east-1"  # the bundled aws-prod-use1 site
    assert _ami("ubuntu-22.04-base", "1.1.0") == "ami-0c7c8ff9dac542676"


def test_bundled_files_are_what_the_generator_writes(tmp_path):
    written = {path.name: path.read_bytes() for path in write_supply_chain(tmp_path)}
    bundled = {path.name: path.read_bytes() for path in BUNDLED_FOLDER.iterdir()}
    assert bundled == written, "regenerate with: python -m qlrf_pipelines.sample.estate"
    assert len(written) == 6


# (file, format, golden image, image_ref is the AMI id itself)
EXPECTED = [
    ("trivy-ubuntu-22.04-base-1.1.0.json", "trivy", ("ubuntu-22.04-base", "1.1.0"), True),
    ("cyclonedx-ubuntu-22.04-base-1.2.0.json", "cyclonedx", ("ubuntu-22.04-base", "1.2.0"), True),
    ("spdx-ubuntu-22.04-base-1.3.0.spdx.json", "spdx", ("ubuntu-22.04-base", "1.3.0"), True),
    ("grype-rhel-9-base-9.4.0.json", "grype", ("rhel-9-base", "9.4.0"), True),
    ("slsa-ubuntu-22.04-base-1.3.0.intoto.json", "slsa", ("ubuntu-22.04-base", "1.3.0"), False),
    ("slsa-windows-2022-base-2026.10.intoto.json", "slsa", ("windows-2022-base", "2026.10"), False),
]


@pytest.mark.parametrize("name, fmt, image, ref_is_ami", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_each_file_parses_and_names_its_ami(name, fmt, image, ref_is_ami):
    result = _parsed(name)
    assert result.format == fmt
    assert result.warnings == []
    ami = _ami(*image)
    if ref_is_ami:
        assert result.image_ref == ami
    else:  # provenance: the subject digest is the ref, the AMI id (subject name) an alias
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", result.image_ref)
        assert ami in result.image_aliases
    # no name of the file is the AMI of another golden image
    others = {_ami(*other) for _, _, other, _ in EXPECTED if other != image}
    assert not (_names(result) & others)


def test_only_the_scenario_images_have_sbom_and_provenance():
    covered = {(_parsed(name).format, image) for name, _, image, _ in EXPECTED}
    assert ("spdx", ("rhel-9-base", "9.4.0")) not in covered
    assert ("cyclonedx", ("rhel-9-base", "9.4.0")) not in covered
    assert ("slsa", ("rhel-9-base", "9.4.0")) not in covered
    assert not any(image == ("windows-2022-base", "2026.08") for _, image in covered)


def _vulns(result) -> dict[str, object]:
    return {v.vulnerability_id: v for v in result.vulnerabilities}


def test_trivy_ubuntu_1_1_0_findings():
    result = _parsed("trivy-ubuntu-22.04-base-1.1.0.json")
    doc = json.loads((BUNDLED_FOLDER / "trivy-ubuntu-22.04-base-1.1.0.json").read_text())
    assert doc["SchemaVersion"] == 2 and doc["CreatedAt"] == "2026-05-05T09:00:00Z"
    assert doc["ArtifactName"] == f"ami:{_ami('ubuntu-22.04-base', '1.1.0')}"
    vulns = _vulns(result)

    regresshion = vulns["CVE-2024-6387"]
    assert (regresshion.severity, regresshion.package_name) == ("high", "openssh-server")
    assert (regresshion.installed_version, regresshion.fixed_version) == ("1:8.9p1-3ubuntu0.6", "1:8.9p1-3ubuntu0.10")

    agent = vulns["CVE-2023-38408"]
    assert (agent.severity, agent.package_name) == ("critical", "openssh-client")
    assert (agent.installed_version, agent.fixed_version) == ("1:8.9p1-3ubuntu0.1", "1:8.9p1-3ubuntu0.3")

    others = [v for v in result.vulnerabilities if v.vulnerability_id not in ("CVE-2024-6387", "CVE-2023-38408")]
    assert 2 <= len(others) <= 3
    assert {v.severity for v in others} <= {"medium", "low"}
    assert sum(v.fixed_version is None for v in others) == 1
    assert all(v.source == "trivy" and v.source_version and v.purl for v in result.vulnerabilities)


def test_cyclonedx_ubuntu_1_2_0_still_has_the_vulnerable_openssh():
    result = _parsed("cyclonedx-ubuntu-22.04-base-1.2.0.json")
    assert result.format_version == "1.5"
    debs = {c.name: c for c in result.components if c.purl and c.purl.startswith("pkg:deb/ubuntu/")}
    assert 10 <= len(debs) <= 14
    assert all(c.licenses for c in debs.values())
    assert debs["openssh-server"].version == "1:8.9p1-3ubuntu0.6"
    assert debs["openssh-server"].purl.startswith("pkg:deb/ubuntu/openssh-server@")
    assert debs["openssl"].version == "3.0.2-0ubuntu1.15"


def test_spdx_ubuntu_1_3_0_has_the_fixed_openssh():
    result = _parsed("spdx-ubuntu-22.04-base-1.3.0.spdx.json")
    assert result.format_version == "2.3"
    debs = {c.name: c for c in result.components if c.purl and c.purl.startswith("pkg:deb/ubuntu/")}
    before = {c.name for c in _parsed("cyclonedx-ubuntu-22.04-base-1.2.0.json").components}
    assert set(debs) <= before and len(debs) >= 10
    assert debs["openssh-server"].version == "1:8.9p1-3ubuntu0.10"
    assert debs["openssl"].version == "3.0.2-0ubuntu1.15"


def test_grype_rhel_9_4_0_has_a_critical_fixable_glibc_finding():
    result = _parsed("grype-rhel-9-base-9.4.0.json")
    assert len(result.vulnerabilities) == 3
    glibc = _vulns(result)["CVE-2024-2961"]
    assert (glibc.severity, glibc.package_name) == ("critical", "glibc")
    assert (glibc.installed_version, glibc.fixed_version) == ("2.34-100.el9", "2.34-100.el9_4.2")
    assert [v.severity for v in result.vulnerabilities].count("critical") == 1


@pytest.mark.parametrize(
    "name, image",
    [
        ("slsa-ubuntu-22.04-base-1.3.0.intoto.json", ("ubuntu-22.04-base", "1.3.0")),
        ("slsa-windows-2022-base-2026.10.intoto.json", ("windows-2022-base", "2026.10")),
    ],
)
def test_slsa_provenance(name, image):
    (build,) = _parsed(name).builds
    assert build.builder_id.startswith("https://github.com/actions/runner")
    assert build.build_type == "https://actions.github.io/buildtypes/workflow/v1"
    assert build.source_repo == "https://github.com/example-org/golden-images"
    assert re.fullmatch(r"[0-9a-f]{40}", build.source_commit or "")
    assert build.subject_name == _ami(*image)
    assert build.started_on < build.finished_on


def test_sample_files_are_deterministic():
    assert json.dumps(sample_files(), sort_keys=True) == json.dumps(sample_files(), sort_keys=True)


def test_package_data_ships_the_folder():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "sample_data/**/*" in package_data["qlrf_pipelines"]


def _qlrf(home: Path, *args: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).parent / "qlrf"
    assert executable.exists(), f"{executable}: the qlrf console script is not installed (pip install -e .)"
    env = dict(os.environ, QLRF_HOME=str(home))
    return subprocess.run([str(executable), "import", *args], capture_output=True, text=True, env=env, timeout=300)


def test_qlrf_import_sample_imports_once(tmp_path):
    first = _qlrf(tmp_path, "--sample")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert sum(line.startswith("imported ") for line in lines) == 6, first.stdout

    second = _qlrf(tmp_path, "--sample")
    assert second.returncode == 0, second.stderr
    assert sum(line.startswith("unchanged ") for line in second.stdout.splitlines()) == 6, second.stdout

    both = _qlrf(tmp_path, "--sample", str(BUNDLED_FOLDER / EXPECTED[0][0]))
    assert both.returncode == 2 and "not both" in both.stderr
    neither = _qlrf(tmp_path)
    assert neither.returncode == 2
