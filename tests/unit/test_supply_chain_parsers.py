"""Supply-chain file import: Trivy/Grype reports, SPDX/CycloneDX SBOMs, SLSA v1 provenance."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path

import pytest

from qlrf_pipelines.supply_chain import (
    ImportRejected,
    detect_format,
    import_files,
    parse_file,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "supply_chain"
WEB_BASE = "sha256:9c4e1a7b2d3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
API_BASE = "sha256:4f2a6b8c0d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture(name))


def dumps(doc) -> bytes:
    return json.dumps(doc).encode()


def rejected(data: bytes, **kw) -> str:
    with pytest.raises(ImportRejected) as info:
        parse_file(data, filename="upload.json", **kw)
    assert str(info.value).startswith("upload.json: ")
    return info.value.reason


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("trivy-image.json", ("trivy", "2")),
        ("grype-image.json", ("grype", "0.77.4")),
        ("spdx-2.3.json", ("spdx", "2.3")),
        ("cyclonedx-1.5.json", ("cyclonedx", "1.5")),
        ("cyclonedx-1.6.json", ("cyclonedx", "1.6")),
        ("slsa-provenance.intoto.json", ("slsa", "1")),
        ("slsa-provenance.dsse.json", ("slsa", "1")),
    ],
)
def test_detects_every_format_by_content(name, expected):
    assert detect_format(fixture(name), name) == expected
    # the extension plays no part
    assert detect_format(fixture(name), "report.txt") == expected


def test_detects_cyclonedx_1_4_and_spdx_2_2():
    bom = fixture_json("cyclonedx-1.5.json")
    bom["specVersion"] = "1.4"
    bom["$schema"] = "http://cyclonedx.org/schema/bom-1.4.schema.json"
    bom["metadata"]["tools"] = [{"vendor": "anchore", "name": "syft", "version": "0.98.0"}]
    assert detect_format(dumps(bom)) == ("cyclonedx", "1.4")
    r = parse_file(dumps(bom))
    assert r.format_version == "1.4" and r.image_ref == WEB_BASE and len(r.components) == 4

    doc = fixture_json("spdx-2.3.json")
    doc["spdxVersion"] = "SPDX-2.2"
    for p in doc["packages"]:  # primaryPackagePurpose does not exist in 2.2
        p.pop("primaryPackagePurpose", None)
    assert detect_format(dumps(doc)) == ("spdx", "2.2")
    r = parse_file(dumps(doc))
    # no CONTAINER purpose: the documentDescribes root, whose versionInfo is the digest
    assert r.image_ref == WEB_BASE
    assert {c.name for c in r.components} == {"libc6", "zlib1g", "braces", "openssl"}


# ---------------------------------------------------------------- Trivy


def test_trivy_report():
    r = parse_file(FIXTURES / "trivy-image.json")
    assert (r.format, r.format_version) == ("trivy", "2")
    assert r.image_ref == WEB_BASE  # manifest digest from Metadata.RepoDigests
    assert "registry.example.com/golden/web-base:2024.05.1" in r.image_aliases
    assert "sha256:5b0f6f4d7c1a2e9f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9011" in r.image_aliases
    assert r.filename.endswith("trivy-image.json")
    v = {x.vulnerability_id: x for x in r.vulnerabilities}
    assert list(v) == ["CVE-2024-2961", "CVE-2023-45853", "CVE-2011-3374", "GHSA-grv7-fg5c-xmjg", "CVE-2024-4068"]
    glibc = v["CVE-2024-2961"]
    assert (glibc.severity, glibc.package_name, glibc.installed_version, glibc.fixed_version) == (
        "high", "libc6", "2.36-9+deb12u4", "2.36-9+deb12u7")
    assert glibc.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12.5"
    assert glibc.title.startswith("glibc: Out of bounds write")
    assert glibc.source == "trivy" and glibc.package_type == "debian"
    assert glibc.target == "registry.example.com/golden/web-base:2024.05.1 (debian 12.5)"
    assert v["CVE-2023-45853"].severity == "critical"
    assert v["CVE-2023-45853"].fixed_version is None  # no fix
    assert v["CVE-2023-45853"].fix_state == "will_not_fix"
    assert v["CVE-2011-3374"].severity == "low"
    assert v["GHSA-grv7-fg5c-xmjg"].severity == "medium" and v["GHSA-grv7-fg5c-xmjg"].target == "app/package-lock.json"
    assert v["CVE-2024-4068"].severity == "unknown" and v["CVE-2024-4068"].fixed_version == "4.0.8, 5.0.0"
    assert all(x.image_ref == WEB_BASE for x in r.vulnerabilities)
    assert r.components == [] and r.builds == [] and r.warnings == []


def test_trivy_image_falls_back_to_image_id_then_artifact_name():
    doc = fixture_json("trivy-image.json")
    del doc["Metadata"]["RepoDigests"]
    assert parse_file(dumps(doc)).image_ref == "sha256:5b0f6f4d7c1a2e9f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9011"
    del doc["Metadata"]["ImageID"]
    assert parse_file(dumps(doc)).image_ref == "registry.example.com/golden/web-base:2024.05.1"


def test_trivy_vm_scan_uses_provider_image_id():
    doc = fixture_json("trivy-image.json")
    doc.update(ArtifactName="ami:ami-0a1b2c3d4e5f67890", ArtifactType="vm", Metadata={})
    assert parse_file(dumps(doc)).image_ref == "ami-0a1b2c3d4e5f67890"


# ---------------------------------------------------------------- Grype


def test_grype_report():
    r = parse_file(FIXTURES / "grype-image.json")
    assert (r.format, r.format_version) == ("grype", "0.77.4")
    assert r.image_ref == WEB_BASE  # source.target.manifestDigest
    assert "registry.example.com/golden/web-base:2024.05.1" in r.image_aliases
    v = {x.vulnerability_id: x for x in r.vulnerabilities}
    assert set(v) == {"CVE-2024-2961", "CVE-2023-45853", "GHSA-grv7-fg5c-xmjg", "CVE-2022-3219"}
    glibc = v["CVE-2024-2961"]
    assert (glibc.severity, glibc.fixed_version, glibc.fix_state) == ("high", "2.36-9+deb12u7", "fixed")
    assert glibc.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    assert (glibc.package_type, glibc.installed_version, glibc.target) == ("deb", "2.36-9+deb12u4", "/var/lib/dpkg/status")
    assert glibc.source == "grype" and glibc.source_version == "0.77.4"
    assert v["CVE-2022-3219"].severity == "negligible"
    assert v["CVE-2022-3219"].fixed_version is None and v["CVE-2022-3219"].fix_state == "not-fixed"
    assert v["CVE-2023-45853"].fixed_version is None and v["CVE-2023-45853"].fix_state == "wont-fix"
    assert v["GHSA-grv7-fg5c-xmjg"].fixed_version == "3.0.3"


def test_grype_image_falls_back_to_image_id_then_user_input():
    doc = fixture_json("grype-image.json")
    del doc["source"]["target"]["manifestDigest"]
    del doc["source"]["target"]["repoDigests"]
    assert parse_file(dumps(doc)).image_ref.startswith("sha256:5b0f6f4d")
    del doc["source"]["target"]["imageID"]
    assert parse_file(dumps(doc)).image_ref == "registry.example.com/golden/web-base:2024.05.1"


# ---------------------------------------------------------------- SPDX


def test_spdx_sbom():
    r = parse_file(FIXTURES / "spdx-2.3.json")
    assert (r.format, r.format_version) == ("spdx", "2.3")
    assert r.image_ref == WEB_BASE  # the CONTAINER package's SHA256 checksum
    c = {x.name: x for x in r.components}
    assert set(c) == {"libc6", "zlib1g", "braces", "openssl"}  # the image package itself is not a component
    assert c["libc6"].version == "2.36-9+deb12u4"
    assert c["libc6"].purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    assert c["libc6"].licenses == ["GPL-2.0-only AND LGPL-2.1-only"]
    assert c["libc6"].supplier == "GNU Libc Maintainers"
    assert c["libc6"].component_type == "library"
    assert c["braces"].licenses == ["MIT"] and c["braces"].purl == "pkg:npm/braces@3.0.2"
    assert c["openssl"].purl is None and c["openssl"].licenses == ["Apache-2.0"] and c["openssl"].supplier is None
    assert all(x.source == "spdx" and x.document_name == "registry.example.com/golden/web-base-2024.05.1"
               for x in r.components)


def test_spdx_invalid_document_rejected_with_validation_messages():
    doc = fixture_json("spdx-2.3.json")
    doc["relationships"].append({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                                 "relatedSpdxElement": "SPDXRef-Package-does-not-exist"})
    reason = rejected(dumps(doc))
    assert "SPDX document fails validation" in reason and "SPDXRef-Package-does-not-exist" in reason

    doc = fixture_json("spdx-2.3.json")
    del doc["documentNamespace"]
    del doc["packages"][1]["name"]
    reason = rejected(dumps(doc))
    assert reason.startswith("invalid SPDX document:") and "name" in reason


# ---------------------------------------------------------------- CycloneDX


def test_cyclonedx_1_5_sbom():
    r = parse_file(FIXTURES / "cyclonedx-1.5.json")
    assert (r.format, r.format_version) == ("cyclonedx", "1.5")
    assert r.image_ref == WEB_BASE  # metadata.component version is the digest
    c = {x.name: x for x in r.components}
    assert set(c) == {"libc6", "braces", "openssl", "debian"}
    assert c["libc6"].licenses == ["GPL-2.0-only", "LGPL-2.1-only"]
    assert c["libc6"].purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    assert c["libc6"].supplier == "GNU Libc Maintainers <debian-glibc@lists.debian.org>"  # publisher
    assert c["braces"].supplier == "micromatch"
    assert c["openssl"].licenses == ["Apache-2.0 OR OpenSSL"]
    assert c["debian"].component_type == "operating-system" and c["debian"].purl is None
    assert all(x.source == "cyclonedx" and x.image_ref == WEB_BASE for x in r.components)


def test_cyclonedx_1_6_sbom():
    r = parse_file(FIXTURES / "cyclonedx-1.6.json")
    assert (r.format, r.format_version) == ("cyclonedx", "1.6")
    assert r.image_ref == API_BASE  # the digest in the pkg:oci purl
    assert "sha256:aa11bb22cc33dd44ee55ff66aa77bb88cc99dd00ee11ff22aa33bb44cc55dd66" in r.image_aliases
    c = {x.name: x for x in r.components}
    assert set(c) == {"musl", "golang.org/x/net", "requests"}
    assert (c["musl"].version, c["musl"].purl, c["musl"].licenses) == (
        "1.2.5-r0", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=3.20.0", ["MIT"])
    assert c["golang.org/x/net"].licenses == ["BSD-3-Clause-Google"]
    assert c["requests"].licenses == ["Apache-2.0"] and c["requests"].purl == "pkg:pypi/requests@2.31.0"


def test_cyclonedx_schema_violation_rejected():
    bom = fixture_json("cyclonedx-1.5.json")
    bom["components"][0]["type"] = "spaceship"
    reason = rejected(dumps(bom))
    assert "CycloneDX 1.5 document fails schema validation" in reason and "spaceship" in reason


# ---------------------------------------------------------------- SLSA


@pytest.mark.parametrize("name", ["slsa-provenance.intoto.json", "slsa-provenance.dsse.json"])
def test_slsa_provenance(name):
    r = parse_file(FIXTURES / name)
    assert (r.format, r.format_version) == ("slsa", "1")
    assert r.image_ref == WEB_BASE
    (b,) = r.builds
    assert b.image_ref == WEB_BASE and b.subject_digest == WEB_BASE
    assert b.subject_name == "registry.example.com/golden/web-base"
    assert b.builder_id == "https://github.com/actions/runner/github-hosted"
    assert b.build_type == "https://actions.github.io/buildtypes/workflow/v1"
    assert b.source_repo == "https://github.com/example-org/golden-images"
    assert b.source_ref == "refs/heads/main"
    assert b.source_commit == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    assert b.materials == [
        {"uri": "git+https://github.com/example-org/golden-images@refs/heads/main",
         "digest": {"gitCommit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}},
        {"uri": "pkg:docker/debian@12.5-slim",
         "digest": {"sha256": "2b8a4c6e1d3f5a7b9c0e2d4f6a8b1c3e5d7f9a0b2c4e6d8f1a3b5c7e9d0f2a4b"}},
    ]
    assert b.invocation_id.endswith("/actions/runs/9081726354/attempts/1")
    assert (b.started_on, b.finished_on) == ("2024-05-14T08:51:07Z", "2024-05-14T09:04:33Z")
    assert b.predicate_type == "https://slsa.dev/provenance/v1"
    if name.endswith("dsse.json"):
        assert r.envelope == "dsse"
        assert any("signature was NOT verified" in w for w in r.warnings)
    else:
        assert r.envelope is None and r.warnings == []


def test_slsa_generic_builder_source_from_external_parameters():
    doc = fixture_json("slsa-provenance.intoto.json")
    bd = doc["predicate"]["buildDefinition"]
    bd["buildType"] = "https://example.com/packer-build/v1"
    bd["externalParameters"] = {"source": "git+https://git.example.com/infra/images.git@refs/tags/v2024.05"}
    bd["resolvedDependencies"] = [
        {"uri": "https://releases.hashicorp.com/packer/1.10.3", "digest": {"sha256": "ab" * 32}},
        {"uri": "git+https://git.example.com/infra/images.git", "digest": {"sha1": "0123456789abcdef0123456789abcdef01234567"}},
    ]
    doc["predicate"]["runDetails"] = {"builder": {"id": "https://ci.example.com/packer-runner"}}
    (b,) = parse_file(dumps(doc)).builds
    assert (b.source_repo, b.source_ref, b.source_commit) == (
        "https://git.example.com/infra/images.git", "refs/tags/v2024.05", "0123456789abcdef0123456789abcdef01234567")
    assert b.started_on is None and b.invocation_id is None and len(b.materials) == 2


def test_slsa_missing_builder_rejected():
    doc = fixture_json("slsa-provenance.intoto.json")
    del doc["predicate"]["runDetails"]["builder"]
    assert "builder.id" in rejected(dumps(doc))


# ---------------------------------------------------------------- image reference


def test_explicit_image_ref_wins():
    r = parse_file(FIXTURES / "trivy-image.json", image_ref="ami-0fedcba9876543210")
    assert r.image_ref == "ami-0fedcba9876543210"
    assert WEB_BASE in r.image_aliases
    assert {v.image_ref for v in r.vulnerabilities} == {"ami-0fedcba9876543210"}
    r = parse_file(FIXTURES / "slsa-provenance.intoto.json", image_ref="SHA256:" + "AB" * 32)
    assert r.image_ref == "sha256:" + "ab" * 32
    assert r.builds[0].image_ref == "sha256:" + "ab" * 32 and r.builds[0].subject_digest == WEB_BASE


def _no_image_docs():
    trivy = fixture_json("trivy-image.json")
    trivy.update(ArtifactName=".", ArtifactType="filesystem", Metadata={"OS": {"Family": "debian"}})
    grype = fixture_json("grype-image.json")
    grype["source"] = {"type": "directory", "target": "/src/app"}
    spdx = fixture_json("spdx-2.3.json")
    root = spdx["packages"][0]
    root.update(primaryPackagePurpose="APPLICATION", versionInfo="1.0.0", checksums=[], externalRefs=[])
    cdx = fixture_json("cyclonedx-1.5.json")
    del cdx["metadata"]["component"]
    slsa = fixture_json("slsa-provenance.intoto.json")
    slsa["subject"] = [{"name": "web-base.tar", "digest": {"sha512": "00" * 64}}]
    return {"trivy": trivy, "grype": grype, "spdx": spdx, "cyclonedx": cdx, "slsa": slsa}


@pytest.mark.parametrize("fmt", ["trivy", "grype", "spdx", "cyclonedx", "slsa"])
def test_file_without_image_reference_rejected_unless_image_given(fmt):
    data = dumps(_no_image_docs()[fmt])
    assert rejected(data) == "cannot tell which image this file belongs to; pass --image"
    r = parse_file(data, image_ref="golden/web-base:2024.05.1")
    assert r.format == fmt and r.image_ref == "golden/web-base:2024.05.1"


# ---------------------------------------------------------------- rejections


def test_malformed_json_rejected():
    reason = rejected(b'{"SchemaVersion": 2, "ArtifactName": "x", "Results": [}')
    assert reason.startswith("file is not valid JSON") and "line 1" in reason


def test_truncated_file_rejected():
    data = fixture("trivy-image.json")
    reason = rejected(data[: len(data) // 2])
    assert reason.startswith("file is truncated")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "file is empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'[{"VulnerabilityID": "CVE-2024-1"}]', "top-level JSON is list"),
        (b'{"name": "some-app", "version": "1.2.3", "dependencies": {"left-pad": "^1.3.0"}}', "unknown format"),
        (b'{"matches": [], "source": {}, "descriptor": {"name": "not-grype"}}', "unknown format"),
    ],
)
def test_wrong_or_unknown_format_rejected(data, needle):
    assert needle in rejected(data)


def test_wrong_versions_rejected():
    spdx = fixture_json("spdx-2.3.json")
    spdx["spdxVersion"] = "SPDX-2.1"
    assert rejected(dumps(spdx)) == "SPDX version 'SPDX-2.1' is not supported (accepted: SPDX-2.2, SPDX-2.3)"

    cdx = fixture_json("cyclonedx-1.5.json")
    cdx["specVersion"] = "1.2"
    assert rejected(dumps(cdx)) == "CycloneDX specVersion '1.2' is not supported (accepted: 1.4, 1.5, 1.6)"

    old = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "web-base", "digest": {"sha256": WEB_BASE[7:]}}],
        "predicate": {"builder": {"id": "https://github.com/slsa-framework/slsa-github-generator"},
                      "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
                      "materials": []},
    }
    reason = rejected(dumps(old))
    assert "in-toto statement type 'https://in-toto.io/Statement/v0.1'" in reason
    assert "https://slsa.dev/provenance/v0.2" in reason

    v1_other = fixture_json("slsa-provenance.intoto.json")
    v1_other["predicateType"] = "https://spdx.dev/Document"
    assert "predicateType 'https://spdx.dev/Document'" in rejected(dumps(v1_other))

    trivy = fixture_json("trivy-image.json")
    trivy["SchemaVersion"] = 1
    assert "Trivy report SchemaVersion 1 is not supported" in rejected(dumps(trivy))

    dsse = fixture_json("slsa-provenance.dsse.json")
    dsse["payloadType"] = "application/vnd.cncf.notary.payload.v1+json"
    assert "payloadType" in rejected(dumps(dsse))
    dsse = fixture_json("slsa-provenance.dsse.json")
    dsse["payload"] = "%%% not base64 %%%"
    assert "not valid base64" in rejected(dumps(dsse))
    dsse["payload"] = base64.b64encode(fixture("trivy-image.json")).decode()
    assert "not an in-toto statement" in rejected(dumps(dsse))


def test_structurally_wrong_report_rejected_not_crashed():
    trivy = fixture_json("trivy-image.json")
    trivy["Results"][0]["Vulnerabilities"] = {"CVE-2024-2961": "HIGH"}
    assert "Results[0].Vulnerabilities is dict, expected a list" in rejected(dumps(trivy))
    grype = fixture_json("grype-image.json")
    del grype["matches"][1]["vulnerability"]["id"]
    assert "matches[1] has no vulnerability.id" in rejected(dumps(grype))


def test_oversized_file_rejected(tmp_path):
    data = fixture("trivy-image.json")
    assert "over the 1024-byte limit" in rejected(data, max_bytes=1024)
    path = tmp_path / "big.json"
    path.write_bytes(data)
    with pytest.raises(ImportRejected) as info:
        parse_file(path, max_bytes=1024)
    assert info.value.filename == str(path) and "over the 1024-byte limit" in info.value.reason
    assert parse_file(path, max_bytes=len(data)).format == "trivy"  # exactly at the cap is fine


def test_huge_single_field_truncated_with_warning():
    trivy = fixture_json("trivy-image.json")
    trivy["Results"][0]["Vulnerabilities"][0]["Title"] = "A" * 1_000_000
    r = parse_file(dumps(trivy), max_field_chars=2048)
    title = r.vulnerabilities[0].title
    assert title.startswith("A" * 2048) and len(title) < 2100 and title.endswith("[truncated]")
    assert r.warnings == ["vulnerability CVE-2024-2961: title longer than 2048 characters, truncated"]
    assert len(r.vulnerabilities) == 5

    cdx = fixture_json("cyclonedx-1.5.json")
    cdx["components"][1]["licenses"] = [{"license": {"name": "L" * 10_000}}]
    r = parse_file(dumps(cdx), max_field_chars=4096)
    braces = next(c for c in r.components if c.name == "braces")
    assert len(braces.licenses[0]) < 4200 and any("braces: licenses" in w for w in r.warnings)


# ---------------------------------------------------------------- content hash / batches


def test_content_hash_is_stable_and_content_based(tmp_path):
    data = fixture("grype-image.json")
    a, b = parse_file(data), parse_file(FIXTURES / "grype-image.json")
    assert a.content_sha256 == b.content_sha256 == hashlib.sha256(data).hexdigest()
    assert a.vulnerabilities == b.vulnerabilities
    assert parse_file(data + b"\n").content_sha256 != a.content_sha256


def test_parse_does_not_mutate_or_depend_on_call_order():
    doc = fixture_json("spdx-2.3.json")
    before = copy.deepcopy(doc)
    first = parse_file(dumps(doc))
    assert doc == before
    assert parse_file(dumps(doc)).components == first.components


def test_batch_rejected_file_never_stops_others_and_reimport_is_noop(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"spdxVersion": "SPDX-2.1"}')
    copy_of_trivy = tmp_path / "trivy-again.json"
    copy_of_trivy.write_bytes(fixture("trivy-image.json"))
    paths = [FIXTURES / "trivy-image.json", bad, FIXTURES / "spdx-2.3.json", copy_of_trivy,
             tmp_path / "missing.json"]
    out = import_files(paths)
    assert [o.status for o in out] == ["imported", "rejected", "imported", "duplicate", "rejected"]
    assert "SPDX-2.1" in out[1].reason and "cannot read file" in out[4].reason
    done = {o.content_sha256 for o in out if o.status == "imported"}
    again = import_files([FIXTURES / "trivy-image.json", FIXTURES / "spdx-2.3.json"], already_imported=done)
    assert [o.status for o in again] == ["duplicate", "duplicate"]
