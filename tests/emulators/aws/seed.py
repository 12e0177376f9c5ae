"""Seed a moto server with a small EC2 estate through boto3, and record what was made.

Per region (us-east-1, eu-west-1): golden AMIs owned by the account and tagged
qlrf:family / qlrf:version / qlrf:status (registered, and one made with CreateImage from a
builder instance), a VPC with a subnet, instances with Name tags on those AMIs and on a public
AMI the account does not own (Canonical's, from PUBLIC_AMIS), some stopped, and extra volumes.
The single instances' root volumes rotate through unencrypted, encrypted under the AWS managed
key (alias/aws/ebs, which moto creates on first use) and encrypted under the customer managed key
CUSTOMER_KEY_ALIAS; Instance.disk_encryption records what discovery should report.

us-east-1 gets INSTANCES_USE1 single-instance reservations plus one reservation of four, so
DescribeInstances needs several pages at a small page size. moto pages DescribeInstances by
*reservation* (real EC2 pages by instance), so page counts below are computed from reservations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boto3

ACCOUNT = "123456789012"  # moto's default account: every access key it does not know maps here
SEED_KEYS = {"aws_access_key_id": "AKIAQLRFSEEDER000001", "aws_secret_access_key": "seeder-not-a-secret"}
REGIONS = ("us-east-1", "eu-west-1")
INSTANCES_USE1 = 60  # single-instance reservations in us-east-1, plus one of 4, plus the builder
INSTANCES_EUW1 = 6

# The public AMI catalogue moto loads (MOTO_AMIS_PATH): two images the account does not own.
PUBLIC_UBUNTU = "ami-1e749f67"
PUBLIC_WINDOWS = "ami-03cf127a"
PUBLIC_AMIS = [
    {
        "ami_id": PUBLIC_UBUNTU, "state": "available", "public": True, "owner_id": "099720109477",
        "image_location": "amazon/getting-started", "sriov": "simple", "root_device_type": "ebs",
        "root_device_name": "/dev/sda1", "description": "Canonical, Ubuntu, 14.04 LTS, amd64 trusty image",
        "image_type": "machine", "platform": None, "architecture": "x86_64",
        "name": "ubuntu/images/hvm-ssd/ubuntu-trusty-14.04-amd64-server-20170727",
        "virtualization_type": "hvm", "hypervisor": "xen",
    },
    {
        "ami_id": PUBLIC_WINDOWS, "state": "available", "public": True, "owner_id": "801119661308",
        "image_location": "amazon/getting-started", "sriov": "simple", "root_device_type": "ebs",
        "root_device_name": "/dev/sda1", "description": "Microsoft Windows Server 2016 Nano Locale English AMI",
        "image_type": "machine", "platform": "windows", "architecture": "x86_64",
        "name": "Windows_Server-2016-English-Nano-Base-2017.10.13",
        "virtualization_type": "hvm", "hypervisor": "xen",
    },
]

# (family, version, status) of the golden AMIs registered in each region.
GOLDEN = {
    "us-east-1": [
        ("ubuntu-22.04-base", "1.2.0", "deprecated"),
        ("ubuntu-22.04-base", "1.3.0", "production"),
    ],
    "eu-west-1": [("ubuntu-22.04-base", "1.3.0", "production")],
}
BUILT = ("rhel-9-base", "2.0.0", "testing")  # made with CreateImage from a builder instance in us-east-1
CUSTOMER_KEY_ALIAS = "alias/qlrf-ebs"


@dataclass
class Instance:
    instance_id: str
    name: str
    region: str
    image_id: str
    state: str  # canonical state: running / stopped
    disk_encryption: str = "none"  # what its volumes should make of it


@dataclass
class Golden:
    image_id: str
    region: str
    family: str
    version: str
    status: str


@dataclass
class Estate:
    url: str
    account: str = ACCOUNT
    instances: dict[str, Instance] = field(default_factory=dict)
    golden: dict[str, Golden] = field(default_factory=dict)
    public_amis: dict[str, set[str]] = field(default_factory=dict)  # region -> non-owned AMI ids in use
    reservations: dict[str, int] = field(default_factory=dict)  # region -> reservation count
    volumes: dict[str, set[str]] = field(default_factory=dict)  # region -> extra volume ids
    vpcs: dict[str, str] = field(default_factory=dict)
    subnets: dict[str, str] = field(default_factory=dict)

    def pages(self, page_size: int) -> int:
        """DescribeInstances requests for the whole estate at this page size (moto pages by reservation)."""
        return sum(-(-count // page_size) for count in self.reservations.values())


def _tags(resource_type: str, **tags: str) -> list[dict]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _golden_tags(family: str, version: str, status: str) -> list[dict]:
    return _tags("image", **{"qlrf:family": family, "qlrf:version": version, "qlrf:status": status})


def _root_volume(encryption: str, customer_key: str) -> dict:
    """RunInstances arguments for a root volume with this encryption (none: no BlockDeviceMappings,
    so moto gives the instance its default root volume, unencrypted)."""
    if encryption == "none":
        return {}
    ebs: dict = {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True, "Encrypted": True}
    if encryption == "customer_managed":
        ebs["KmsKeyId"] = customer_key
    return {"BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": ebs}]}


ROOT_ENCRYPTION = ("none", "platform_managed", "customer_managed")


def seed_estate(url: str) -> Estate:
    estate = Estate(url=url)
    for region in REGIONS:
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=url, **SEED_KEYS)
        kms = boto3.client("kms", region_name=region, endpoint_url=url, **SEED_KEYS)
        short = {"us-east-1": "use1", "eu-west-1": "euw1"}[region]
        customer_key = kms.create_key(Description="QL-RF EBS volumes")["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName=CUSTOMER_KEY_ALIAS, TargetKeyId=customer_key)

        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=_tags("vpc", Name=f"qlrf-{short}"))["Vpc"]
        subnet = ec2.create_subnet(
            VpcId=vpc["VpcId"], CidrBlock="10.20.1.0/24", AvailabilityZone=f"{region}a",
            TagSpecifications=_tags("subnet", Name=f"qlrf-{short}-a"),
        )["Subnet"]
        estate.vpcs[region], estate.subnets[region] = vpc["VpcId"], subnet["SubnetId"]

        images = []
        for family, version, status in GOLDEN[region]:
            image_id = ec2.register_image(
                Name=f"golden-{family}-{version}".replace(".", "-"), Architecture="x86_64",
                RootDeviceName="/dev/sda1", VirtualizationType="hvm",
            )["ImageId"]
            # moto drops RegisterImage's TagSpecifications (CreateImage keeps them): tag afterwards.
            ec2.create_tags(Resources=[image_id], Tags=_golden_tags(family, version, status)[0]["Tags"])
            estate.golden[image_id] = Golden(image_id, region, family, version, status)
            images.append(image_id)

        reservations = 0

        def launch(name: str, image_id: str, count: int = 1, encryption: str = "none") -> list[str]:
            nonlocal reservations
            reservations += 1
            launched = ec2.run_instances(
                ImageId=image_id, MinCount=count, MaxCount=count, InstanceType="t3.micro",
                SubnetId=subnet["SubnetId"], TagSpecifications=_tags("instance", Name=name),
                **_root_volume(encryption, customer_key),
            )["Instances"]
            for instance in launched:
                estate.instances[instance["InstanceId"]] = Instance(
                    instance["InstanceId"], name, region, image_id, "running", encryption
                )
            return [instance["InstanceId"] for instance in launched]

        if region == "us-east-1":
            builder = launch("ami-builder-use1", images[-1])[0]
            family, version, status = BUILT
            built = ec2.create_image(
                InstanceId=builder, Name=f"golden-{family}-{version}".replace(".", "-"),
                TagSpecifications=_golden_tags(family, version, status),
            )["ImageId"]
            estate.golden[built] = Golden(built, region, family, version, status)
            images.append(built)
            singles = INSTANCES_USE1
        else:
            singles = INSTANCES_EUW1

        # Every 5th instance runs the public Ubuntu AMI; the rest cycle through the golden ones.
        for index in range(singles):
            image_id = PUBLIC_UBUNTU if index % 5 == 4 else images[index % len(images)]
            launch(f"web-{short}-{index:03d}", image_id, encryption=ROOT_ENCRYPTION[index % 3])
        if region == "us-east-1":
            launch(f"batch-{short}", images[0], count=4)  # one reservation, four instances (same Name)

        stopped = [i.instance_id for i in estate.instances.values() if i.region == region][1:4]
        ec2.stop_instances(InstanceIds=stopped)
        for instance_id in stopped:
            estate.instances[instance_id].state = "stopped"

        estate.volumes[region] = {
            ec2.create_volume(AvailabilityZone=f"{region}a", Size=size, VolumeType="gp3")["VolumeId"]
            for size in (8, 20)
        }
        estate.reservations[region] = reservations
        estate.public_amis[region] = {PUBLIC_UBUNTU}
    return estate
