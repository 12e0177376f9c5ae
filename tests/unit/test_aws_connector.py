"""AWS normalizer on a hand-written EC2 payload, and the sample AWS payload generator."""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime, timezone

import pytest

from qlrf_pipelines.connectors import aws, provider_module
from qlrf_pipelines.connectors.base import PayloadError
from qlrf_pipelines.models import Tag
from qlrf_pipelines.sample import catalog
from qlrf_pipelines.sample.gen_aws import generate_payload
from qlrf_pipelines.sites import Site
from tests.unit.connector_helpers import (
    ANCHORS,
    check_bundled_sample_drift,
    generated,
    generated_json,
    images_by_id,
    payload_fixture,
    production_site,
)

NOW = datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)
SITE = production_site(
    id="aws-test-use1", provider="aws", name="AWS test", location="us-east-1", account="111122223333"
)

payload = payload_fixture("aws/describe.json")


def _by_native(found):
    return {a.native_id: a for a in found.assets}


def test_registry_finds_the_module():
    assert provider_module("aws") is aws
    assert aws.PROVIDER == "aws"


def test_running_linux_instance(payload):
    asset = _by_native(aws.normalize(payload, SITE, NOW))["i-0123456789abcdef0"]
    assert asset.asset_id == "aws:aws-test-use1:i-0123456789abcdef0"
    assert asset.site_id == "aws-test-use1"
    assert asset.provider == "aws"
    assert asset.kind == "vm"
    assert asset.name == "web-prod-0042"
    assert asset.state == "running"
    assert asset.discovered_at == NOW
    assert asset.image_ref == "ami-0a1b2c3d4e5f60718"
    assert asset.platform == "linux"
    assert asset.os == "Linux/UNIX"
    assert asset.instance_type == "m6i.large"
    assert asset.cpu_count == 2
    assert asset.memory_mb is None
    assert asset.region == "us-east-1"
    assert asset.zone == "us-east-1b"
    assert asset.network == "vpc-0f00dbabe0000cafe"
    assert asset.private_ip == "10.0.1.15"
    assert asset.public_ip == "54.160.2.3"
    assert asset.launched_at == datetime(2026, 10, 5, 7, 12, 33, tzinfo=timezone.utc)
    assert asset.tags == [Tag("Name", "web-prod-0042"), Tag("env", "prod"), Tag("team", "frontend")]
    assert json.loads(asset.attributes_json) == {
        "Architecture": "x86_64",
        "ReservationId": "r-0aa1bb2cc3dd4ee5f",
        "StateCode": 16,
        "SubnetId": "subnet-0123abcd4567ef890",
    }


def test_windows_instance_without_name_tag(payload):
    asset = _by_native(aws.normalize(payload, SITE, NOW))["i-0fedcba9876543210"]
    assert asset.name == "i-0fedcba9876543210"  # no Name tag: the instance id
    assert asset.state == "stopped"  # stopping
    assert asset.platform == "windows"
    assert asset.os == "Windows"
    assert asset.cpu_count == 8
    assert asset.public_ip is None
    assert asset.tags == []


def test_terminated_instance_keeps_no_network(payload):
    asset = _by_native(aws.normalize(payload, SITE, NOW))["i-0aaaabbbbccccdddd"]
    assert asset.name == "batch-prod-0007"
    assert asset.state == "terminated"
    assert asset.network is None and asset.private_ip is None
    assert asset.cpu_count is None  # no CpuOptions


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pending", "pending"),
        ("running", "running"),
        ("stopping", "stopped"),
        ("stopped", "stopped"),
        ("shutting-down", "terminated"),
        ("terminated", "terminated"),
        ("hibernating-someday", "unknown"),
    ],
)
def test_state_mapping(payload, name, expected):
    payload["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0]["Instances"][0]["State"]["Name"] = name
    assert _by_native(aws.normalize(payload, SITE, NOW))["i-0123456789abcdef0"].state == expected


def test_images(payload):
    images = {i.provider_image_id: i for i in aws.normalize(payload, SITE, NOW).images}
    assert set(images) == {"ami-0a1b2c3d4e5f60718", "ami-0c0ffee0c0ffee000", "ami-0d15ea5e0d15ea5e0"}

    golden = images["ami-0a1b2c3d4e5f60718"]
    assert golden.name == "golden-ubuntu-22-04-base-1-3-0"
    assert golden.site_id == "aws-test-use1" and golden.provider == "aws"
    assert golden.family == "ubuntu-22.04-base"
    assert golden.version == "1.3.0"
    assert golden.version_key == "0000000001.0000000003.0000000000"
    assert golden.status == "production"  # tag value "Production", lower-cased
    assert golden.region == "us-east-1"
    assert golden.platform == "linux"
    assert golden.created_at == datetime(2026, 9, 7, 10, 0, tzinfo=timezone.utc)
    assert Tag("qlrf:status", "Production") in golden.tags

    windows = images["ami-0c0ffee0c0ffee000"]
    assert windows.platform == "windows"
    assert windows.version == "2026.10"
    assert windows.status is None  # "beta" is not an image status

    legacy = images["ami-0d15ea5e0d15ea5e0"]
    assert (legacy.family, legacy.version, legacy.version_key, legacy.status) == (None, None, None, None)
    assert legacy.os == "Red Hat Enterprise Linux"
    assert legacy.tags == []


def test_region_without_calls_is_fine(payload):
    payload["regions"]["ap-south-1"] = {}
    found = aws.normalize(payload, SITE, NOW)
    assert len(found.assets) == 3 and len(found.images) == 3


def test_missing_instance_id_names_the_path(payload):
    del payload["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0]["Instances"][1]["InstanceId"]
    with pytest.raises(PayloadError) as error:
        aws.normalize(payload, SITE, NOW)
    where = "regions.us-east-1.DescribeInstances.Reservations[0].Instances[1].InstanceId"
    assert error.value.where == where
    assert where in str(error.value)
    assert "missing" in str(error.value)


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (
            lambda p: p["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][1]["Instances"][0].update(
                LaunchTime="last tuesday"
            ),
            "regions.us-east-1.DescribeInstances.Reservations[1].Instances[0].LaunchTime",
        ),
        (
            lambda p: p["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0]["Instances"][0].update(
                Tags={"Name": "web"}
            ),
            "regions.us-east-1.DescribeInstances.Reservations[0].Instances[0].Tags",
        ),
        (
            lambda p: p["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0]["Instances"][0]["Tags"].append(
                {"Value": "no key"}
            ),
            "regions.us-east-1.DescribeInstances.Reservations[0].Instances[0].Tags[3]",
        ),
        (
            lambda p: p["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0]["Instances"][0].pop("State"),
            "regions.us-east-1.DescribeInstances.Reservations[0].Instances[0].State",
        ),
        (
            lambda p: p["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0].update(Instances="i-1"),
            "regions.us-east-1.DescribeInstances.Reservations[0].Instances",
        ),
        (
            lambda p: p["regions"]["us-east-1"]["DescribeImages"]["Images"][2].pop("ImageId"),
            "regions.us-east-1.DescribeImages.Images[2].ImageId",
        ),
        (lambda p: p["regions"]["eu-west-1"].update(DescribeInstances={}), "regions.eu-west-1.DescribeInstances.Reservations"),
        (lambda p: p.pop("regions"), "regions"),
    ],
)
def test_malformed_payloads_name_the_path(payload, mutate, where):
    mutate(payload)
    with pytest.raises(PayloadError) as error:
        aws.normalize(payload, SITE, NOW)
    assert error.value.where == where
    assert str(error.value).startswith(f"{where}: ")


# -- disk encryption ---------------------------------------------------------------------------

WINDOWS = "i-0fedcba9876543210"


def _volumes(payload) -> list[dict]:
    return payload["regions"]["us-east-1"]["DescribeVolumes"]["Volumes"]


def test_disk_encryption_is_read_from_the_attached_volumes(payload):
    found = _by_native(aws.normalize(payload, SITE, NOW))
    # The root volume is under the key alias/aws/ebs points to: AWS managed.
    assert found["i-0123456789abcdef0"].disk_encryption == "platform_managed"
    # Root under the account's own key (alias/prod-ebs), data under another account's key.
    assert found[WINDOWS].disk_encryption == "customer_managed"
    # Terminated: no volume attached any more; the unattached volume belongs to nobody.
    assert found["i-0aaaabbbbccccdddd"].disk_encryption is None
    assert "UnencryptedVolumes" not in json.loads(found[WINDOWS].attributes_json)


def test_one_unencrypted_volume_makes_the_instance_unencrypted(payload):
    data = _volumes(payload)[2]
    data["Encrypted"] = False
    del data["KmsKeyId"]
    asset = _by_native(aws.normalize(payload, SITE, NOW))[WINDOWS]
    assert asset.disk_encryption == "none"
    assert json.loads(asset.attributes_json)["UnencryptedVolumes"] == ["vol-0c0ffee0c0ffee002"]


def test_the_weakest_volume_decides(payload):
    # The Windows root volume moves to the AWS managed key; its data volume stays customer managed.
    _volumes(payload)[1]["KmsKeyId"] = "arn:aws:kms:us-east-1:111122223333:key/0b9f4a2e-5c1d-4e8f-9a7b-3c6d2e1f0a95"
    assert _by_native(aws.normalize(payload, SITE, NOW))[WINDOWS].disk_encryption == "platform_managed"


def test_a_volume_that_is_detaching_no_longer_counts(payload):
    data = _volumes(payload)[2]
    data.update(Encrypted=False, State="in-use")
    data["Attachments"][0]["State"] = "detached"
    assert _by_native(aws.normalize(payload, SITE, NOW))[WINDOWS].disk_encryption == "customer_managed"


def test_a_key_named_by_its_aws_alias_is_aws_managed(payload):
    for volume in _volumes(payload)[1:3]:
        volume["KmsKeyId"] = "arn:aws:kms:us-east-1:111122223333:alias/aws/ebs"
    assert _by_native(aws.normalize(payload, SITE, NOW))[WINDOWS].disk_encryption == "platform_managed"


def test_without_the_kms_aliases_an_encrypted_volume_is_at_most_platform_managed(payload):
    """Nothing proves the customer holds the key: encrypted, but not customer_managed."""
    del payload["regions"]["us-east-1"]["ListAliases"]
    found = _by_native(aws.normalize(payload, SITE, NOW))
    assert found[WINDOWS].disk_encryption == "platform_managed"
    assert found["i-0123456789abcdef0"].disk_encryption == "platform_managed"


def test_without_volumes_disk_encryption_is_unknown(payload):
    del payload["regions"]["us-east-1"]["DescribeVolumes"]
    assert {a.disk_encryption for a in aws.normalize(payload, SITE, NOW).assets} == {None}


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p["regions"]["us-east-1"]["DescribeVolumes"].pop("Volumes"), "regions.us-east-1.DescribeVolumes.Volumes"),
        (
            lambda p: p["regions"]["us-east-1"]["DescribeVolumes"]["Volumes"][0].update(Attachments={"InstanceId": "i-1"}),
            "regions.us-east-1.DescribeVolumes.Volumes[0].Attachments",
        ),
        (
            lambda p: p["regions"]["us-east-1"]["DescribeVolumes"]["Volumes"][1]["Attachments"].append("i-1"),
            "regions.us-east-1.DescribeVolumes.Volumes[1].Attachments[1]",
        ),
        (lambda p: p["regions"]["us-east-1"].update(ListAliases=[]), "regions.us-east-1.ListAliases"),
    ],
)
def test_malformed_volumes_name_the_path(payload, mutate, where):
    mutate(payload)
    with pytest.raises(PayloadError) as error:
        aws.normalize(payload, SITE, NOW)
    assert error.value.where == where


def test_payload_must_be_an_object():
    with pytest.raises(PayloadError) as error:
        aws.normalize([], SITE, NOW)
    assert error.value.where == "$"


# -- generated payloads -----------------------------------------------------------------------


def _generated(site: Site = SITE, n: int = 400, seed: int = 11):
    return generated(generate_payload, aws.normalize, site, n, seed, NOW)


def test_generated_payload_is_json_and_deterministic():
    first = generated_json(generate_payload, SITE, 300, seed=5)
    assert first == generated_json(generate_payload, SITE, 300, seed=5)
    assert first != generated_json(generate_payload, SITE, 300, seed=6)
    assert set(json.loads(first)) == {"regions"}


def test_generated_payload_starts_with_the_anchors():
    payload, found = _generated()
    first = payload["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0]["Instances"][0]
    assert {"Key": "Name", "Value": "anchor-current-01"} in first["Tags"]
    assert [a.name for a in found.assets[:4]] == ANCHORS
    assert len(found.assets) == 400
    assert len({a.asset_id for a in found.assets}) == 400

    images = images_by_id(found)
    current, behind, revoked, unknown = found.assets[:4]
    assert all(a.state == "running" and a.region == "us-east-1" for a in found.assets[:4])

    production = catalog.current_production("ubuntu-22.04-base")
    assert current.image_ref == catalog.aws_ami_id("us-east-1", production)
    assert (images[current.image_ref].family, images[current.image_ref].version) == ("ubuntu-22.04-base", production.version)
    assert images[current.image_ref].status == "production"
    assert images[behind.image_ref].version == "1.0.0"
    assert images[behind.image_ref].status == "deprecated"
    assert (images[revoked.image_ref].family, images[revoked.image_ref].version) == ("rhel-9-base", "9.2.1")
    assert images[revoked.image_ref].status == "revoked"
    assert revoked.os == "Red Hat Enterprise Linux"
    assert unknown.image_ref.startswith("ami-") and unknown.image_ref not in images


def test_generated_images_cover_the_catalog_in_every_region():
    site = SITE.model_copy(update={"regions": ["us-west-2"]})
    payload, found = _generated(site, n=300)
    assert list(payload["regions"]) == ["us-east-1", "us-west-2"]
    for region in ("us-east-1", "us-west-2"):
        golden = {(i.family, i.version, i.status) for i in found.images if i.region == region and i.family}
        assert golden == {(v.family, v.version, v.status) for v in catalog.MACHINE_IMAGE_VERSIONS}
        regional = [i for i in found.images if i.region == region]
        assert 1 <= sum(1 for i in regional if i.family is None) <= 2  # non-golden images
        for version in catalog.MACHINE_IMAGE_VERSIONS:
            image = next(i for i in regional if i.provider_image_id == catalog.aws_ami_id(region, version))
            assert image.name == f"golden-{version.slug}"
            assert image.created_at == version.created_at
            assert image.platform == version.platform
    assert {a.region for a in found.assets} == {"us-east-1", "us-west-2"}


def test_generated_estate_mix_and_times():
    payload, found = _generated(n=3000, seed=2)
    images = images_by_id(found)
    states = [a.state for a in found.assets]
    assert 0.84 < states.count("running") / len(states) < 0.92
    assert 0.06 < states.count("stopped") / len(states) < 0.12
    statuses = [images[a.image_ref].status if a.image_ref in images else None for a in found.assets]
    assert 0.45 < statuses.count("production") / len(statuses) < 0.85
    assert statuses.count("deprecated") and statuses.count("revoked") and statuses.count("testing")
    assert any(a.image_ref not in images for a in found.assets[4:])
    for asset in found.assets:
        assert asset.launched_at <= catalog.SAMPLE_CLOCK
        image = images.get(asset.image_ref)
        if image is not None:
            assert image.platform == asset.platform
            if image.created_at:
                assert asset.launched_at >= image.created_at
        assert asset.name and asset.instance_type and asset.zone.startswith(asset.region)
        assert {"env", "team", "app"} <= {t.key for t in asset.tags}
    assert any(a.public_ip for a in found.assets)
    assert any(a.platform == "windows" for a in found.assets)
    assert found.assets[10].name.split("-")[1] == "prod"


def test_generated_estate_meets_the_desired_state_but_for_a_few():
    """Tags, sizes, encryption and exposure pass the bundled rules on all but about 1% of the
    assets per rule (common.DriftPlan), and database volumes are under the customer managed key."""
    _, found = _generated(n=3000, seed=2)
    live = [a for a in found.assets if a.state != "terminated"]
    encryption = [a.disk_encryption for a in live]
    assert None not in encryption
    assert 0.002 < encryption.count("none") / len(live) < 0.03
    databases = [a for a in live if a.name.split("-")[0] in ("db", "mssql")]
    assert all(a.disk_encryption in ("customer_managed", "none") for a in databases)
    assert sum(a.disk_encryption == "customer_managed" for a in databases) > 0.95 * len(databases)
    tags = [{t.key for t in a.tags} for a in found.assets]
    assert 0.002 < sum(not {"owner", "cost-center"} <= keys for keys in tags) / len(tags) < 0.03
    assert 0.002 < sum("backup-policy" not in keys for keys in tags) / len(tags) < 0.03
    assert 0.002 < sum(a.public_ip is not None for a in found.assets) / len(found.assets) < 0.03
    oversized = [a for a in found.assets if a.instance_type in ("x2iedn.32xlarge", "p4d.24xlarge")]
    assert 0.002 < len(oversized) / len(found.assets) < 0.03
    assert all(a.cpu_count in (96, 128) for a in oversized)


def test_generated_needs_room_for_the_anchors():
    with pytest.raises(ValueError):
        generate_payload(SITE, 3, random.Random(1))
    _, found = _generated(n=4)
    assert [a.name for a in found.assets] == ANCHORS


def test_normalize_does_not_mutate_the_payload(payload):
    before = copy.deepcopy(payload)
    aws.normalize(payload, SITE, NOW)
    assert payload == before


def test_garbage_collector_is_restored_after_an_error(payload):
    import gc

    assert gc.isenabled()
    payload["regions"]["us-east-1"]["DescribeInstances"]["Reservations"][0]["Instances"][0].pop("InstanceId")
    with pytest.raises(PayloadError):
        aws.normalize(payload, SITE, NOW)
    assert gc.isenabled()


@pytest.mark.parametrize("site_id", ["aws-prod-use1", "aws-stg-euw1"])
def test_bundled_sample_breaks_exactly_the_documented_rules(site_id):
    """The stored sample payload carries the deliberate drift of DELIBERATE_DRIFT, and no other
    (tests/fixtures/sample_drift_expectations.yaml, which the drift and compliance tests use)."""
    check_bundled_sample_drift(site_id, NOW)
