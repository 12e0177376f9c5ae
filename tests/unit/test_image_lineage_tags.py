"""Image lineage from provider tags: each connector's normalize sets ImageRecord.parent_image /
parent_relation from the tags, labels or custom attributes an image builder writes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from qlrf_pipelines.connectors import aws, azure, gcp, vsphere
from qlrf_pipelines.connectors.base import image_parent
from tests.unit.connector_helpers import production_site

NOW = datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)

AWS_SITE = production_site(
    id="aws-test-use1", provider="aws", name="AWS test", location="us-east-1", account="111122223333"
)
AZURE_SITE = production_site(
    id="azure-test-weu",
    provider="azure",
    name="Azure test",
    location="westeurope",
    account="00000000-1111-2222-3333-444444444444",
)
GCP_SITE = production_site(
    id="gcp-test-euw1", provider="gcp", name="GCP test", location="europe-west1", account="qlrf-test"
)
VSPHERE_SITE = production_site(
    id="vsphere-dc1",
    provider="vsphere",
    name="vSphere Frankfurt DC1",
    location="dc1-frankfurt",
    account="vcenter01.corp.example.com",
)


# -- the helper -------------------------------------------------------------------------------


def test_image_parent_without_lineage_tags_is_none():
    assert image_parent({}) == (None, None)
    assert image_parent({"qlrf:family": "ubuntu-22.04-base", "qlrf:parent-image": "  "}) == (None, None)


# -- AWS --------------------------------------------------------------------------------------


def _aws_payload(tags: list[dict] | None) -> dict:
    image = {
        "ImageId": "ami-0a1b2c3d4e5f60718",
        "Name": "golden-ubuntu-22-04-base-1-3-0",
        "CreationDate": "2026-09-07T10:00:00.000Z",
        "OwnerId": "111122223333",
        "State": "available",
        "Architecture": "x86_64",
        "PlatformDetails": "Linux/UNIX",
    }
    if tags is not None:
        image["Tags"] = tags
    return {"regions": {"us-east-1": {"DescribeImages": {"Images": [image]}}}}


def _aws_image(tags: list[dict] | None):
    (image,) = aws.normalize(_aws_payload(tags), AWS_SITE, NOW).images
    return image


def test_aws_parent_tags():
    image = _aws_image(
        [
            {"Key": "qlrf:family", "Value": "ubuntu-22.04-base"},
            {"Key": "qlrf:version", "Value": "1.3.0"},
            {"Key": "qlrf:parent-image", "Value": "ubuntu-22.04-base@1.2.0"},
            {"Key": "qlrf:parent-relation", "Value": "rebuilt_from"},
        ]
    )
    assert (image.parent_image, image.parent_relation) == ("ubuntu-22.04-base@1.2.0", "rebuilt_from")


def test_aws_unknown_relation_reads_as_derived_from():
    image = _aws_image(
        [
            {"Key": "qlrf:parent-image", "Value": "ubuntu-22.04-base@1.2.0"},
            {"Key": "qlrf:parent-relation", "Value": "forked_from"},
        ]
    )
    assert (image.parent_image, image.parent_relation) == ("ubuntu-22.04-base@1.2.0", "derived_from")


def test_aws_relation_is_normalised():
    image = _aws_image(
        [
            {"Key": "qlrf:parent-image", "Value": "ubuntu-22.04-base@1.2.0"},
            {"Key": "qlrf:parent-relation", "Value": " Patched-From "},
        ]
    )
    assert image.parent_relation == "patched_from"


def test_aws_packer_source_ami_names_the_parent():
    image = _aws_image(
        [
            {"Key": "Name", "Value": "golden-ubuntu"},
            {"Key": "source_ami", "Value": "ami-0fedcba9876543210"},
        ]
    )
    assert (image.parent_image, image.parent_relation) == ("ami-0fedcba9876543210", "derived_from")


def test_aws_qlrf_parent_tag_wins_over_source_ami():
    image = _aws_image(
        [
            {"Key": "source_ami", "Value": "ami-0fedcba9876543210"},
            {"Key": "qlrf:parent-image", "Value": "ubuntu-22.04-base@1.2.0"},
            {"Key": "qlrf:parent-relation", "Value": "patched_from"},
        ]
    )
    assert (image.parent_image, image.parent_relation) == ("ubuntu-22.04-base@1.2.0", "patched_from")


@pytest.mark.parametrize("tags", [None, [], [{"Key": "qlrf:family", "Value": "ubuntu-22.04-base"}]])
def test_aws_without_parent_tags(tags):
    image = _aws_image(tags)
    assert (image.parent_image, image.parent_relation) == (None, None)


# -- Azure ------------------------------------------------------------------------------------

_GALLERY = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-images"
    "/providers/Microsoft.Compute/galleries/qlrf_golden"
)
_MANAGED = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-images"
    "/providers/Microsoft.Compute/images/golden-rhel-9-base-9.4.0"
)


def _azure_payload(version_tags: dict | None, image_tags: dict | None) -> dict:
    version = {
        "id": f"{_GALLERY}/images/ubuntu-22.04-base/versions/1.3.0",
        "name": "1.3.0",
        "type": "Microsoft.Compute/galleries/images/versions",
        "location": "westeurope",
        "properties": {
            "publishingProfile": {
                "publishedDate": "2026-09-07T10:00:00.0000000+00:00",
                "excludeFromLatest": False,
                "targetRegions": [{"name": "West Europe", "regionalReplicaCount": 1}],
            },
            "provisioningState": "Succeeded",
        },
    }
    image = {
        "id": _MANAGED,
        "name": "golden-rhel-9-base-9.4.0",
        "type": "Microsoft.Compute/images",
        "location": "westeurope",
        "properties": {"storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized"}}},
    }
    if version_tags is not None:
        version["tags"] = version_tags
    if image_tags is not None:
        image["tags"] = image_tags
    return {
        "virtualMachines": {"value": []},
        "galleryImageVersions": {"value": [version]},
        "images": {"value": [image]},
    }


def _azure_images(version_tags: dict | None, image_tags: dict | None):
    found = azure.normalize(_azure_payload(version_tags, image_tags), AZURE_SITE, NOW)
    return {image.provider_image_id: image for image in found.images}


def test_azure_gallery_version_and_managed_image_parent_tags():
    images = _azure_images(
        {
            "qlrf:family": "ubuntu-22.04-base",
            "qlrf:version": "1.3.0",
            "qlrf:parent-image": "ubuntu-22.04-base@1.2.0",
            "qlrf:parent-relation": "rebuilt_from",
        },
        {
            "qlrf:family": "rhel-9-base",
            "qlrf:version": "9.4.0",
            "qlrf:parent-image": "rhel-9-base@9.3.0",
            "qlrf:parent-relation": "patched_from",
        },
    )
    version = images[f"{_GALLERY}/images/ubuntu-22.04-base/versions/1.3.0".lower()]
    assert (version.parent_image, version.parent_relation) == ("ubuntu-22.04-base@1.2.0", "rebuilt_from")
    managed = images[_MANAGED.lower()]
    assert (managed.parent_image, managed.parent_relation) == ("rhel-9-base@9.3.0", "patched_from")


def test_azure_unknown_relation_and_image_builder_source_image():
    source = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/images/base-rhel-9"
    images = _azure_images(
        {"qlrf:parent-image": "ubuntu-22.04-base@1.2.0", "qlrf:parent-relation": "copied"},
        {"source_image": source},
    )
    version = images[f"{_GALLERY}/images/ubuntu-22.04-base/versions/1.3.0".lower()]
    assert (version.parent_image, version.parent_relation) == ("ubuntu-22.04-base@1.2.0", "derived_from")
    managed = images[_MANAGED.lower()]
    assert (managed.parent_image, managed.parent_relation) == (source, "derived_from")


def test_azure_without_parent_tags():
    for image in _azure_images(None, {"qlrf:family": "rhel-9-base"}).values():
        assert (image.parent_image, image.parent_relation) == (None, None)


# -- GCP --------------------------------------------------------------------------------------

_GCP_IMAGE = "projects/qlrf-test/global/images/golden-ubuntu-22-04-base-1-3-0"


def _gcp_image(labels: dict | None):
    image = {
        "kind": "compute#image",
        "id": "8201934402211234567",
        "name": "golden-ubuntu-22-04-base-1-3-0",
        "selfLink": f"https://www.googleapis.com/compute/v1/{_GCP_IMAGE}",
        "family": "ubuntu-22-04-base",
        "creationTimestamp": "2026-09-07T03:00:00.000-07:00",
        "status": "READY",
        "diskSizeGb": "10",
        "licenses": ["https://www.googleapis.com/compute/v1/projects/ubuntu-os-cloud/global/licenses/ubuntu-2204-lts"],
    }
    if labels is not None:
        image["labels"] = labels
    payload = {"instances.aggregatedList": {"items": {}}, "images.list": {"items": [image]}}
    (record,) = gcp.normalize(payload, GCP_SITE, NOW).images
    assert record.provider_image_id == _GCP_IMAGE
    return record


def test_gcp_parent_labels_are_decoded():
    image = _gcp_image(
        {
            "qlrf-family": "ubuntu-22_04-base",
            "qlrf-version": "1_3_0",
            "qlrf-parent-family": "ubuntu-22_04-base",
            "qlrf-parent-version": "1_2_0",
            "qlrf-parent-relation": "rebuilt_from",
        }
    )
    assert (image.family, image.version) == ("ubuntu-22.04-base", "1.3.0")
    assert (image.parent_image, image.parent_relation) == ("ubuntu-22.04-base@1.2.0", "rebuilt_from")


def test_gcp_relation_underscores_are_not_decoded():
    image = _gcp_image(
        {
            "qlrf-parent-family": "rhel-9-base",
            "qlrf-parent-version": "9_3_0",
            "qlrf-parent-relation": "patched_from",
        }
    )
    assert (image.parent_image, image.parent_relation) == ("rhel-9-base@9.3.0", "patched_from")


def test_gcp_unknown_or_missing_relation_reads_as_derived_from():
    labels = {"qlrf-parent-family": "windows-2022-base", "qlrf-parent-version": "2026_08"}
    assert _gcp_image(labels).parent_image == "windows-2022-base@2026.08"
    assert _gcp_image(labels).parent_relation == "derived_from"
    labels["qlrf-parent-relation"] = "cloned"
    assert _gcp_image(labels).parent_relation == "derived_from"


@pytest.mark.parametrize(
    "labels",
    [None, {}, {"qlrf-family": "ubuntu-22_04-base"}, {"qlrf-parent-relation": "patched_from"}],
)
def test_gcp_without_parent_labels(labels):
    image = _gcp_image(labels)
    assert (image.parent_image, image.parent_relation) == (None, None)


# -- vSphere ----------------------------------------------------------------------------------

_FIELDS = {
    "qlrf.family": 101,
    "qlrf.version": 102,
    "qlrf.status": 103,
    "qlrf.parent-image": 106,
    "qlrf.parent-family": 107,
    "qlrf.parent-version": 108,
    "qlrf.parent-relation": 109,
}


def _vsphere_template(attributes: dict[str, str]):
    payload = {
        "customFieldDefs": [
            {"key": key, "name": name, "managedObjectType": "VirtualMachine"} for name, key in _FIELDS.items()
        ],
        "Datacenter": [{"obj": "datacenter-3", "propSet": {"name": "dc1-frankfurt"}}],
        "VirtualMachine": [
            {
                "obj": "vm-101",
                "propSet": {
                    "name": "tpl-ubuntu-22-04-base-1-3-0",
                    "config.template": True,
                    "config.instanceUuid": "50112233-4455-6677-8899-aabbccddee01",
                    "config.guestFullName": "Ubuntu Linux (64-bit)",
                    "config.guestId": "ubuntu64Guest",
                    "config.createDate": "2026-09-07T10:00:00Z",
                    "runtime.powerState": "poweredOff",
                    "customValue": [{"key": _FIELDS[name], "value": value} for name, value in attributes.items()],
                },
            }
        ],
    }
    (image,) = vsphere.normalize(payload, VSPHERE_SITE, NOW).images
    return image


def test_vsphere_parent_attributes():
    image = _vsphere_template(
        {
            "qlrf.family": "ubuntu-22.04-base",
            "qlrf.version": "1.3.0",
            "qlrf.parent-image": "ubuntu-22.04-base@1.2.0",
            "qlrf.parent-relation": "rebuilt_from",
        }
    )
    assert (image.parent_image, image.parent_relation) == ("ubuntu-22.04-base@1.2.0", "rebuilt_from")


def test_vsphere_parent_family_and_version_attributes():
    image = _vsphere_template(
        {"qlrf.parent-family": "rhel-9-base", "qlrf.parent-version": "9.3.0", "qlrf.parent-relation": "patched_from"}
    )
    assert (image.parent_image, image.parent_relation) == ("rhel-9-base@9.3.0", "patched_from")


def test_vsphere_unknown_relation_reads_as_derived_from():
    image = _vsphere_template({"qlrf.parent-image": "tpl-ubuntu-22-04-base-1-2-0", "qlrf.parent-relation": "x"})
    assert (image.parent_image, image.parent_relation) == ("tpl-ubuntu-22-04-base-1-2-0", "derived_from")


def test_vsphere_without_parent_attributes():
    image = _vsphere_template({"qlrf.family": "ubuntu-22.04-base", "qlrf.version": "1.3.0"})
    assert (image.parent_image, image.parent_relation) == (None, None)
