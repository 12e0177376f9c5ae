"""GCP normalizer on hand-written Compute API responses, and the sample GCP payload generator."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest

from qlrf_pipelines.connectors import gcp, provider_module
from qlrf_pipelines.connectors.base import PayloadError
from qlrf_pipelines.models import Tag
from qlrf_pipelines.sample import catalog
from qlrf_pipelines.sample.gen_gcp import generate_payload
from qlrf_pipelines.sites import Site
from tests.unit.connector_helpers import (
    ANCHORS,
    by_name,
    check_bundled_sample_drift,
    generated,
    generated_json,
    images_by_id,
    payload_fixture,
    production_site,
)

NOW = datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)
SITE = production_site(
    id="gcp-test-euw1", provider="gcp", name="GCP test", location="europe-west1", account="qlrf-test"
)
IMAGES = "projects/qlrf-test/global/images"

payload = payload_fixture("gcp/project.json")


def test_registry_finds_the_module():
    assert provider_module("gcp") is gcp
    assert gcp.PROVIDER == "gcp"


def test_resource_path():
    assert gcp.resource_path("https://www.googleapis.com/compute/v1/projects/p/global/images/x") == "projects/p/global/images/x"
    assert gcp.resource_path("https://compute.googleapis.com/compute/beta/projects/p/global/images/x") == "projects/p/global/images/x"
    assert gcp.resource_path("projects/p/global/images/x") == "projects/p/global/images/x"


def test_running_instance(payload):
    vm = by_name(gcp.normalize(payload, SITE, NOW).assets)["web-prod-0042"]
    assert vm.asset_id == "gcp:gcp-test-euw1:4817263547162534817"
    assert vm.native_id == "4817263547162534817"
    assert vm.provider == "gcp" and vm.kind == "vm" and vm.site_id == "gcp-test-euw1"
    assert vm.state == "running"
    assert vm.image_ref == f"{IMAGES}/golden-ubuntu-22-04-base-1-3-0"  # the boot disk's source image
    assert vm.platform == "linux"
    assert vm.os == "ubuntu-2204-lts"
    assert vm.instance_type == "n2-standard-4"
    assert vm.cpu_count == 4
    assert vm.region == "europe-west1"
    assert vm.zone == "europe-west1-b"
    assert vm.network == "vpc-prod"
    assert vm.private_ip == "10.132.0.5"
    assert vm.public_ip == "34.76.1.2"
    assert vm.launched_at == datetime(2026, 10, 5, 7, 12, 33, 123000, tzinfo=timezone.utc)
    assert vm.launched_at.utcoffset().total_seconds() == 0  # Pacific time converted to UTC
    assert vm.tags == [Tag("env", "prod"), Tag("team", "frontend")]
    attributes = json.loads(vm.attributes_json)
    assert attributes["networkTags"] == ["http-server", "web"]
    assert attributes["subnetwork"] == "snet-web"
    assert attributes["bootDisk"] == "web-prod-0042"
    assert attributes["status"] == "RUNNING"


def test_terminated_means_stopped(payload):
    vm = by_name(gcp.normalize(payload, SITE, NOW).assets)["mssql-prod-0003"]
    assert vm.state == "stopped"
    assert vm.image_ref == "projects/windows-cloud/global/images/windows-server-2022-dc-v20261008"
    assert vm.platform == "windows"  # the WINDOWS guest OS feature
    assert vm.instance_type == "n2-custom-4-16384"
    assert (vm.cpu_count, vm.memory_mb) == (4, 16384)
    assert vm.public_ip is None
    assert vm.tags == []


def test_disk_created_from_a_family_resolves_through_the_image_id(payload):
    vm = by_name(gcp.normalize(payload, SITE, NOW).assets)["batch-prod-0100"]
    assert vm.image_ref == f"{IMAGES}/golden-rhel-9-base-9-2-1"
    assert vm.state == "pending"  # STAGING
    assert vm.zone == "europe-west1-d" and vm.region == "europe-west1"
    assert vm.cpu_count == 2  # shared-core e2-medium
    assert vm.network is None and vm.private_ip is None
    assert vm.platform is None  # no licenses or guest OS features anywhere
    assert vm.tags == [Tag("env", "prod"), Tag("qlrf-note", "ephemeral"), Tag("team", "data")]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("PROVISIONING", "pending"),
        ("STAGING", "pending"),
        ("RUNNING", "running"),
        ("STOPPING", "stopped"),
        ("STOPPED", "stopped"),
        ("SUSPENDING", "stopped"),
        ("SUSPENDED", "stopped"),
        ("TERMINATED", "stopped"),
        ("REPAIRING", "degraded"),
        ("SOMETHING_NEW", "unknown"),
    ],
)
def test_status_mapping(payload, status, expected):
    payload["instances.aggregatedList"]["items"]["zones/europe-west1-b"]["instances"][0]["status"] = status
    assert by_name(gcp.normalize(payload, SITE, NOW).assets)["web-prod-0042"].state == expected


def test_images(payload):
    images = images_by_id(gcp.normalize(payload, SITE, NOW))
    assert len(images) == 4

    golden = images[f"{IMAGES}/golden-ubuntu-22-04-base-1-3-0"]
    assert golden.name == "golden-ubuntu-22-04-base-1-3-0"
    assert golden.family == "ubuntu-22.04-base"  # the label, read back with '_' as '.'
    assert golden.version == "1.3.0"
    assert golden.version_key == "0000000001.0000000003.0000000000"
    assert golden.status == "production"
    assert golden.region is None  # images are global
    assert golden.platform == "linux" and golden.os == "ubuntu-2204-lts"
    assert golden.created_at == datetime(2026, 9, 7, 10, 0, tzinfo=timezone.utc)
    assert Tag("qlrf-version", "1_3_0") in golden.tags

    deprecated = images[f"{IMAGES}/golden-ubuntu-22-04-base-1-0-0"]
    assert (deprecated.version, deprecated.status) == ("1.0.0", "deprecated")  # deprecated.state wins over the label

    obsolete = images[f"{IMAGES}/golden-rhel-9-base-9-2-1"]
    assert obsolete.family == "rhel-9-base"  # no family label: the family field
    assert obsolete.version == "9.2.1"  # a label value with '.' is taken as is
    assert obsolete.status == "revoked"  # OBSOLETE

    legacy = images[f"{IMAGES}/legacy-erp-app-2025-03"]
    assert (legacy.family, legacy.version, legacy.status) == (None, None, None)
    assert legacy.platform == "windows"


@pytest.mark.parametrize(
    ("state", "label", "expected"),
    [
        ("ACTIVE", "production", "production"),
        ("DEPRECATED", "production", "deprecated"),
        ("DEPRECATED", "revoked", "revoked"),
        ("OBSOLETE", "deprecated", "revoked"),
        ("DELETED", "production", "revoked"),
        ("ACTIVE", "Testing", "testing"),
        ("ACTIVE", "gold", None),
    ],
)
def test_deprecation_state(payload, state, label, expected):
    image = payload["images.list"]["items"][0]
    image["deprecated"] = {"state": state}
    image["labels"]["qlrf-status"] = label
    found = gcp.normalize(payload, SITE, NOW)
    assert found.images[0].status == expected


def test_only_instances_are_required():
    found = gcp.normalize({"instances.aggregatedList": {"items": {}}}, SITE, NOW)
    assert found.assets == [] and found.images == []


def test_missing_instance_id_names_the_path(payload):
    del payload["instances.aggregatedList"]["items"]["zones/europe-west1-d"]["instances"][0]["id"]
    with pytest.raises(PayloadError) as error:
        gcp.normalize(payload, SITE, NOW)
    where = "instances.aggregatedList.items.zones/europe-west1-d.instances[0].id"
    assert error.value.where == where
    assert str(error.value) == f"{where}: required field is missing"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p.pop("instances.aggregatedList"), "instances.aggregatedList"),
        (
            lambda p: p["instances.aggregatedList"]["items"]["zones/europe-west1-b"].update(instances={"a": 1}),
            "instances.aggregatedList.items.zones/europe-west1-b.instances",
        ),
        (
            lambda p: p["instances.aggregatedList"]["items"]["zones/europe-west1-b"]["instances"][1].pop("status"),
            "instances.aggregatedList.items.zones/europe-west1-b.instances[1].status",
        ),
        (
            lambda p: p["instances.aggregatedList"]["items"]["zones/europe-west1-b"]["instances"][0].update(
                creationTimestamp="a while ago"
            ),
            "instances.aggregatedList.items.zones/europe-west1-b.instances[0].creationTimestamp",
        ),
        (
            lambda p: p["instances.aggregatedList"]["items"]["zones/europe-west1-b"]["instances"][0].update(labels=["env"]),
            "instances.aggregatedList.items.zones/europe-west1-b.instances[0].labels",
        ),
        (
            lambda p: p["disks.aggregatedList"]["items"]["zones/europe-west1-b"]["disks"][1].pop("selfLink"),
            "disks.aggregatedList.items.zones/europe-west1-b.disks[1].selfLink",
        ),
        (lambda p: p["images.list"]["items"][2].pop("selfLink"), "images.list.items[2].selfLink"),
        (lambda p: p["images.list"]["items"][1].update(deprecated="yes"), "images.list.items[1].deprecated"),
    ],
)
def test_malformed_payloads_name_the_path(payload, mutate, where):
    mutate(payload)
    with pytest.raises(PayloadError) as error:
        gcp.normalize(payload, SITE, NOW)
    assert error.value.where == where
    assert str(error.value).startswith(f"{where}: ")


# -- disk encryption ---------------------------------------------------------------------------


def _instances(payload, zone: str = "zones/europe-west1-b") -> list[dict]:
    return payload["instances.aggregatedList"]["items"][zone]["instances"]


def test_disk_encryption(payload):
    vms = by_name(gcp.normalize(payload, SITE, NOW).assets)
    assert vms["web-prod-0042"].disk_encryption == "platform_managed"  # Google-managed keys
    assert vms["mssql-prod-0003"].disk_encryption == "customer_managed"  # its disk names a Cloud KMS key
    assert vms["batch-prod-0100"].disk_encryption == "platform_managed"  # disk resource not listed yet


def test_a_customer_supplied_key_on_the_attached_disk_is_customer_managed(payload):
    for disk in _instances(payload)[0]["disks"]:
        disk["diskEncryptionKey"] = {"sha256": "MzYxNjRlZDFhNzE2ZTg4ZjQ4NjU2YTM1MmE0ZTg0ZDY="}
    assert by_name(gcp.normalize(payload, SITE, NOW).assets)["web-prod-0042"].disk_encryption == "customer_managed"


def test_the_weakest_disk_decides(payload):
    # The boot disk under a CMEK, the data disk under Google's keys.
    _instances(payload)[0]["disks"][1]["diskEncryptionKey"] = {
        "kmsKeyName": "projects/qlrf-test/locations/europe-west1/keyRings/kr-disks/cryptoKeys/disk-cmek/cryptoKeyVersions/1"
    }
    assert by_name(gcp.normalize(payload, SITE, NOW).assets)["web-prod-0042"].disk_encryption == "platform_managed"


def test_an_instance_without_disks_has_no_disk_encryption(payload):
    del _instances(payload, "zones/europe-west1-d")[0]["disks"]
    assert by_name(gcp.normalize(payload, SITE, NOW).assets)["batch-prod-0100"].disk_encryption is None


def test_normalize_does_not_mutate_the_payload(payload):
    before = copy.deepcopy(payload)
    gcp.normalize(payload, SITE, NOW)
    assert payload == before


# -- generated payloads -----------------------------------------------------------------------


def _generated(site: Site = SITE, n: int = 400, seed: int = 11):
    return generated(generate_payload, gcp.normalize, site, n, seed, NOW)


def test_generated_payload_is_json_and_deterministic():
    first = generated_json(generate_payload, SITE, 300, seed=5)
    assert first == generated_json(generate_payload, SITE, 300, seed=5)
    assert first != generated_json(generate_payload, SITE, 300, seed=6)
    assert set(json.loads(first)) == {"instances.aggregatedList", "disks.aggregatedList", "images.list"}


def test_generated_payload_starts_with_the_anchors():
    payload, found = _generated()
    first_scope = next(iter(payload["instances.aggregatedList"]["items"].values()))
    assert [i["name"] for i in first_scope["instances"][:4]] == ANCHORS
    assert [a.name for a in found.assets[:4]] == ANCHORS
    assert len(found.assets) == 400 and len({a.asset_id for a in found.assets}) == 400
    assert any("warning" in scoped for scoped in payload["instances.aggregatedList"]["items"].values())

    images = images_by_id(found)
    current, behind, revoked, unknown = found.assets[:4]
    assert all(a.state == "running" and a.region == "europe-west1" for a in found.assets[:4])
    production = catalog.current_production("ubuntu-22.04-base")
    assert current.image_ref == f"{IMAGES}/golden-{production.slug}"
    assert (images[current.image_ref].family, images[current.image_ref].version) == ("ubuntu-22.04-base", production.version)
    assert images[current.image_ref].status == "production"
    assert (images[behind.image_ref].version, images[behind.image_ref].status) == ("1.0.0", "deprecated")
    assert (images[revoked.image_ref].family, images[revoked.image_ref].version) == ("rhel-9-base", "9.2.1")
    assert images[revoked.image_ref].status == "revoked"
    assert unknown.image_ref == "projects/ubuntu-os-cloud/global/images/ubuntu-2204-jammy-v20261015"
    assert unknown.image_ref not in images


def test_generated_images_cover_the_catalog():
    payload, found = _generated(n=50)
    golden = {(i.family, i.version, i.status, i.created_at) for i in found.images if i.status}
    assert golden == {(v.family, v.version, v.status, v.created_at) for v in catalog.MACHINE_IMAGE_VERSIONS}
    for raw in payload["images.list"]["items"]:
        # GCP naming rules: family names and label values hold no '.'.
        assert "." not in raw.get("family", "")
        assert all("." not in value for value in raw.get("labels", {}).values())
    windows = next(i for i in found.images if i.version == "2026.10")
    assert windows.platform == "windows" and windows.provider_image_id == f"{IMAGES}/golden-windows-2022-base-2026-10"
    assert 1 <= sum(1 for i in found.images if i.family is None) <= 2


def test_generated_estate_mix_and_times():
    site = SITE.model_copy(update={"regions": ["europe-west4"]})
    _, found = _generated(site, n=3000, seed=2)
    images = images_by_id(found)
    states = [a.state for a in found.assets]
    assert 0.84 < states.count("running") / len(states) < 0.92
    assert 0.06 < states.count("stopped") / len(states) < 0.13
    statuses = [images[a.image_ref].status if a.image_ref in images else None for a in found.assets]
    assert 0.45 < statuses.count("production") / len(statuses) < 0.85
    assert statuses.count("deprecated") and statuses.count("revoked") and statuses.count("testing")
    assert {a.region for a in found.assets} == {"europe-west1", "europe-west4"}
    for asset in found.assets:
        assert asset.launched_at <= catalog.SAMPLE_CLOCK
        assert asset.zone.startswith(asset.region + "-")
        image = images.get(asset.image_ref)
        if image is not None:
            assert image.platform == asset.platform
            if image.created_at:
                assert asset.launched_at >= image.created_at
        assert asset.private_ip and asset.cpu_count and asset.network == "vpc-prod"
    assert any(a.public_ip for a in found.assets)
    assert any(a.platform == "windows" for a in found.assets)


def test_generated_estate_meets_the_desired_state_but_for_a_few():
    """Every disk encrypted (databases under the CMEK), lower-case governance labels; labels,
    machine types and exposure fail the bundled rules on about 1% of the assets per rule."""
    payload, found = _generated(n=3000, seed=2)
    database = {a.asset_id: a.name.split("-")[0] in ("db", "mssql") for a in found.assets}
    assert {a.disk_encryption for a in found.assets if database[a.asset_id]} == {"customer_managed"}
    assert {a.disk_encryption for a in found.assets if not database[a.asset_id]} == {"platform_managed"}
    labels = [dict((t.key, t.value) for t in a.tags) for a in found.assets]
    assert all(value == value.lower() for tags in labels for value in tags.values())
    assert 0.002 < sum(not {"owner", "cost-center"} <= set(tags) for tags in labels) / len(labels) < 0.03
    assert 0.002 < sum("backup-policy" not in tags for tags in labels) / len(labels) < 0.03
    assert 0.002 < sum(a.public_ip is not None for a in found.assets) / len(found.assets) < 0.03
    oversized = [a for a in found.assets if a.instance_type in ("m2-ultramem-416", "m1-ultramem-160")]
    assert 0.002 < len(oversized) / len(found.assets) < 0.03
    assert all(a.cpu_count in (160, 416) for a in oversized)


@pytest.mark.parametrize("site_id", ["gcp-prod-euw1"])
def test_bundled_sample_breaks_exactly_the_documented_rules(site_id):
    """The stored sample payload carries the deliberate drift of DELIBERATE_DRIFT, and no other
    (tests/fixtures/sample_drift_expectations.yaml, which the drift and compliance tests use)."""
    check_bundled_sample_drift(site_id, NOW)
