"""Regenerate tests/emulators/azure/data/ (the emulated subscription's ARM resources) from the
sample Azure generator:  .venv/bin/python -m tests.emulators.azure.make_data

Each file is one ARM resource collection, a JSON list of resources in their REST shape, exactly as
the list APIs return them (the emulator pages them and nests them under "value"):

  virtualMachines.json     with properties.instanceView (the emulator drops it unless statusOnly=true)
  galleries.json           the golden gallery (derived from the image definitions' ids)
  galleryImages.json       image definitions, one per family
  galleryImageVersions.json
  images.json              managed images
  disks.json               the VMs' managed OS and data disks (derived from the VMs)
  networkInterfaces.json, publicIPAddresses.json
  subscription.json        the subscription resource (a single object)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from qlrf_pipelines.sample.gen_azure import GALLERY_NAME, GALLERY_RESOURCE_GROUP, generate_payload
from tests.emulators.azure.estate import N_VMS, SEED, SUBSCRIPTION, TENANT, emulated_site

DATA = Path(__file__).resolve().parent / "data"


def _gallery(location: str) -> dict:
    return {
        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GALLERY_RESOURCE_GROUP}"
        f"/providers/Microsoft.Compute/galleries/{GALLERY_NAME}",
        "name": GALLERY_NAME,
        "type": "Microsoft.Compute/galleries",
        "location": location,
        "tags": {"team": "platform"},
        "properties": {
            "description": "QL-RF golden images",
            "identifier": {"uniqueName": f"{SUBSCRIPTION}-{GALLERY_NAME.upper()}"},
            "provisioningState": "Succeeded",
        },
    }


def _encryption(disk: dict) -> dict:
    """The disk resource's encryption: the disk encryption set's customer-managed key when the VM
    names one, else the platform-managed key."""
    des = disk["managedDisk"].get("diskEncryptionSet")
    if des:
        return {"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": des["id"]}
    return {"type": "EncryptionAtRestWithPlatformKey"}


def _data_disks(vm: dict) -> list[dict]:
    """The VM's managed data disks, as disks.list returns them."""
    return [
        {
            "id": data["managedDisk"]["id"],
            "name": data["name"],
            "type": "Microsoft.Compute/disks",
            "location": vm["location"],
            "managedBy": vm["id"],
            "sku": {"name": data["managedDisk"]["storageAccountType"]},
            "properties": {
                "creationData": {"createOption": "Empty"},
                "diskSizeGB": data["diskSizeGB"],
                "diskState": "Attached",
                "encryption": _encryption(data),
                "provisioningState": "Succeeded",
                "timeCreated": vm["properties"]["timeCreated"],
            },
        }
        for data in vm["properties"]["storageProfile"].get("dataDisks", [])
    ]


def _disk(vm: dict) -> dict:
    """The VM's managed OS disk, as disks.list returns it."""
    properties = vm["properties"]
    os_disk = properties["storageProfile"]["osDisk"]
    disk_id = os_disk["managedDisk"]["id"]
    reference = properties["storageProfile"]["imageReference"]
    if "/galleries/" in reference.get("id", ""):
        creation = {"createOption": "FromImage", "galleryImageReference": {"id": reference["id"]}}
    else:
        platform_image = (
            f"/Subscriptions/{SUBSCRIPTION}/Providers/Microsoft.Compute/Locations/{vm['location']}/Publishers/"
            f"{reference.get('publisher')}/ArtifactTypes/VMImage/Offers/{reference.get('offer')}/Skus/"
            f"{reference.get('sku')}/Versions/{reference.get('exactVersion')}"
        )
        creation = {"createOption": "FromImage", "imageReference": {"id": reference.get("id") or platform_image}}
    disk = {
        "id": disk_id,
        "name": os_disk["name"],
        "type": "Microsoft.Compute/disks",
        "location": vm["location"],
        "managedBy": vm["id"],
        "sku": {"name": "Premium_LRS"},
        "properties": {
            "osType": os_disk["osType"],
            "creationData": creation,
            "diskSizeGB": 30 if os_disk["osType"] == "Linux" else 127,
            "diskState": "Attached",
            "encryption": _encryption(os_disk),
            "provisioningState": "Succeeded",
            "timeCreated": properties["timeCreated"],
        },
    }
    if "zones" in vm:
        disk["zones"] = vm["zones"]
    return disk


def _write(name: str, resources) -> None:
    if isinstance(resources, list):
        text = "[\n" + ",\n".join(json.dumps(r, sort_keys=False) for r in resources) + "\n]\n"
    else:
        text = json.dumps(resources, indent=2) + "\n"
    (DATA / name).write_text(text)


def main() -> None:
    site = emulated_site()
    payload = generate_payload(site, N_VMS, random.Random(SEED))
    DATA.mkdir(exist_ok=True)
    vms = payload["virtualMachines"]["value"]
    for vm in vms:
        vm["type"] = "Microsoft.Compute/virtualMachines"
    _write("virtualMachines.json", vms)
    _write("galleries.json", [_gallery(site.location)])
    _write("galleryImages.json", payload["galleryImages"]["value"])
    _write("galleryImageVersions.json", payload["galleryImageVersions"]["value"])
    _write("images.json", payload["images"]["value"])
    _write("disks.json", [disk for vm in vms for disk in [_disk(vm), *_data_disks(vm)]])
    for key in ("networkInterfaces", "publicIPAddresses"):
        kind = "networkInterfaces" if key == "networkInterfaces" else "publicIPAddresses"
        for resource in payload[key]["value"]:
            resource["type"] = f"Microsoft.Network/{kind}"
            resource.setdefault("location", site.location)
        _write(f"{key}.json", payload[key]["value"])
    _write(
        "subscription.json",
        {
            "id": f"/subscriptions/{SUBSCRIPTION}",
            "subscriptionId": SUBSCRIPTION,
            "tenantId": TENANT,
            "displayName": "QL-RF emulated production",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "EnterpriseAgreement_2014-09-01",
                "spendingLimit": "Off",
            },
            "authorizationSource": "RoleBased",
        },
    )
    print(f"wrote {len(vms)} VMs and their resources to {DATA}")


if __name__ == "__main__":
    main()
