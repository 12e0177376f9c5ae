"""vSphere connector: property-collector payloads to canonical records, and the sample generator."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from datetime import datetime, timezone

import pytest

from qlrf_pipelines.connectors import provider_module, vsphere
from qlrf_pipelines.connectors.base import ConnectorError, PayloadError
from qlrf_pipelines.connectors.sample import discover_from_sample
from qlrf_pipelines.models import Tag, version_sort_key
from qlrf_pipelines.sample import gen_vsphere
from qlrf_pipelines.sample.catalog import MACHINE_IMAGE_VERSIONS, current_production
from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from qlrf_pipelines.sites import Site, load_sites
from tests.unit.connector_helpers import (
    ANCHORS,
    by_name,
    check_bundled_sample_drift,
    images_by_id,
    payload_fixture,
    production_site,
)

AT = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)

SITE = production_site(
    id="vsphere-dc1",
    provider="vsphere",
    name="vSphere Frankfurt DC1",
    location="dc1-frankfurt",
    account="vcenter01.corp.example.com",
)

payload = payload_fixture("vsphere/vcenter-small.json")


def test_registry_finds_the_module():
    assert provider_module("vsphere") is vsphere
    assert vsphere.PROVIDER == "vsphere"


def test_templates_become_images_with_golden_attributes(payload):
    discovery = vsphere.normalize(payload, SITE, AT)
    images = by_name(discovery.images)
    assert sorted(images) == ["tpl-scratch", "tpl-ubuntu-22-04-base-1-3-0", "tpl-windows-2022-base-2026-10"]

    ubuntu = images["tpl-ubuntu-22-04-base-1-3-0"]
    assert ubuntu.provider_image_id == "tpl-ubuntu-22-04-base-1-3-0"
    assert (ubuntu.site_id, ubuntu.provider) == ("vsphere-dc1", "vsphere")
    assert (ubuntu.family, ubuntu.version, ubuntu.status) == ("ubuntu-22.04-base", "1.3.0", "production")
    assert ubuntu.version_key == version_sort_key("1.3.0")
    assert ubuntu.created_at == datetime(2026, 9, 7, 10, 0, tzinfo=timezone.utc)
    assert (ubuntu.platform, ubuntu.os, ubuntu.region) == ("linux", "Ubuntu Linux (64-bit)", "dc1-frankfurt")
    assert ubuntu.discovered_at == AT
    assert Tag("qlrf.family", "ubuntu-22.04-base") in ubuntu.tags

    windows = images["tpl-windows-2022-base-2026-10"]
    assert (windows.family, windows.version) == ("windows-2022-base", "2026.10")
    assert windows.status is None, "a status outside IMAGE_STATUSES is dropped"
    assert windows.platform == "windows"
    assert windows.created_at == datetime(2026, 10, 8, 12, 0, tzinfo=timezone.utc)

    scratch = images["tpl-scratch"]
    assert (scratch.family, scratch.version, scratch.version_key, scratch.status) == (None, None, None, None)
    assert scratch.tags == []


def test_vms_become_assets(payload):
    discovery = vsphere.normalize(payload, SITE, AT)
    assert [a.name for a in discovery.assets] == ["app-payments-01", "db-ledger-01", "jump-01"]
    vms = by_name(discovery.assets)

    app = vms["app-payments-01"]
    assert app.asset_id == "vsphere:vsphere-dc1:5003aa11-bb22-cc33-dd44-ee5566778899"
    assert app.native_id == "5003aa11-bb22-cc33-dd44-ee5566778899"
    assert (app.kind, app.state, app.provider, app.site_id) == ("vm", "running", "vsphere", "vsphere-dc1")
    assert app.image_ref == "tpl-ubuntu-22-04-base-1-3-0"
    assert (app.os, app.platform) == ("Ubuntu Linux (64-bit)", "linux")
    assert (app.cpu_count, app.memory_mb) == (4, 8192)
    assert (app.region, app.zone) == ("dc1-frankfurt", "cl-frankfurt-01")
    assert app.network == "dvpg-app-vlan110", "first network's name"
    assert app.private_ip == "10.20.1.15"
    assert app.launched_at is None and app.public_ip is None
    assert app.tags == [Tag("owner", "team-payments"), Tag("qlrf.source-template", "tpl-ubuntu-22-04-base-1-3-0")]
    attributes = json.loads(app.attributes_json)
    assert attributes["host"] == "esx01.corp.example.com"
    assert attributes["cluster"] == "cl-frankfurt-01"
    assert attributes["moref"] == "vm-1001"
    assert attributes["toolsRunningStatus"] == "guestToolsRunning"
    assert attributes["toolsVersionStatus2"] == "guestToolsCurrent"
    assert attributes["datacenter"] == "dc1-frankfurt"
    assert attributes["datastores"] == ["vsan-cl-frankfurt-01"]
    assert attributes["annotation"] == "Managed by Terraform"

    db = vms["db-ledger-01"]
    assert (db.state, db.platform, db.image_ref) == ("stopped", "windows", "tpl-windows-2022-base-2026-10")
    assert db.zone == "cl-frankfurt-01", "host-22 is not in the cluster's host list, but its parent is the cluster"
    assert db.network == "VM Network"
    assert db.private_ip is None
    assert json.loads(db.attributes_json)["host"] == "esx02.corp.example.com"

    jump = vms["jump-01"]
    assert jump.state == "stopped", "suspended counts as stopped"
    assert jump.image_ref is None and jump.tags == []
    assert jump.zone is None and jump.network is None
    assert json.loads(jump.attributes_json)["host"] == "host-99", "an unknown host keeps its moref"


def test_disk_encryption_is_vm_encryption(payload):
    vms = by_name(vsphere.normalize(payload, SITE, AT).assets)
    # Encrypted with a key of the customer's key provider.
    assert vms["app-payments-01"].disk_encryption == "customer_managed"
    assert json.loads(vms["app-payments-01"].attributes_json)["keyProvider"] == "kms-dc1"
    # No keyId: vCenter leaves the property unset on VMs that are not encrypted.
    assert vms["db-ledger-01"].disk_encryption == "none"
    assert "keyProvider" not in json.loads(vms["db-ledger-01"].attributes_json)


def test_a_vm_without_config_has_no_disk_encryption(payload):
    vm = payload["VirtualMachine"][5]["propSet"]
    for key in [k for k in vm if k.startswith("config.")]:
        del vm[key]
    assert by_name(vsphere.normalize(payload, SITE, AT).assets)["jump-01"].disk_encryption is None


def test_an_empty_key_id_is_not_encryption(payload):
    payload["VirtualMachine"][3]["propSet"]["config.keyId"] = {}
    assert by_name(vsphere.normalize(payload, SITE, AT).assets)["app-payments-01"].disk_encryption == "none"


def test_power_states_map_to_canonical_states(payload):
    vm = payload["VirtualMachine"][3]["propSet"]
    states = {}
    for power in ("poweredOn", "poweredOff", "suspended", "somethingNew"):
        vm["runtime.powerState"] = power
        states[power] = by_name(vsphere.normalize(payload, SITE, AT).assets)["app-payments-01"].state
    assert states == {"poweredOn": "running", "poweredOff": "stopped", "suspended": "stopped", "somethingNew": "unknown"}


def test_custom_value_without_definition_is_kept_by_key(payload):
    payload["VirtualMachine"][3]["propSet"]["customValue"].append({"key": 999, "value": "x"})
    app = by_name(vsphere.normalize(payload, SITE, AT).assets)["app-payments-01"]
    assert Tag("999", "x") in app.tags


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p["VirtualMachine"][3]["propSet"].pop("name"), "VirtualMachine[3].propSet.name"),
        (lambda p: p["VirtualMachine"][4]["propSet"].pop("config.instanceUuid"), "VirtualMachine[4].propSet.config.instanceUuid"),
        (lambda p: p["VirtualMachine"][3]["propSet"].update({"config.hardware.numCPU": "four"}),
         "VirtualMachine[3].propSet.config.hardware.numCPU"),
        (lambda p: p["VirtualMachine"][3]["propSet"]["customValue"][1].update({"key": "owner"}),
         "VirtualMachine[3].propSet.customValue[1].key"),
        (lambda p: p["VirtualMachine"][0]["propSet"].update({"config.createDate": "yesterday"}),
         "VirtualMachine[0].propSet.config.createDate"),
        (lambda p: p["VirtualMachine"][3]["propSet"].update({"config.keyId": "8f14e45f"}),
         "VirtualMachine[3].propSet.config.keyId"),
        (lambda p: p["VirtualMachine"][2]["propSet"].update({"config.template": "yes"}),
         "VirtualMachine[2].propSet.config.template"),
        (lambda p: p["VirtualMachine"][5].pop("propSet"), "VirtualMachine[5].propSet"),
        (lambda p: p["HostSystem"][1].pop("obj"), "HostSystem[1].obj"),
        (lambda p: p["customFieldDefs"][2].pop("key"), "customFieldDefs[2].key"),
        (lambda p: p.pop("VirtualMachine"), "VirtualMachine"),
        (lambda p: p.update({"Network": {"obj": "network-31"}}), "Network"),
    ],
)
def test_malformed_payload_names_the_path(payload, mutate, where):
    mutate(payload)
    with pytest.raises(PayloadError) as error:
        vsphere.normalize(payload, SITE, AT)
    assert error.value.where == where
    assert str(error.value).startswith(f"{where}: ")


def test_sample_connector_reports_payload_errors_with_site_and_file(payload, tmp_path):
    del payload["VirtualMachine"][3]["propSet"]["name"]
    path = tmp_path / "vsphere.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ConnectorError) as error:
        discover_from_sample(SITE, path, AT)
    message = str(error.value)
    assert "vsphere-dc1" in message and str(path) in message and "VirtualMachine[3].propSet.name" in message


# --- the sample generator --------------------------------------------------------------------


def _generate(n: int, seed: int = 7, site: Site = SITE) -> dict:
    return gen_vsphere.generate_payload(site, n, random.Random(seed))


def test_generated_payload_has_a_template_per_catalog_version():
    payload = _generate(60)
    discovery = vsphere.normalize(payload, SITE, AT)
    images = by_name(discovery.images)
    assert len(images) == len(MACHINE_IMAGE_VERSIONS)
    for version in MACHINE_IMAGE_VERSIONS:
        image = images[f"tpl-{version.slug}"]
        assert (image.family, image.version, image.status) == (version.family, version.version, version.status)
        assert image.created_at == version.created_at
        assert image.platform == version.platform
        assert image.region == SITE.location
    assert images["tpl-windows-2022-base-2026-10"].os == "Microsoft Windows Server 2022 (64-bit)"


def test_generated_payload_starts_with_the_anchors():
    payload = _generate(60)
    discovery = vsphere.normalize(payload, SITE, AT)
    assert len(discovery.assets) == 60
    anchors = discovery.assets[:4]
    assert [a.name for a in anchors] == ANCHORS
    current = current_production("ubuntu-22.04-base")
    assert current.version == "1.3.0"
    assert [a.image_ref for a in anchors] == [
        f"tpl-{current.slug}",
        "tpl-ubuntu-22-04-base-1-0-0",
        "tpl-rhel-9-base-9-2-1",
        "tpl-handmade-centos7",
    ]
    assert all(a.state == "running" for a in anchors)
    templates = {i.provider_image_id for i in discovery.images}
    assert "tpl-handmade-centos7" not in templates
    assert anchors[2].os == "Red Hat Enterprise Linux 9 (64-bit)"
    assert anchors[3].os == "CentOS 7 (64-bit)"
    # Every VM has a unique asset id, a zone (cluster) and a network from the inventory.
    assert len({a.asset_id for a in discovery.assets}) == 60
    clusters = {c["propSet"]["name"] for c in payload["ClusterComputeResource"]}
    assert 2 <= len(clusters) <= 3
    assert {a.zone for a in discovery.assets} <= clusters
    assert all(a.network and a.region == "dc1-frankfurt" for a in discovery.assets)


def test_generated_payload_is_deterministic_and_json_serialisable():
    first, second = _generate(200, seed=11), _generate(200, seed=11)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert json.loads(json.dumps(first)) == first
    assert json.dumps(_generate(200, seed=12)) != json.dumps(first)


def test_generated_mix_of_images_power_states_and_names():
    payload = _generate(5000)
    discovery = vsphere.normalize(payload, SITE, AT)
    images = images_by_id(discovery)
    random_vms = discovery.assets[4:]
    status = Counter(
        "unknown" if a.image_ref not in images
        else "current" if images[a.image_ref].version == current_production(images[a.image_ref].family).version
        else images[a.image_ref].status
        for a in random_vms
    )
    share = {k: v / len(random_vms) for k, v in status.items()}
    assert 0.50 < share["current"] < 0.60
    assert 0.16 < share["production"] < 0.24, "older production versions"
    assert 0.03 < share["revoked"] < 0.06
    assert 0.03 < share["testing"] < 0.07
    assert 0.04 < share["unknown"] < 0.08
    states = Counter(a.state for a in random_vms)
    assert 0.85 < states["running"] / len(random_vms) < 0.91
    prefixes = Counter(a.name.split("-")[0] for a in random_vms)
    assert set(prefixes) == {"app", "db", "web", "jump"}
    # Guest OS matches the template the VM was cloned from.
    for vm in random_vms[:500]:
        if vm.image_ref in images:
            assert vm.os == images[vm.image_ref].os
    running_tools = Counter(json.loads(a.attributes_json)["toolsRunningStatus"] for a in random_vms if a.state == "running")
    assert running_tools.most_common(1)[0][0] == "guestToolsRunning"
    # IPs only on running VMs with tools up.
    assert all(a.private_ip is None for a in random_vms if a.state != "running")


def test_generated_estate_meets_the_desired_state_but_for_a_few():
    """VM Encryption, running tools and governance attributes on all but about 1% of the VMs per
    rule (common.DriftPlan)."""
    discovery = vsphere.normalize(_generate(5000), SITE, AT)
    vms = discovery.assets
    encryption = Counter(a.disk_encryption for a in vms)
    assert set(encryption) == {"customer_managed", "none"}
    assert 0.002 < encryption["none"] / len(vms) < 0.03
    running = [a for a in vms if a.state == "running"]
    tools_down = sum(json.loads(a.attributes_json)["toolsRunningStatus"] != "guestToolsRunning" for a in running)
    assert 0.002 < tools_down / len(running) < 0.03
    tags = [{t.key for t in a.tags} for a in vms]
    assert 0.002 < sum(not {"owner", "cost-center"} <= keys for keys in tags) / len(tags) < 0.03
    assert 0.002 < sum("backup-policy" not in keys for keys in tags) / len(tags) < 0.03


def test_generated_payload_for_the_bundled_site_goes_through_the_sample_connector(tmp_path):
    site = load_sites(BUNDLED_SITES_FILE).site("vsphere-dc1")
    path = tmp_path / "vsphere-dc1.json"
    path.write_text(json.dumps(_generate(50, site=site)))
    discovery = discover_from_sample(site, path, AT)
    assert len(discovery.assets) == 50 and len(discovery.images) == len(MACHINE_IMAGE_VERSIONS)
    assert discovery.assets[0].asset_id.startswith("vsphere:vsphere-dc1:50")


def test_generator_refuses_too_few_assets():
    with pytest.raises(ValueError):
        _generate(3)


def test_normalize_does_not_modify_the_payload(payload):
    before = copy.deepcopy(payload)
    vsphere.normalize(payload, SITE, AT)
    assert payload == before


def test_an_inaccessible_vm_without_config_is_kept_by_moref():
    from datetime import datetime, timezone

    from qlrf_pipelines.connectors import vsphere
    from qlrf_pipelines.sites import Site

    site = Site(id="vc-lab", provider="vsphere", name="lab", location="dc1", environment="production")
    payload = {"VirtualMachine": [{"obj": "vm-77", "propSet": {"name": "orphan-01", "runtime.powerState": "poweredOff"}}]}
    (asset,) = vsphere.normalize(payload, site, datetime(2026, 11, 1, tzinfo=timezone.utc)).assets
    assert (asset.asset_id, asset.name, asset.state) == ("vsphere:vc-lab:moref-vm-77", "orphan-01", "stopped")


@pytest.mark.parametrize("site_id", ["vsphere-dc1"])
def test_bundled_sample_breaks_exactly_the_documented_rules(site_id):
    """The stored sample payload carries the deliberate drift of DELIBERATE_DRIFT, and no other
    (tests/fixtures/sample_drift_expectations.yaml, which the drift and compliance tests use)."""
    check_bundled_sample_drift(site_id, AT)
