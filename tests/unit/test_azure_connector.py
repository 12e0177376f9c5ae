"""Azure normalizer on hand-written ARM list responses, and the sample Azure payload generator."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest

from qlrf_pipelines.connectors import azure, provider_module
from qlrf_pipelines.connectors.base import PayloadError
from qlrf_pipelines.models import Tag
from qlrf_pipelines.sample import catalog
from qlrf_pipelines.sample.gen_azure import generate_payload
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
SUB = "3f2a6b1c-7d4e-4c1a-9b8f-2e5d6c7a8b90"
SITE = production_site(id="azure-test-weu", provider="azure", name="Azure test", location="westeurope", account=SUB)
GALLERY = f"/subscriptions/{SUB}/resourcegroups/rg-golden-images/providers/microsoft.compute/galleries/qlrf_golden"

payload = payload_fixture("azure/subscription.json")


def test_registry_finds_the_module():
    assert provider_module("azure") is azure
    assert azure.PROVIDER == "azure"


def test_running_vm_on_a_gallery_version(payload):
    vm = by_name(azure.normalize(payload, SITE, NOW).assets)["web-prod-0042"]
    assert vm.asset_id == "azure:azure-test-weu:6f1c2d3e-4a5b-4c6d-8e7f-901234567890"
    assert vm.native_id == "6f1c2d3e-4a5b-4c6d-8e7f-901234567890"
    assert vm.provider == "azure" and vm.kind == "vm" and vm.site_id == "azure-test-weu"
    assert vm.state == "running"
    # The reference spells the resource group in upper case; image refs are lower case.
    assert vm.image_ref == f"{GALLERY}/images/ubuntu-22.04-base/versions/1.3.0"
    assert vm.platform == "linux"
    assert vm.os == "ubuntu 22.04"
    assert vm.instance_type == "Standard_D2s_v5"
    assert vm.region == "westeurope"
    assert vm.zone == "2"
    assert vm.network == "web-prod-0042-nic01"  # the primary NIC, not the first one
    assert vm.private_ip == "10.1.0.4"  # the primary IP configuration
    assert vm.public_ip == "20.61.1.2"
    assert vm.launched_at == datetime(2026, 10, 5, 7, 12, 33, 123456, tzinfo=timezone.utc)
    assert vm.tags == [Tag("env", "prod"), Tag("owner", "frontend@example.com"), Tag("team", "frontend")]
    attributes = json.loads(vm.attributes_json)
    assert attributes["resourceGroup"] == "rg-storefront-prod"
    assert attributes["computerName"] == "web-prod-0042"
    assert attributes["virtualNetwork"] == "vnet-prod-westeurope"
    assert attributes["subnet"] == "snet-web"


def test_deallocated_marketplace_vm(payload):
    vm = by_name(azure.normalize(payload, SITE, NOW).assets)["mssql-prod-0007"]
    assert vm.state == "stopped"
    assert vm.image_ref == "MicrosoftWindowsServer:WindowsServer:2022-datacenter-azure-edition:latest"
    assert vm.platform == "windows"
    assert vm.os == "Windows"  # no guest agent report: the OS disk type
    assert vm.region == "northeurope"
    assert vm.zone is None
    assert vm.network == "mssql-prod-0007-nic01"
    assert vm.private_ip is None  # NIC not in the networkInterfaces list
    assert vm.tags == []


def test_vm_deployed_from_a_gallery_definition_uses_the_exact_version(payload):
    vm = by_name(azure.normalize(payload, SITE, NOW).assets)["api-prod-0100"]
    assert vm.image_ref == f"{GALLERY}/images/ubuntu-22.04-base/versions/1.2.0"
    assert vm.state == "pending"  # no power state yet, provisioningState Creating
    assert vm.network is None and vm.launched_at is None
    assert vm.tags == [Tag("qlrf:note", "")]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("PowerState/running", "running"),
        ("PowerState/deallocated", "stopped"),
        ("PowerState/stopped", "stopped"),
        ("PowerState/starting", "pending"),
        ("PowerState/deallocating", "stopped"),
        ("PowerState/stopping", "stopped"),
        ("PowerState/unknown", "unknown"),
    ],
)
def test_power_states(payload, code, expected):
    payload["virtualMachines"]["value"][0]["properties"]["instanceView"]["statuses"][1]["code"] = code
    assert by_name(azure.normalize(payload, SITE, NOW).assets)["web-prod-0042"].state == expected


def test_gallery_versions_and_managed_images(payload):
    images = images_by_id(azure.normalize(payload, SITE, NOW))
    assert len(images) == 5

    golden = images[f"{GALLERY}/images/ubuntu-22.04-base/versions/1.3.0"]
    assert golden.name == "qlrf_golden/ubuntu-22.04-base/1.3.0"
    assert golden.family == "ubuntu-22.04-base"
    assert golden.version == "1.3.0"
    assert golden.version_key == "0000000001.0000000003.0000000000"
    assert golden.status == "production"
    assert golden.region == "westeurope"
    assert golden.platform == "linux"  # from the image definition
    assert golden.created_at == datetime(2026, 9, 7, 10, 0, tzinfo=timezone.utc)

    windows = images[f"{GALLERY}/images/windows-2022-base/versions/2026.10.0"]
    assert windows.family == "windows-2022-base"  # no family tag: the image definition name
    assert windows.version == "2026.10"  # the tag, not the Major.Minor.Patch version name
    assert windows.status == "revoked"
    assert windows.platform == "windows"

    untagged = images[f"{GALLERY}/images/ubuntu-22.04-base/versions/1.2.0"]
    assert (untagged.family, untagged.version, untagged.status) == ("ubuntu-22.04-base", "1.2.0", None)

    managed_id = f"/subscriptions/{SUB}/resourcegroups/rg-golden-images/providers/microsoft.compute/images/rhel-9-base-9.4.0"
    managed = images[managed_id]
    assert (managed.family, managed.version, managed.status) == ("rhel-9-base", "9.4.0", "production")
    assert managed.created_at == datetime(2026, 8, 15, 9, 0, tzinfo=timezone.utc)
    assert managed.name == "rhel-9-base-9.4.0"

    legacy = images[f"/subscriptions/{SUB}/resourcegroups/rg-legacy-images/providers/microsoft.compute/images/img-legacy-erp-2025-03"]
    assert (legacy.family, legacy.version, legacy.status, legacy.created_at) == (None, None, None, None)
    assert legacy.platform == "linux"
    assert legacy.tags == [Tag("team", "legacy-apps")]


def test_only_virtual_machines_are_required():
    found = azure.normalize({"virtualMachines": {"value": []}}, SITE, NOW)
    assert found.assets == [] and found.images == []


def test_missing_vm_id_names_the_path(payload):
    del payload["virtualMachines"]["value"][1]["properties"]["vmId"]
    with pytest.raises(PayloadError) as error:
        azure.normalize(payload, SITE, NOW)
    assert error.value.where == "virtualMachines.value[1].properties.vmId"
    assert str(error.value) == "virtualMachines.value[1].properties.vmId: required field is missing"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p.pop("virtualMachines"), "virtualMachines"),
        (lambda p: p["virtualMachines"].update(value={"vm": 1}), "virtualMachines.value"),
        (lambda p: p["virtualMachines"]["value"].append("vm-1"), "virtualMachines.value[3]"),
        (lambda p: p["virtualMachines"]["value"][0].update(tags=["env=prod"]), "virtualMachines.value[0].tags"),
        (
            lambda p: p["virtualMachines"]["value"][0]["properties"].update(timeCreated="yesterday"),
            "virtualMachines.value[0].properties.timeCreated",
        ),
        (
            lambda p: p["virtualMachines"]["value"][0]["properties"]["storageProfile"]["imageReference"].update(id=42),
            "virtualMachines.value[0].properties.storageProfile.imageReference.id",
        ),
        (
            lambda p: p["virtualMachines"]["value"][0]["properties"]["instanceView"]["statuses"][1].pop("code"),
            "virtualMachines.value[0].properties.instanceView.statuses[1].code",
        ),
        (lambda p: p["galleryImageVersions"]["value"][2].pop("id"), "galleryImageVersions.value[2].id"),
        (
            lambda p: p["galleryImageVersions"]["value"][0]["properties"]["publishingProfile"].update(publishedDate="soon"),
            "galleryImageVersions.value[0].properties.publishingProfile.publishedDate",
        ),
        (lambda p: p["images"]["value"][1]["tags"].update({"qlrf:created": "in 2026"}), "images.value[1].tags.qlrf:created"),
        (lambda p: p["networkInterfaces"]["value"][0].pop("id"), "networkInterfaces.value[0].id"),
    ],
)
def test_malformed_payloads_name_the_path(payload, mutate, where):
    mutate(payload)
    with pytest.raises(PayloadError) as error:
        azure.normalize(payload, SITE, NOW)
    assert error.value.where == where
    assert str(error.value).startswith(f"{where}: ")


# -- disk encryption ---------------------------------------------------------------------------


def _storage(payload, index: int = 0) -> dict:
    return payload["virtualMachines"]["value"][index]["properties"]["storageProfile"]


def test_disk_encryption(payload):
    vms = by_name(azure.normalize(payload, SITE, NOW).assets)
    # Managed disks under platform-managed keys; encryption at host does not change the keys.
    assert vms["web-prod-0042"].disk_encryption == "platform_managed"
    assert json.loads(vms["web-prod-0042"].attributes_json)["encryptionAtHost"] is True
    # The OS disk names a disk encryption set: a customer-managed key.
    assert vms["mssql-prod-0007"].disk_encryption == "customer_managed"
    # Being created, no disk described yet: unknown.
    assert vms["api-prod-0100"].disk_encryption is None


def test_an_unmanaged_disk_is_unencrypted_as_far_as_the_vm_knows(payload):
    data = _storage(payload)["dataDisks"][0]
    del data["managedDisk"]
    data["vhd"] = {"uri": "https://stlegacyvhds01.blob.core.windows.net/vhds/web-prod-0042-data0.vhd"}
    assert by_name(azure.normalize(payload, SITE, NOW).assets)["web-prod-0042"].disk_encryption == "none"


def test_azure_disk_encryption_counts_as_customer_managed(payload):
    for disk in (_storage(payload)["osDisk"], _storage(payload)["dataDisks"][0]):
        disk["encryptionSettings"] = {"enabled": True}
    assert by_name(azure.normalize(payload, SITE, NOW).assets)["web-prod-0042"].disk_encryption == "customer_managed"


@pytest.mark.parametrize(
    ("encryption", "expected"),
    [
        ({"type": "EncryptionAtRestWithCustomerKey"}, "customer_managed"),
        ({"type": "EncryptionAtRestWithPlatformAndCustomerKeys"}, "customer_managed"),
        ({"type": "EncryptionAtRestWithPlatformKey"}, "platform_managed"),
    ],
)
def test_the_disk_resources_say_who_holds_the_key(payload, encryption, expected):
    for disk in payload["disks"]["value"]:
        disk["properties"]["encryption"] = encryption
    assert by_name(azure.normalize(payload, SITE, NOW).assets)["web-prod-0042"].disk_encryption == expected


def test_the_weakest_disk_decides(payload):
    # Only the data disk's resource says customer key; the OS disk stays platform-managed.
    payload["disks"]["value"][1]["properties"]["encryptionSettingsCollection"] = {"enabled": True}
    assert by_name(azure.normalize(payload, SITE, NOW).assets)["web-prod-0042"].disk_encryption == "platform_managed"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (
            lambda p: p["virtualMachines"]["value"][0]["properties"]["storageProfile"]["osDisk"].update(managedDisk="yes"),
            "virtualMachines.value[0].properties.storageProfile.osDisk.managedDisk",
        ),
        (
            lambda p: p["virtualMachines"]["value"][0]["properties"]["storageProfile"].update(dataDisks={"lun": 0}),
            "virtualMachines.value[0].properties.storageProfile.dataDisks",
        ),
        (
            lambda p: p["virtualMachines"]["value"][0]["properties"]["storageProfile"]["dataDisks"].append(7),
            "virtualMachines.value[0].properties.storageProfile.dataDisks[1]",
        ),
        (lambda p: p["disks"]["value"][0].update(properties=[]), "disks.value[0].properties"),
    ],
)
def test_malformed_disks_name_the_path(payload, mutate, where):
    mutate(payload)
    with pytest.raises(PayloadError) as error:
        azure.normalize(payload, SITE, NOW)
    assert error.value.where == where


def test_normalize_does_not_mutate_the_payload(payload):
    before = copy.deepcopy(payload)
    azure.normalize(payload, SITE, NOW)
    assert payload == before


# -- generated payloads -----------------------------------------------------------------------


def _generated(site: Site = SITE, n: int = 400, seed: int = 11):
    return generated(generate_payload, azure.normalize, site, n, seed, NOW)


def test_generated_payload_is_json_and_deterministic():
    first = generated_json(generate_payload, SITE, 300, seed=5)
    assert first == generated_json(generate_payload, SITE, 300, seed=5)
    assert first != generated_json(generate_payload, SITE, 300, seed=6)
    assert set(json.loads(first)) == {
        "virtualMachines",
        "galleryImages",
        "galleryImageVersions",
        "images",
        "networkInterfaces",
        "publicIPAddresses",
    }


def test_generated_payload_starts_with_the_anchors():
    payload, found = _generated()
    assert [vm["name"] for vm in payload["virtualMachines"]["value"][:4]] == ANCHORS
    assert [a.name for a in found.assets[:4]] == ANCHORS
    assert len(found.assets) == 400 and len({a.asset_id for a in found.assets}) == 400

    images = images_by_id(found)
    current, behind, revoked, unknown = found.assets[:4]
    assert all(a.state == "running" and a.region == "westeurope" for a in found.assets[:4])
    production = catalog.current_production("ubuntu-22.04-base")
    assert current.image_ref == f"{GALLERY}/images/ubuntu-22.04-base/versions/{production.version}"
    assert (images[current.image_ref].version, images[current.image_ref].status) == (production.version, "production")
    assert (images[behind.image_ref].version, images[behind.image_ref].status) == ("1.0.0", "deprecated")
    assert (images[revoked.image_ref].family, images[revoked.image_ref].version) == ("rhel-9-base", "9.2.1")
    assert images[revoked.image_ref].status == "revoked"
    assert unknown.image_ref == "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest"
    assert unknown.image_ref not in images


def test_generated_gallery_covers_the_catalog():
    payload, found = _generated(n=50)
    golden = {(i.family, i.version, i.status, i.created_at) for i in found.images if i.status}
    assert golden == {(v.family, v.version, v.status, v.created_at) for v in catalog.MACHINE_IMAGE_VERSIONS}
    names = {v["name"] for v in payload["galleryImageVersions"]["value"]}
    assert {"1.3.0", "2026.10.0", "2026.6.0", "9.2.1"} <= names
    assert all(len(name.split(".")) == 3 for name in names)  # Major.Minor.Patch
    windows = next(i for i in found.images if i.family == "windows-2022-base" and i.version == "2026.10")
    assert windows.provider_image_id == f"{GALLERY}/images/windows-2022-base/versions/2026.10.0"
    assert windows.platform == "windows"
    non_golden = [i for i in found.images if i.family is None]
    assert 1 <= len(non_golden) <= 2


def test_generated_estate_mix_and_times():
    site = SITE.model_copy(update={"regions": ["northeurope"]})
    _, found = _generated(site, n=3000, seed=2)
    images = images_by_id(found)
    states = [a.state for a in found.assets]
    assert 0.84 < states.count("running") / len(states) < 0.92
    assert 0.06 < states.count("stopped") / len(states) < 0.12
    statuses = [images[a.image_ref].status if a.image_ref in images else None for a in found.assets]
    assert 0.45 < statuses.count("production") / len(statuses) < 0.85
    assert statuses.count("deprecated") and statuses.count("revoked") and statuses.count("testing")
    assert {a.region for a in found.assets} == {"westeurope", "northeurope"}
    for asset in found.assets:
        assert asset.launched_at <= catalog.SAMPLE_CLOCK
        image = images.get(asset.image_ref)
        if image is not None:
            assert image.platform == asset.platform
            if image.created_at:
                assert asset.launched_at >= image.created_at
        assert asset.private_ip and asset.network == f"{asset.name}-nic01"
    assert any(a.public_ip for a in found.assets)
    assert any(a.platform == "windows" for a in found.assets)


def test_generated_estate_meets_the_desired_state_but_for_a_few():
    """Managed disks everywhere (databases under the disk encryption set); tags, sizes and
    exposure fail the bundled rules on about 1% of the assets per rule (common.DriftPlan)."""
    _, found = _generated(n=3000, seed=2)
    database = {a.asset_id: a.name.split("-")[0] in ("db", "mssql") for a in found.assets}
    assert {a.disk_encryption for a in found.assets if database[a.asset_id]} == {"customer_managed"}
    assert {a.disk_encryption for a in found.assets if not database[a.asset_id]} == {"platform_managed"}
    tags = [{t.key for t in a.tags} for a in found.assets]
    assert 0.002 < sum(not {"owner", "cost-center"} <= keys for keys in tags) / len(tags) < 0.03
    assert 0.002 < sum("backup-policy" not in keys for keys in tags) / len(tags) < 0.03
    assert 0.002 < sum(a.public_ip is not None for a in found.assets) / len(found.assets) < 0.03
    oversized = [a for a in found.assets if a.instance_type in ("Standard_M416ms_v2", "Standard_ND96asr_v4")]
    assert 0.002 < len(oversized) / len(found.assets) < 0.03


@pytest.mark.parametrize("site_id", ["azure-prod-weu"])
def test_bundled_sample_breaks_exactly_the_documented_rules(site_id):
    """The stored sample payload carries the deliberate drift of DELIBERATE_DRIFT, and no other
    (tests/fixtures/sample_drift_expectations.yaml, which the drift and compliance tests use)."""
    check_bundled_sample_drift(site_id, NOW)
