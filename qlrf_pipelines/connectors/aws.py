"""AWS: EC2 API responses to canonical records.

Payload shape
-------------
A live connector calls, for each region of the site (`site.location` plus `site.regions`),
`ec2.describe_instances()` and `ec2.describe_images(Owners=["self"])` (following pagination and
concatenating `Reservations` / `Images`), and stores the responses under the operation name,
exactly as the EC2 API returns them (boto3 datetimes written as ISO 8601 strings):

    {
      "regions": {
        "us-east-1": {
          "DescribeInstances": {"Reservations": [{
              "ReservationId": "r-0a1b...", "OwnerId": "111122223333",
              "Instances": [{
                  "InstanceId": "i-0123456789abcdef0", "ImageId": "ami-0abc...",
                  "InstanceType": "m6i.large", "LaunchTime": "2026-10-05T07:12:33.000Z",
                  "State": {"Code": 16, "Name": "running"},
                  "Placement": {"AvailabilityZone": "us-east-1a"},
                  "PrivateIpAddress": "10.0.1.15", "PublicIpAddress": "54.1.2.3",
                  "VpcId": "vpc-...", "SubnetId": "subnet-...",
                  "Platform": "windows",                 # only on Windows instances
                  "PlatformDetails": "Linux/UNIX", "Architecture": "x86_64",
                  "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 2},
                  "Tags": [{"Key": "Name", "Value": "web-prod-0042"}]}]}]},
          "DescribeImages": {"Images": [{
              "ImageId": "ami-0abc...", "Name": "golden-ubuntu-22-04-base-1-3-0",
              "CreationDate": "2026-09-07T10:00:00.000Z", "OwnerId": "111122223333",
              "State": "available", "Architecture": "x86_64", "PlatformDetails": "Linux/UNIX",
              "Description": "...", "DeprecationTime": "...",   # optional
              "Tags": [{"Key": "qlrf:family", "Value": "ubuntu-22.04-base"},
                       {"Key": "qlrf:version", "Value": "1.3.0"},
                       {"Key": "qlrf:status", "Value": "production"}]}]}
        }
      }
    }

Either operation may be absent for a region (nothing discovered there). Two more are read when
present (the live connector stores them; payloads without them still normalize, with
disk_encryption left null or, without the aliases, at most "platform_managed"):

          "DescribeVolumes": {"Volumes": [{                   # ec2.describe_volumes()
              "VolumeId": "vol-0a1b...", "Size": 20, "VolumeType": "gp3", "State": "in-use",
              "Encrypted": true, "KmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/1a2b...",
              "Attachments": [{"InstanceId": "i-0123456789abcdef0", "Device": "/dev/sda1",
                               "State": "attached", "DeleteOnTermination": true}]}]},
          "ListAliases": {"Aliases": [{                        # kms.list_aliases() in the region
              "AliasName": "alias/aws/ebs", "TargetKeyId": "1a2b...",
              "AliasArn": "arn:aws:kms:us-east-1:111122223333:alias/aws/ebs"}]}

Mapping
-------
* Every instance is an AssetRecord of kind "vm": asset_id `aws:<site>:<InstanceId>`, name from
  the `Name` tag (else the instance id), image_ref the AMI id, cpu_count CoreCount x
  ThreadsPerCore, network the VPC id, region the payload region, zone the availability zone.
* disk_encryption is the weakest of the instance's attached EBS volumes: "none" when one is not
  encrypted; "platform_managed" when encrypted under an AWS managed key (`alias/aws/ebs`: the
  volume names the key by ARN, so the region's `alias/aws/*` aliases say which keys are AWS
  managed); "customer_managed" under any other key (a customer managed key of this or another
  account). Without ListAliases an encrypted volume counts as "platform_managed": encrypted, but
  with nothing to prove the customer holds the key. Null when no volume is attached (instance
  store only, terminated, or no DescribeVolumes). Unencrypted volume ids go to attributes_json.
* Every image is an ImageRecord keyed by AMI id; the tags `qlrf:family`, `qlrf:version` and
  `qlrf:status` make it a golden image (a status outside IMAGE_STATUSES is dropped).
  `qlrf:parent-image` (or Packer's `source_ami` / `SourceAMI`) and `qlrf:parent-relation` name
  the image it was built from (see base.image_parent).
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from datetime import datetime
from typing import Any, Mapping

from qlrf_pipelines.connectors.base import (
    ENCRYPTION_CUSTOMER,
    ENCRYPTION_NONE,
    ENCRYPTION_PLATFORM,
    PayloadError,
    TagCache,
    compact_json,
    gc_paused,
    get_list,
    get_mapping,
    get_str,
    image_parent,
    image_status,
    parse_timestamp,
    require_list,
    weakest_encryption,
)
from qlrf_pipelines.models.records import (
    FAMILY_TAG,
    VERSION_TAG,
    AssetRecord,
    Discovery,
    ImageRecord,
    tags_from_mapping,
    version_sort_key,
)
from qlrf_pipelines.sites import Site

PROVIDER = "aws"

INSTANCE_STATES = {
    "pending": "pending",
    "running": "running",
    "stopping": "stopped",
    "stopped": "stopped",
    "shutting-down": "terminated",
    "terminated": "terminated",
}


def _tags(record: Mapping, where: str) -> dict[str, str]:
    """EC2 `Tags: [{Key, Value}]` to a dict."""
    raw = record.get("Tags")
    if raw is None:
        return {}
    if type(raw) is not list:
        raise PayloadError(f"{where}.Tags", f"expected a list of {{Key, Value}}, got {type(raw).__name__}")
    tags: dict[str, str] = {}
    for index, tag in enumerate(raw):
        key = tag.get("Key") if type(tag) is dict or isinstance(tag, AbcMapping) else None
        if key is None:
            raise PayloadError(f"{where}.Tags[{index}]", "expected an object with Key and Value")
        value = tag.get("Value")
        if type(value) is not str:
            value = "" if value is None else str(value)
        tags[key if type(key) is str else str(key)] = value
    return tags


def _platform(platform: str | None, platform_details: str | None) -> str:
    if (platform or "").lower() == "windows" or (platform_details or "").lower().startswith("windows"):
        return "windows"
    return "linux"


def _cpu_count(options: Any, where: str) -> int | None:
    if options is None:
        return None
    options = get_mapping(options, f"{where}.CpuOptions")
    cores = options.get("CoreCount")
    threads = options.get("ThreadsPerCore") or 1
    if cores is None:
        return None
    if type(cores) is not int or type(threads) is not int:
        raise PayloadError(
            f"{where}.CpuOptions", f"expected integer CoreCount and ThreadsPerCore, got {dict(options)!r}"
        )
    return cores * threads


AWS_MANAGED_ALIAS_PREFIX = "alias/aws/"
_ATTACHED = ("attached", "attaching")

# instance id -> [(volume id, encryption)] of the volumes attached to it
_Volumes = dict[str, list[tuple[str, str]]]


def _aws_managed_keys(calls: Mapping, where: str) -> set[str] | None:
    """Ids of the region's AWS managed KMS keys (targets of `alias/aws/*`); None without ListAliases."""
    listed = calls.get("ListAliases")
    if listed is None:
        return None
    lwhere = f"{where}.ListAliases"
    keys = set()
    for index, alias in enumerate(get_list(get_mapping(listed, lwhere), "Aliases", lwhere)):
        alias = get_mapping(alias, f"{lwhere}.Aliases[{index}]")
        name = alias.get("AliasName")
        target = alias.get("TargetKeyId")
        if isinstance(name, str) and name.startswith(AWS_MANAGED_ALIAS_PREFIX) and isinstance(target, str):
            keys.add(target)
    return keys


def _volume_encryption(volume: Mapping, aws_managed: set[str] | None) -> str:
    if not volume.get("Encrypted"):
        return ENCRYPTION_NONE
    key = volume.get("KmsKeyId")
    if not isinstance(key, str) or not key or AWS_MANAGED_ALIAS_PREFIX in key or aws_managed is None:
        return ENCRYPTION_PLATFORM
    # A key ARN 'arn:aws:kms:<region>:<account>:key/<id>' or a bare key id.
    return ENCRYPTION_PLATFORM if key.rsplit("/", 1)[-1] in aws_managed else ENCRYPTION_CUSTOMER


def _volumes(calls: Mapping, where: str) -> _Volumes:
    described = calls.get("DescribeVolumes")
    if described is None:
        return {}
    aws_managed = _aws_managed_keys(calls, where)
    vwhere = f"{where}.DescribeVolumes"
    by_instance: _Volumes = {}
    for index, volume in enumerate(require_list(described, "Volumes", vwhere)):
        volwhere = f"{vwhere}.Volumes[{index}]"
        volume = get_mapping(volume, volwhere)
        attachments = get_list(volume, "Attachments", volwhere)
        if not attachments:
            continue
        encryption = _volume_encryption(volume, aws_managed)
        volume_id = get_str(volume, "VolumeId", volwhere) or ""
        for a_index, attachment in enumerate(attachments):
            attachment = get_mapping(attachment, f"{volwhere}.Attachments[{a_index}]")
            instance_id = attachment.get("InstanceId")
            if isinstance(instance_id, str) and attachment.get("State", "attached") in _ATTACHED:
                by_instance.setdefault(instance_id, []).append((volume_id, encryption))
    return by_instance


def _instance(
    instance: Any,
    where: str,
    region: str,
    reservation_id: str | None,
    site: Site,
    discovered_at: datetime,
    make_tags: TagCache,
    volumes: _Volumes,
) -> AssetRecord:
    instance = get_mapping(instance, where)
    instance_id = get_str(instance, "InstanceId", where, required=True)
    state = instance.get("State")
    if state is None:
        raise PayloadError(f"{where}.State", "required field is missing")
    state = get_mapping(state, f"{where}.State")
    state_name = get_str(state, "Name", f"{where}.State", required=True)
    tags = _tags(instance, where)
    placement = instance.get("Placement")
    zone = None
    if placement is not None:
        zone = get_str(get_mapping(placement, f"{where}.Placement"), "AvailabilityZone", f"{where}.Placement")
    platform_details = get_str(instance, "PlatformDetails", where)
    launch_time = instance.get("LaunchTime")
    attached = volumes.get(instance_id, ())
    unencrypted = [volume_id for volume_id, encryption in attached if encryption == ENCRYPTION_NONE]
    return AssetRecord(
        asset_id=f"aws:{site.id}:{instance_id}",
        site_id=site.id,
        provider=PROVIDER,
        native_id=instance_id,
        kind="vm",
        name=tags.get("Name") or instance_id,
        state=INSTANCE_STATES.get(state_name, "unknown"),
        discovered_at=discovered_at,
        image_ref=get_str(instance, "ImageId", where),
        platform=_platform(get_str(instance, "Platform", where), platform_details),
        os=platform_details,
        instance_type=get_str(instance, "InstanceType", where),
        cpu_count=_cpu_count(instance.get("CpuOptions"), where),
        region=region,
        zone=zone,
        network=get_str(instance, "VpcId", where),
        private_ip=get_str(instance, "PrivateIpAddress", where),
        public_ip=get_str(instance, "PublicIpAddress", where),
        disk_encryption=weakest_encryption(encryption for _, encryption in attached),
        launched_at=parse_timestamp(launch_time, f"{where}.LaunchTime") if launch_time is not None else None,
        tags=make_tags(tags),
        attributes_json=compact_json(
            {
                "Architecture": instance.get("Architecture"),
                "InstanceLifecycle": instance.get("InstanceLifecycle"),
                "ReservationId": reservation_id,
                "StateCode": state.get("Code"),
                "SubnetId": instance.get("SubnetId"),
                "UnencryptedVolumes": unencrypted or None,
            }
        ),
    )


def _image(image: Any, where: str, region: str, site: Site, discovered_at: datetime) -> ImageRecord:
    image = get_mapping(image, where)
    image_id = get_str(image, "ImageId", where, required=True)
    tags = _tags(image, where)
    version = tags.get(VERSION_TAG) or None
    platform_details = get_str(image, "PlatformDetails", where)
    parent_image, parent_relation = image_parent(tags)
    return ImageRecord(
        provider_image_id=image_id,
        site_id=site.id,
        provider=PROVIDER,
        name=get_str(image, "Name", where) or image_id,
        discovered_at=discovered_at,
        family=tags.get(FAMILY_TAG) or None,
        version=version,
        version_key=version_sort_key(version),
        status=image_status(tags),
        region=region,
        platform=_platform(get_str(image, "Platform", where), platform_details),
        os=platform_details,
        created_at=parse_timestamp(image.get("CreationDate"), f"{where}.CreationDate"),
        tags=tags_from_mapping(tags),
        parent_image=parent_image,
        parent_relation=parent_relation,
    )


@gc_paused()
def normalize(payload: Mapping, site: Site, discovered_at: datetime) -> Discovery:
    get_mapping(payload, "$")
    if payload.get("regions") is None:
        raise PayloadError("regions", "required field is missing")
    regions = get_mapping(payload["regions"], "regions")

    found = Discovery()
    assets, images = found.assets, found.images
    make_tags = TagCache()
    for region, calls in regions.items():
        rwhere = f"regions.{region}"
        calls = get_mapping(calls, rwhere)
        volumes = _volumes(calls, rwhere)

        described = calls.get("DescribeInstances")
        if described is not None:
            dwhere = f"{rwhere}.DescribeInstances"
            for r_index, reservation in enumerate(require_list(described, "Reservations", dwhere)):
                reswhere = f"{dwhere}.Reservations[{r_index}]"
                reservation = get_mapping(reservation, reswhere)
                reservation_id = reservation.get("ReservationId")
                for i_index, instance in enumerate(require_list(reservation, "Instances", reswhere)):
                    iwhere = f"{reswhere}.Instances[{i_index}]"
                    assets.append(
                        _instance(instance, iwhere, region, reservation_id, site, discovered_at, make_tags, volumes)
                    )

        described = calls.get("DescribeImages")
        if described is not None:
            dwhere = f"{rwhere}.DescribeImages"
            for index, image in enumerate(require_list(described, "Images", dwhere)):
                images.append(_image(image, f"{dwhere}.Images[{index}]", region, site, discovered_at))
    return found
