"""Azure: Azure Resource Manager (Microsoft.Compute / Microsoft.Network) responses to canonical
records.

Payload shape
-------------
A live connector lists, for the site's subscription (`site.account`), the ARM collections below
and stores each as the REST list response `{"value": [...]}` (pages concatenated). Resources are
in their REST JSON shape (camelCase, nested `properties`), which is what the REST API returns
and what the SDK models give with `model.serialize(keep_readonly=True)` (not `as_dict()`, which
flattens and snake-cases):

    {
      "virtualMachines": {"value": [{            # virtual_machines.list_all(status_only="true")
          "id": "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>",
          "name": "web-prod-0042", "location": "westeurope", "zones": ["2"], "tags": {"env": "prod"},
          "properties": {
              "vmId": "6f1c...-uuid", "timeCreated": "2026-10-05T07:12:33.1234567+00:00",
              "provisioningState": "Succeeded",
              "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
              "storageProfile": {
                  "imageReference": {"id": ".../galleries/<g>/images/<definition>/versions/<v>"}
                                 # or {"id": ".../galleries/<g>/images/<definition>", "exactVersion": "1.3.0"}
                                 # or {"publisher": "Canonical", "offer": "...", "sku": "...", "version": "latest"},
                  "osDisk": {"osType": "Linux", "name": "...",
                             "managedDisk": {"id": ".../disks/<disk>", "storageAccountType": "Premium_LRS",
                                             "diskEncryptionSet": {"id": ".../diskEncryptionSets/<des>"}}},
                                             # diskEncryptionSet only with customer-managed keys;
                                             # an unmanaged disk has "vhd": {"uri": ...} instead
                  "dataDisks": [{"lun": 0, "managedDisk": {...}}]},
              "securityProfile": {"encryptionAtHost": true},                  # optional
              "osProfile": {"computerName": "web-prod-0042"},
              "networkProfile": {"networkInterfaces": [{"id": ".../networkInterfaces/<nic>",
                                                        "properties": {"primary": true}}]},
              "instanceView": {"osName": "ubuntu", "osVersion": "22.04",
                               "statuses": [{"code": "ProvisioningState/succeeded"},
                                            {"code": "PowerState/running"}]}}}]},
      "galleryImageVersions": {"value": [{       # gallery_image_versions.list_by_gallery_image(...)
          "id": ".../galleries/<g>/images/<definition>/versions/1.3.0", "name": "1.3.0",
          "location": "westeurope", "tags": {"qlrf:family": "...", "qlrf:version": "...", "qlrf:status": "..."},
          "properties": {"publishingProfile": {"publishedDate": "...", "excludeFromLatest": false,
                                               "endOfLifeDate": "...", "targetRegions": [{"name": "West Europe"}]},
                         "storageProfile": {"osDiskImage": {...}}, "provisioningState": "Succeeded"}}]},
      "images": {"value": [{                     # images.list()  (managed images)
          "id": ".../providers/Microsoft.Compute/images/<name>", "name": "...", "location": "...",
          "tags": {...}, "properties": {"storageProfile": {"osDisk": {"osType": "Linux"}}}}]},

      # optional, used when present:
      "galleryImages": {"value": [{              # gallery_images.list_by_gallery(...): definitions
          "id": ".../galleries/<g>/images/<definition>", "name": "<definition>",
          "properties": {"osType": "Linux", "osState": "Generalized", "identifier": {...}}}]},
      "networkInterfaces": {"value": [{          # network_interfaces.list_all()
          "id": ".../networkInterfaces/<nic>", "name": "<nic>",
          "properties": {"ipConfigurations": [{"properties": {"primary": true,
              "privateIPAddress": "10.1.0.4", "subnet": {"id": ".../virtualNetworks/<vnet>/subnets/<subnet>"},
              "publicIPAddress": {"id": ".../publicIPAddresses/<pip>"}}}]}}]},
      "publicIPAddresses": {"value": [{          # public_ip_addresses.list_all()
          "id": ".../publicIPAddresses/<pip>", "properties": {"ipAddress": "20.1.2.3"}}]},
      "disks": {"value": [{                      # disks.list()
          "id": ".../disks/<disk>", "properties": {"encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                                                    "encryptionSettingsCollection": {"enabled": false}}}]}
    }

Only `virtualMachines` is required; every other collection may be absent.

Mapping
-------
* VMs are AssetRecords of kind "vm": asset_id `azure:<site>:<vmId>`, state from the
  `PowerState/*` status, image_ref the image resource id in lower case (a gallery definition
  reference plus `exactVersion` becomes the version's id) or `publisher:offer:sku:version` for
  marketplace images, network the primary NIC's name, region the location, zone the first zone.
  Private / public IPs come from `networkInterfaces` / `publicIPAddresses` when present.
* disk_encryption is the weakest of the VM's OS and data disks. A managed disk is always
  encrypted at rest (Azure Storage service-side encryption): "platform_managed", or
  "customer_managed" when it names a disk encryption set (customer-managed key), when Azure Disk
  Encryption is on (`osDisk.encryptionSettings.enabled`, keys in the customer's Key Vault), or
  when its resource in `disks` says `encryption.type` *WithCustomerKey* or
  `encryptionSettingsCollection.enabled`. An unmanaged disk (a VHD in a storage account, `vhd`)
  counts as "none": its encryption is the storage account's business, not the VM's. Encryption at
  host (`securityProfile.encryptionAtHost`) encrypts caches and temp disks with the disks' own
  keys, so it does not change the answer; it is kept in attributes_json. Null without a
  storageProfile disk.
* Gallery image versions are ImageRecords keyed by their id in lower case: family from the tag
  `qlrf:family` else the image definition name, version from `qlrf:version` else the version
  name (gallery versions must be Major.Minor.Patch, so the tag carries versions like "2026.10"),
  status from `qlrf:status`, created_at the published date.
* Managed images are ImageRecords keyed by their id in lower case; family / version / status
  from the tags, created_at from the tag `qlrf:created` when present.
* On both, the tags `qlrf:parent-image` (or Image Builder's `source_image`) and
  `qlrf:parent-relation` name the image it was built from (see base.image_parent).
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from datetime import datetime
from typing import Iterator, Mapping

from qlrf_pipelines.connectors.base import (
    EMPTY,
    ENCRYPTION_CUSTOMER,
    ENCRYPTION_NONE,
    ENCRYPTION_PLATFORM,
    PayloadError,
    TagCache,
    compact_json,
    gc_paused,
    get_list,
    get_mapping,
    get_optional_mapping,
    get_str,
    get_str_map,
    image_parent,
    image_status,
    last_segment,
    parse_timestamp,
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

PROVIDER = "azure"

CREATED_TAG = "qlrf:created"

POWER_STATES = {
    "running": "running",
    "deallocated": "stopped",
    "stopped": "stopped",
    "starting": "pending",
    "deallocating": "stopped",
    "stopping": "stopped",
}


# -- ARM resource ids -------------------------------------------------------------------------


def _segment_after(resource_id: str, name: str) -> str | None:
    """The segment after `name`, case-insensitively: ('.../virtualNetworks/v/...', 'virtualnetworks') -> 'v'."""
    parts = resource_id.split("/")
    for index in range(len(parts) - 1):
        if parts[index].lower() == name:
            return parts[index + 1]
    return None


def _resource_group(resource_id: str) -> str | None:
    """'/subscriptions/<sub>/resourceGroups/<rg>/providers/...' -> '<rg>'."""
    parts = resource_id.split("/", 5)
    if len(parts) > 4 and parts[3].lower() == "resourcegroups":
        return parts[4]
    return _segment_after(resource_id, "resourcegroups")


def _is_gallery_definition(resource_id: str) -> bool:
    parts = resource_id.lower().rstrip("/").split("/")
    return len(parts) >= 4 and parts[-4] == "galleries" and parts[-2] == "images"


def _gallery_parts(resource_id: str) -> tuple[str, str] | None:
    """(gallery, image definition) of a gallery image (version) id, in the id's own case."""
    parts = resource_id.split("/")
    for index in range(len(parts) - 4, -1, -1):
        if parts[index].lower() == "galleries" and parts[index + 2].lower() == "images":
            return parts[index + 1], parts[index + 3]
    return None


def _collection(payload: Mapping, key: str, required: bool = False) -> Iterator[tuple[str, Mapping]]:
    """Yield (where, resource) for every resource of one ARM list response `{"value": [...]}`."""
    response = payload.get(key)
    if response is None:
        if required:
            raise PayloadError(key, "required list response is missing")
        return
    for index, resource in enumerate(get_list(get_mapping(response, key), "value", key)):
        if type(resource) is dict:
            yield f"{key}.value[{index}]", resource
        else:
            where = f"{key}.value[{index}]"
            yield where, get_mapping(resource, where)


# -- virtual machines -------------------------------------------------------------------------


def _image_ref(reference: Mapping, where: str) -> str | None:
    resource_id = get_str(reference, "id", where)
    if resource_id:
        exact = get_str(reference, "exactVersion", where)
        if exact and _is_gallery_definition(resource_id):
            # Deployed from a gallery image definition ("latest"): ARM reports the version used.
            resource_id = f"{resource_id.rstrip('/')}/versions/{exact}"
        return resource_id.lower()
    for key in ("sharedGalleryImageId", "communityGalleryImageId"):
        other = get_str(reference, key, where)
        if other:
            return other.lower()
    publisher = get_str(reference, "publisher", where)
    if publisher:
        parts = [publisher] + [get_str(reference, key, where) or "" for key in ("offer", "sku", "version")]
        return ":".join(parts)
    return None


def _power_state(properties: Mapping, view: Mapping, where: str) -> str:
    for index, status in enumerate(get_list(view, "statuses", f"{where}.instanceView")):
        swhere = f"{where}.instanceView.statuses[{index}]"
        code = get_str(get_mapping(status, swhere), "code", swhere, required=True)
        if code.startswith("PowerState/"):
            return POWER_STATES.get(code[11:].lower(), "unknown")
    provisioning = (properties.get("provisioningState") or "").lower()
    if provisioning == "creating":
        return "pending"
    if provisioning == "deleting":
        return "terminated"
    return "unknown"


def _primary_nic_id(properties: Mapping, where: str) -> str | None:
    nwhere = f"{where}.networkProfile"
    nics = get_list(get_optional_mapping(properties, "networkProfile", where), "networkInterfaces", nwhere)
    chosen = None
    for index, nic in enumerate(nics):
        nic = get_mapping(nic, f"{nwhere}.networkInterfaces[{index}]")
        if chosen is None or get_optional_mapping(nic, "properties", nwhere).get("primary"):
            chosen = (index, nic)
    if chosen is None:
        return None
    index, nic = chosen
    return get_str(nic, "id", f"{nwhere}.networkInterfaces[{index}]", required=True)


_Nic = tuple[str | None, str | None, tuple[str | None, str | None]]  # private IP, public IP id, (vnet, subnet)
_NO_NIC: _Nic = (None, None, (None, None))


def _nic_table(payload: Mapping) -> dict[str, _Nic]:
    """NIC id (lower case) -> (private IP, public IP resource id (lower case), (vnet, subnet))."""
    table: dict[str, _Nic] = {}
    networks: dict[str, tuple[str | None, str | None]] = {}  # subnet id -> (vnet, subnet): a handful
    for where, nic in _collection(payload, "networkInterfaces"):
        nic_id = get_str(nic, "id", where, required=True)
        pwhere = f"{where}.properties"
        chosen: Mapping = EMPTY
        configs = get_list(get_optional_mapping(nic, "properties", where), "ipConfigurations", pwhere)
        for index, config in enumerate(configs):
            cwhere = f"{pwhere}.ipConfigurations[{index}]"
            props = get_optional_mapping(get_mapping(config, cwhere), "properties", cwhere)
            if chosen is EMPTY or props.get("primary"):
                chosen = props
        public_id = get_optional_mapping(chosen, "publicIPAddress", pwhere).get("id")
        subnet_id = get_optional_mapping(chosen, "subnet", pwhere).get("id")
        network = networks.get(subnet_id) if isinstance(subnet_id, str) else (None, None)
        if network is None:
            network = networks[subnet_id] = (_segment_after(subnet_id, "virtualnetworks"), last_segment(subnet_id))
        table[nic_id.lower()] = (
            chosen.get("privateIPAddress"),
            public_id.lower() if isinstance(public_id, str) else None,
            network,
        )
    return table


def _public_ip_table(payload: Mapping) -> dict[str, str | None]:
    table: dict[str, str | None] = {}
    for where, pip in _collection(payload, "publicIPAddresses"):
        pip_id = get_str(pip, "id", where, required=True)
        table[pip_id.lower()] = get_optional_mapping(pip, "properties", where).get("ipAddress")
    return table


def _customer_keyed_disks(payload: Mapping) -> set[str]:
    """Ids (lower case) of the managed disks whose own resource says the customer holds the key:
    a customer-managed key (`encryption.type` ...WithCustomerKey / ...WithPlatformAndCustomerKeys)
    or Azure Disk Encryption (`encryptionSettingsCollection.enabled`)."""
    found: set[str] = set()
    for where, disk in _collection(payload, "disks"):
        properties = get_optional_mapping(disk, "properties", where)
        encryption_type = get_optional_mapping(properties, "encryption", f"{where}.properties").get("type")
        ade = get_optional_mapping(properties, "encryptionSettingsCollection", f"{where}.properties").get("enabled")
        if ade is True or (isinstance(encryption_type, str) and "customerkey" in encryption_type.lower()):
            disk_id = get_str(disk, "id", where)
            if disk_id:
                found.add(disk_id.lower())
    return found


def _disk_encryption(disk: Mapping, where: str, customer_keyed: set[str]) -> str | None:
    managed = disk.get("managedDisk")
    if managed is not None:
        managed = get_mapping(managed, f"{where}.managedDisk")
        des = managed.get("diskEncryptionSet")
        settings = disk.get("encryptionSettings")
        disk_id = managed.get("id")
        if (
            (isinstance(des, AbcMapping) and des.get("id"))
            or (isinstance(settings, AbcMapping) and settings.get("enabled") is True)
            or (isinstance(disk_id, str) and disk_id.lower() in customer_keyed)
        ):
            return ENCRYPTION_CUSTOMER
        return ENCRYPTION_PLATFORM
    if disk.get("vhd") is not None:
        settings = disk.get("encryptionSettings")
        return ENCRYPTION_CUSTOMER if isinstance(settings, AbcMapping) and settings.get("enabled") is True else ENCRYPTION_NONE
    return None


def _vm_encryption(storage: Mapping, swhere: str, customer_keyed: set[str]) -> str | None:
    values = []
    os_disk = storage.get("osDisk")
    if os_disk is not None:
        values.append(_disk_encryption(get_mapping(os_disk, f"{swhere}.osDisk"), f"{swhere}.osDisk", customer_keyed))
    for index, data_disk in enumerate(get_list(storage, "dataDisks", swhere)):
        dwhere = f"{swhere}.dataDisks[{index}]"
        values.append(_disk_encryption(get_mapping(data_disk, dwhere), dwhere, customer_keyed))
    return weakest_encryption(values)


def _vm(
    vm: Mapping,
    where: str,
    site: Site,
    discovered_at: datetime,
    nics: Mapping[str, _Nic],
    public_ips: Mapping[str, str | None],
    make_tags: TagCache,
    customer_keyed: set[str],
) -> AssetRecord:
    vm_resource_id = get_str(vm, "id", where, required=True)
    name = get_str(vm, "name", where, required=True)
    pwhere = f"{where}.properties"
    properties = vm.get("properties")
    if properties is None:
        raise PayloadError(pwhere, "required field is missing")
    properties = get_mapping(properties, pwhere)
    vm_id = get_str(properties, "vmId", pwhere, required=True)

    swhere = f"{pwhere}.storageProfile"
    storage = get_optional_mapping(properties, "storageProfile", pwhere)
    reference = storage.get("imageReference")
    image_ref = None
    if reference is not None:
        image_ref = _image_ref(get_mapping(reference, f"{swhere}.imageReference"), f"{swhere}.imageReference")
    os_type = get_str(get_optional_mapping(storage, "osDisk", swhere), "osType", f"{swhere}.osDisk")
    view = get_optional_mapping(properties, "instanceView", pwhere)
    os_name = view.get("osName")
    os = f"{os_name} {view.get('osVersion') or ''}".rstrip() if os_name else os_type

    zones = get_list(vm, "zones", where)
    nic_id = _primary_nic_id(properties, pwhere)
    private_ip = public_ip = None
    vnet = subnet = None
    if nic_id:
        private_ip, public_ip_id, (vnet, subnet) = nics.get(nic_id.lower(), _NO_NIC)
        public_ip = public_ips.get(public_ip_id) if public_ip_id else None
    time_created = properties.get("timeCreated")
    launched_at = parse_timestamp(time_created, f"{pwhere}.timeCreated") if time_created is not None else None
    hardware = get_optional_mapping(properties, "hardwareProfile", pwhere)
    security = get_optional_mapping(properties, "securityProfile", pwhere)
    return AssetRecord(
        asset_id=f"azure:{site.id}:{vm_id}",
        site_id=site.id,
        provider=PROVIDER,
        native_id=vm_id,
        kind="vm",
        name=name,
        state=_power_state(properties, view, pwhere),
        discovered_at=discovered_at,
        image_ref=image_ref,
        platform=os_type.lower() if os_type else None,
        os=os,
        instance_type=get_str(hardware, "vmSize", f"{pwhere}.hardwareProfile"),
        region=get_str(vm, "location", where),
        zone=str(zones[0]) if zones else None,
        network=last_segment(nic_id),
        private_ip=private_ip,
        public_ip=public_ip,
        disk_encryption=_vm_encryption(storage, swhere, customer_keyed),
        launched_at=launched_at,
        tags=make_tags(get_str_map(vm, "tags", where, "tag")),
        attributes_json=compact_json(
            {
                "computerName": get_optional_mapping(properties, "osProfile", pwhere).get("computerName"),
                "encryptionAtHost": security.get("encryptionAtHost"),
                "licenseType": properties.get("licenseType"),
                "priority": properties.get("priority"),
                "provisioningState": properties.get("provisioningState"),
                "resourceGroup": _resource_group(vm_resource_id),
                "resourceId": vm_resource_id,
                "subnet": subnet,
                "virtualNetwork": vnet,
            }
        ),
    )


# -- images -----------------------------------------------------------------------------------


def _definition_table(payload: Mapping) -> dict[str, Mapping]:
    """Gallery image definition id (lower case) -> its properties."""
    table: dict[str, Mapping] = {}
    for where, definition in _collection(payload, "galleryImages"):
        definition_id = get_str(definition, "id", where, required=True)
        table[definition_id.lower().rstrip("/")] = get_optional_mapping(definition, "properties", where)
    return table


def _gallery_version(
    version: Mapping, where: str, site: Site, discovered_at: datetime, definitions: Mapping[str, Mapping]
) -> ImageRecord:
    resource_id = get_str(version, "id", where, required=True)
    name = get_str(version, "name", where, required=True)
    tags = get_str_map(version, "tags", where, "tag")
    properties = get_optional_mapping(version, "properties", where)
    publishing = get_optional_mapping(properties, "publishingProfile", f"{where}.properties")
    definition_id = resource_id.rstrip("/").rpartition("/versions/")[0]
    os_type = definitions.get(definition_id.lower(), EMPTY).get("osType")
    os_type = os_type if isinstance(os_type, str) else None
    version_text = tags.get(VERSION_TAG) or name
    gallery, definition_name = _gallery_parts(resource_id) or (None, None)
    published = publishing.get("publishedDate")
    parent_image, parent_relation = image_parent(tags)
    return ImageRecord(
        provider_image_id=resource_id.lower(),
        site_id=site.id,
        provider=PROVIDER,
        name=f"{gallery}/{definition_name}/{name}" if gallery else name,
        discovered_at=discovered_at,
        family=tags.get(FAMILY_TAG) or definition_name,
        version=version_text,
        version_key=version_sort_key(version_text),
        status=image_status(tags),
        region=get_str(version, "location", where),
        platform=os_type.lower() if os_type else None,
        os=os_type,
        created_at=parse_timestamp(published, f"{where}.properties.publishingProfile.publishedDate"),
        tags=tags_from_mapping(tags),
        parent_image=parent_image,
        parent_relation=parent_relation,
    )


def _managed_image(image: Mapping, where: str, site: Site, discovered_at: datetime) -> ImageRecord:
    resource_id = get_str(image, "id", where, required=True)
    tags = get_str_map(image, "tags", where, "tag")
    properties = get_optional_mapping(image, "properties", where)
    storage = get_optional_mapping(properties, "storageProfile", f"{where}.properties")
    os_type = get_str(
        get_optional_mapping(storage, "osDisk", f"{where}.properties.storageProfile"),
        "osType",
        f"{where}.properties.storageProfile.osDisk",
    )
    version = tags.get(VERSION_TAG) or None
    parent_image, parent_relation = image_parent(tags)
    return ImageRecord(
        provider_image_id=resource_id.lower(),
        site_id=site.id,
        provider=PROVIDER,
        name=get_str(image, "name", where) or last_segment(resource_id) or resource_id,
        discovered_at=discovered_at,
        family=tags.get(FAMILY_TAG) or None,
        version=version,
        version_key=version_sort_key(version),
        status=image_status(tags),
        region=get_str(image, "location", where),
        platform=os_type.lower() if os_type else None,
        os=os_type,
        created_at=parse_timestamp(tags.get(CREATED_TAG), f"{where}.tags.{CREATED_TAG}"),
        tags=tags_from_mapping(tags),
        parent_image=parent_image,
        parent_relation=parent_relation,
    )


@gc_paused()
def normalize(payload: Mapping, site: Site, discovered_at: datetime) -> Discovery:
    payload = get_mapping(payload, "$")
    nics = _nic_table(payload)
    public_ips = _public_ip_table(payload)
    definitions = _definition_table(payload)
    customer_keyed = _customer_keyed_disks(payload)
    make_tags = TagCache()

    found = Discovery()
    for where, vm in _collection(payload, "virtualMachines", required=True):
        found.assets.append(_vm(vm, where, site, discovered_at, nics, public_ips, make_tags, customer_keyed))
    for where, version in _collection(payload, "galleryImageVersions"):
        found.images.append(_gallery_version(version, where, site, discovered_at, definitions))
    for where, image in _collection(payload, "images"):
        found.images.append(_managed_image(image, where, site, discovered_at))
    return found
