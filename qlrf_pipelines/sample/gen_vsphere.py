"""Sample vSphere payloads: property-collector results of one vCenter, as the vsphere connector
reads them (see qlrf_pipelines.connectors.vsphere for the shape).

The vCenter holds one template per catalog machine-image version (`tpl-<slug>`, golden custom
attributes set), 2-3 clusters of ESXi hosts, a few port groups and datastores, and VMs cloned
from the templates. The first VMs are fixed anchors the demo and tests rely on:

    anchor-current-01   cloned from the current production ubuntu-22.04-base template
    anchor-behind-01    cloned from ubuntu-22.04-base 1.0.0
    anchor-revoked-01   cloned from rhel-9-base 9.2.1 (revoked)
    anchor-unknown-01   cloned from tpl-handmade-centos7, which is not a template here

Desired state: every VM carries the owner / cost-center / backup-policy custom attributes, is
encrypted (VM Encryption with keys of the key provider `kms-dc1`) and, when powered on, runs
VMware Tools, except the deliberate drift of DELIBERATE_DRIFT:

    vsphere-dc1  app-hr-007        QLRF-TAG-001  no owner attribute
                 db-crm-010        QLRF-TAG-001  no cost-center attribute
                 jump-ci-032       QLRF-ENC-001  not encrypted
                 app-portal-036    QLRF-ENC-001  not encrypted (the legacy Windows 2016 VM)
                 app-ldap-024      QLRF-VSP-001  powered on, tools not running
                 db-reports-033    QLRF-VSP-001  powered on, tools not running
                 web-mail-040      QLRF-BAK-001  no backup-policy attribute
                 app-ci-041        QLRF-BAK-001  no backup-policy attribute

QLRF-EOL-001 fails, as the estate always had it, on the VMs whose guest is CentOS 7 (end of life
2024-06-30): anchor-unknown-01 and jump-reports-047 (powered off) in the bundled estate. Synthetic estates
larger than the bundled one add about 1% random drift per rule (common.DriftPlan).
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from qlrf_pipelines.connectors.base import gc_paused
from qlrf_pipelines.sample.catalog import MACHINE_IMAGE_VERSIONS, SAMPLE_CLOCK, CatalogVersion
from qlrf_pipelines.sample.common import (
    BAK_RULE,
    ENC_RULE,
    TAG_RULE,
    VSP_RULE,
    DriftPlan,
    Picker,
    anchor_versions,
    below,
    image_pools,
    stable_hex,
    utc_iso,
)
from qlrf_pipelines.sites import Site

VCENTER_FULL_NAME = "VMware vCenter Server 8.0.2 build-22617221"
ESXI_FULL_NAMES = ("VMware ESXi 8.0.2 build-22380479", "VMware ESXi 8.0.1 build-21813344")

# customFieldDefs: the qlrf.* attributes the connector reads, plus the ordinary governance ones.
FIELD_FAMILY, FIELD_VERSION, FIELD_STATUS, FIELD_SOURCE, FIELD_OWNER, FIELD_BACKUP = 101, 102, 103, 104, 105, 106
FIELD_PARENT_IMAGE, FIELD_PARENT_RELATION = 107, 108  # lineage: the template a template was built from
FIELD_COST_CENTER = 109
CUSTOM_FIELD_DEFS = [
    {"key": FIELD_FAMILY, "name": "qlrf.family", "managedObjectType": "VirtualMachine"},
    {"key": FIELD_VERSION, "name": "qlrf.version", "managedObjectType": "VirtualMachine"},
    {"key": FIELD_STATUS, "name": "qlrf.status", "managedObjectType": "VirtualMachine"},
    {"key": FIELD_SOURCE, "name": "qlrf.source-template", "managedObjectType": "VirtualMachine"},
    {"key": FIELD_OWNER, "name": "owner", "managedObjectType": "VirtualMachine"},
    {"key": FIELD_BACKUP, "name": "backup-policy", "managedObjectType": None},
    {"key": FIELD_PARENT_IMAGE, "name": "qlrf.parent-image", "managedObjectType": "VirtualMachine"},
    {"key": FIELD_PARENT_RELATION, "name": "qlrf.parent-relation", "managedObjectType": "VirtualMachine"},
    {"key": FIELD_COST_CENTER, "name": "cost-center", "managedObjectType": "VirtualMachine"},
]

# (config.guestFullName, config.guestId) per family, as vCenter reports them.
GUESTS = {
    "ubuntu-22.04-base": ("Ubuntu Linux (64-bit)", "ubuntu64Guest"),
    "rhel-9-base": ("Red Hat Enterprise Linux 9 (64-bit)", "rhel9_64Guest"),
    "windows-2022-base": ("Microsoft Windows Server 2022 (64-bit)", "windows2019srvNext_64Guest"),
}
# Source templates that are not (or no longer) templates in the vCenter: 'unknown image' drift.
UNKNOWN_TEMPLATES = {
    "tpl-handmade-centos7": ("CentOS 7 (64-bit)", "centos7_64Guest"),
    "tpl-legacy-win2016": ("Microsoft Windows Server 2016 (64-bit)", "windows9Server64Guest"),
}

FAMILY_WEIGHTS = {"ubuntu-22.04-base": 60, "rhel-9-base": 25, "windows-2022-base": 15}
# Which kind of image a random VM was cloned from (the brief's target mix).
IMAGE_MIX = (
    ("current", 55),
    ("older", 20),
    ("deprecated", 10),
    ("revoked", 4),
    ("testing", 5),
    ("unknown", 6),
)

NETWORKS = (  # moref, name, second octet of the subnet
    ("network-31", "VM Network", 10),
    ("dvportgroup-41", "dvpg-app-vlan110", 20),
    ("dvportgroup-42", "dvpg-db-vlan120", 21),
    ("dvportgroup-43", "dvpg-dmz-vlan130", 22),
)
# name prefix -> (weight, network index, cpu choices, memory MB choices)
ROLES = {
    "app": (45, 1, (2, 4, 4, 8), (4096, 8192, 8192, 16384)),
    "web": (25, 3, (2, 2, 4), (2048, 4096, 8192)),
    "db": (20, 2, (4, 8, 8, 16), (16384, 32768, 65536)),
    "jump": (10, 0, (2,), (4096,)),
}
SERVICES = (
    "payments", "billing", "ledger", "crm", "erp", "search", "catalog", "orders", "hr", "portal",
    "reports", "ldap", "mail", "ci", "mq", "cache", "auth", "fileshare",
)
OWNERS = ("team-payments", "team-web", "team-data", "team-platform", "team-corp-it")
BACKUP_POLICIES = ("gold", "silver", "silver", "bronze")
COST_CENTERS = {
    "team-payments": "CC-2500",
    "team-web": "CC-2100",
    "team-data": "CC-2300",
    "team-platform": "CC-2200",
    "team-corp-it": "CC-3100",
}
KEY_PROVIDER = "kms-dc1"  # the vCenter's key provider (a KMIP cluster) that VM Encryption uses

DELIBERATE_DRIFT: dict[str, dict[str, tuple[str, ...]]] = {
    "vsphere-dc1": {
        "app-hr-007": (TAG_RULE,),
        "db-crm-010": (TAG_RULE,),
        "jump-ci-032": (ENC_RULE,),
        "app-portal-036": (ENC_RULE,),
        "app-ldap-024": (VSP_RULE,),
        "db-reports-033": (VSP_RULE,),
        "web-mail-040": (BAK_RULE,),
        "app-ci-041": (BAK_RULE,),
    },
}
SYNTHETIC_RULES = (TAG_RULE, ENC_RULE, VSP_RULE, BAK_RULE)


def _uuid(rng: random.Random) -> str:
    # vCenter instance UUIDs start with 50 (VMware's prefix for vCenter-assigned UUIDs).
    h = "50" + f"{rng.getrandbits(120):030x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _guest(version: CatalogVersion) -> tuple[str, str]:
    if version.family in GUESTS:
        return GUESTS[version.family]
    guest_id = "windows2019srvNext_64Guest" if version.platform == "windows" else "otherLinux64Guest"
    return f"{version.os} (64-bit)", guest_id


def template_name(version: CatalogVersion) -> str:
    return f"tpl-{version.slug}"


def _image_pools() -> dict[str, Picker]:
    """The catalog's image pools, each a picker weighted by family."""
    return {
        name: Picker(versions, [FAMILY_WEIGHTS.get(v.family, 10) for v in versions])
        for name, versions in image_pools().items()
        if versions
    }


@gc_paused()
def generate_payload(site: Site, n_assets: int, rng: random.Random) -> dict:
    """A vCenter's property-collector payload with n_assets VMs (templates come on top)."""
    if n_assets < 4:
        raise ValueError("n_assets must be at least 4 (room for the anchor assets)")

    domain = site.account.split(".", 1)[1] if site.account and "." in site.account else "corp.example.com"

    # Inventory: one datacenter, 2-3 clusters of ESXi hosts, datastores, port groups.
    clusters, hosts, datastores = [], [], []
    host_cluster: list[int] = []
    host_number = 0
    for c in range(rng.randint(2, 3)):
        cluster_moref = f"domain-c{7 + c}"
        cluster_name = f"{site.location}-cl{c + 1:02d}"
        cluster_hosts = []
        for _ in range(rng.randint(4, 8)):
            host_number += 1
            moref = f"host-{20 + host_number}"
            cluster_hosts.append(moref)
            hosts.append(
                {
                    "obj": moref,
                    "propSet": {
                        "name": f"esx{host_number:02d}.{domain}",
                        "parent": cluster_moref,
                        "summary.config.product.fullName": ESXI_FULL_NAMES[0 if rng.random() < 0.8 else 1],
                        "runtime.connectionState": "connected",
                    },
                }
            )
            host_cluster.append(c)
        clusters.append({"obj": cluster_moref, "propSet": {"name": cluster_name, "host": cluster_hosts}})
        datastores.append(
            {
                "obj": f"datastore-{11 + c}",
                "propSet": {
                    "name": f"vsan-{cluster_name}",
                    "summary.type": "vsan",
                    "summary.capacity": 96 * 2**40,
                    "summary.freeSpace": rng.randint(20, 60) * 2**40,
                },
            }
        )
    templates_datastore = f"datastore-{11 + len(clusters)}"
    datastores.append(
        {
            "obj": templates_datastore,
            "propSet": {
                "name": "nfs-templates",
                "summary.type": "NFS",
                "summary.capacity": 8 * 2**40,
                "summary.freeSpace": 5 * 2**40,
            },
        }
    )
    host_morefs = [h["obj"] for h in hosts]

    machines: list[dict] = []

    # Templates: one per catalog version, golden custom attributes set.
    for index, version in enumerate(MACHINE_IMAGE_VERSIONS):
        guest_name, guest_id = _guest(version)
        custom_values = [
            {"key": FIELD_FAMILY, "value": version.family},
            {"key": FIELD_VERSION, "value": version.version},
            {"key": FIELD_STATUS, "value": version.status},
            {"key": FIELD_OWNER, "value": "team-platform"},
        ]
        if version.parent:
            custom_values.append({"key": FIELD_PARENT_IMAGE, "value": version.parent})
            custom_values.append({"key": FIELD_PARENT_RELATION, "value": version.relation or "derived_from"})
        machines.append(
            {
                "obj": f"vm-{101 + index}",
                "propSet": {
                    "name": template_name(version),
                    "config.template": True,
                    "config.instanceUuid": _uuid(rng),
                    "config.guestFullName": guest_name,
                    "config.guestId": guest_id,
                    "config.hardware.numCPU": 2,
                    "config.hardware.memoryMB": 4096,
                    "config.createDate": utc_iso(version.created_at),
                    "config.annotation": f"Golden image {version.family} {version.version}, built by Packer",
                    "runtime.powerState": "poweredOff",
                    "runtime.host": host_morefs[index % len(host_morefs)],
                    "guest.toolsRunningStatus": "guestToolsNotRunning",
                    "guest.toolsVersionStatus2": "guestToolsCurrent",
                    "network": [NETWORKS[0][0]],
                    "datastore": [templates_datastore],
                    "customValue": custom_values,
                },
            }
        )

    # (name, version, source template); the anchor without a catalog version was cloned from
    # a template that is not there.
    anchors = [
        (name, version, "tpl-handmade-centos7" if version is None else None) for name, version in anchor_versions()
    ]
    pools = _image_pools()
    mix = Picker([name for name, _ in IMAGE_MIX], [w for _, w in IMAGE_MIX])
    role = Picker(list(ROLES), [r[0] for r in ROLES.values()])
    width = max(3, len(str(n_assets)))
    clock_seconds = int(SAMPLE_CLOCK.timestamp())
    unknown_start = int(datetime(2024, 1, 15, tzinfo=timezone.utc).timestamp())
    unknown_names = list(UNKNOWN_TEMPLATES)
    drift_of = DriftPlan(site, DELIBERATE_DRIFT, SYNTHETIC_RULES)

    for index in range(n_assets):
        if index < len(anchors):
            name, version, unknown = anchors[index]
            prefix = "app"
            powered = "poweredOn"
            tools = "guestToolsRunning"
        else:
            prefix = role(rng)
            name = f"{prefix}-{SERVICES[below(rng, len(SERVICES))]}-{index:0{width}d}"
            kind = mix(rng)
            version, unknown = None, None
            if kind == "unknown":
                # Half name a template that is not there, half carry no source attribute at all.
                unknown = unknown_names[below(rng, len(unknown_names))] if rng.random() < 0.5 else ""
            else:
                version = (pools.get(kind) or pools["current"])(rng)
            draw = rng.random()
            powered = "poweredOn" if draw < 0.88 else "poweredOff" if draw < 0.97 else "suspended"
            rng.random()  # once drew the tools status of a powered-on VM (7% not running); kept
            tools = "guestToolsRunning" if powered == "poweredOn" else "guestToolsNotRunning"
        drift = drift_of(name, index)
        if VSP_RULE in drift and powered == "poweredOn":
            tools = "guestToolsNotRunning"

        if version is not None:
            guest_name, guest_id = _guest(version)
            source = template_name(version)
            start = int(version.created_at.timestamp()) + 3600
        else:
            guest_name, guest_id = UNKNOWN_TEMPLATES.get(unknown or "", UNKNOWN_TEMPLATES["tpl-handmade-centos7"])
            source = unknown
            start = unknown_start
        created = datetime.fromtimestamp(start + below(rng, clock_seconds - 3600 - start), tz=timezone.utc)

        _, network_index, cpus, memories = ROLES[prefix]
        network_moref, _, octet = NETWORKS[network_index]
        host_index = below(rng, len(host_morefs))
        draw = rng.random()
        tools_version = (
            "guestToolsCurrent" if draw < 0.78
            else "guestToolsSupportedOld" if draw < 0.92
            else "guestToolsNeedUpgrade" if draw < 0.97
            else "guestToolsTooOld"
        )
        custom = []
        if source:
            custom.append({"key": FIELD_SOURCE, "value": source})
        owner = OWNERS[below(rng, len(OWNERS))]
        backup = BACKUP_POLICIES[below(rng, len(BACKUP_POLICIES))]
        # Breaking QLRF-TAG-001 drops the owner (odd index) or the cost center (even index).
        if TAG_RULE not in drift or index % 2 == 0:
            custom.append({"key": FIELD_OWNER, "value": owner})
        if BAK_RULE not in drift:
            custom.append({"key": FIELD_BACKUP, "value": backup})
        if TAG_RULE not in drift or index % 2 == 1:
            custom.append({"key": FIELD_COST_CENTER, "value": COST_CENTERS[owner]})
        props = {
            "name": name,
            "config.template": False,
            "config.instanceUuid": _uuid(rng),
            "config.guestFullName": guest_name,
            "config.guestId": guest_id,
            "config.hardware.numCPU": cpus[below(rng, len(cpus))],
            "config.hardware.memoryMB": memories[below(rng, len(memories))],
            "config.createDate": utc_iso(created),
            "runtime.powerState": powered,
            "runtime.host": host_morefs[host_index],
            "guest.toolsRunningStatus": tools,
            "guest.toolsVersionStatus2": tools_version,
            "network": [network_moref],
            "datastore": [datastores[host_cluster[host_index]]["obj"]],
            "customValue": custom,
        }
        if ENC_RULE not in drift:
            key = stable_hex(f"{site.id}/{name}/vm-key", 32)
            props["config.keyId"] = {
                "keyId": f"{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:]}",
                "providerId": {"id": KEY_PROVIDER},
            }
        if rng.random() < 0.3:
            props["config.annotation"] = "Managed by Terraform"
        if powered == "poweredOn" and tools != "guestToolsNotRunning":
            props["guest.ipAddress"] = f"10.{octet}.{(index // 250) % 256}.{index % 250 + 4}"
        machines.append({"obj": f"vm-{1001 + index}", "propSet": props})

    return {
        "about": {
            "name": "VMware vCenter Server",
            "fullName": VCENTER_FULL_NAME,
            "version": "8.0.2",
            "build": "22617221",
            "apiType": "VirtualCenter",
            "apiVersion": "8.0.2.0",
            "instanceUuid": _uuid(rng),
        },
        "customFieldDefs": [dict(d) for d in CUSTOM_FIELD_DEFS],
        "Datacenter": [{"obj": "datacenter-3", "propSet": {"name": site.location}}],
        "ClusterComputeResource": clusters,
        "HostSystem": hosts,
        "Datastore": datastores,
        "Network": [{"obj": moref, "propSet": {"name": name}} for moref, name, _ in NETWORKS],
        "VirtualMachine": machines,
    }
