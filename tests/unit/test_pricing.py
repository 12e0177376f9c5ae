"""The price catalog (bundled YAML, QLRF_INSTANCE_PRICES override, validation naming the file) and
the cost arithmetic of the `cost_estimate` planner tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from qlrf_pipelines.planning.pricing import (
    BUNDLED_PRICES_FILE,
    PRICES_ENV,
    PriceCatalogError,
    estimate,
    load_price_catalog,
)

# Instance types / sizes / machine types the bundled sample estate runs (sample_data/*), and the
# ones deliberately left out of the bundled catalog (no confident list price): those must come out
# unpriced, never guessed.
SAMPLE_TYPES = {
    "aws": {"t3.medium", "m6i.large", "m6i.xlarge", "m6i.2xlarge", "c6i.xlarge", "c6i.2xlarge", "r6i.large",
            "r6i.xlarge", "r6i.2xlarge", "p4d.24xlarge", "x2iedn.32xlarge"},
    "azure": {"Standard_B2ms", "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5", "Standard_D4as_v5",
              "Standard_E4s_v5", "Standard_E8s_v5", "Standard_E16s_v5"},
    "gcp": {"e2-medium", "e2-standard-2", "e2-standard-4", "n2-standard-2", "n2-standard-4", "n2-standard-8",
            "n2-highmem-4", "c3-standard-8"},
}
NOT_IN_BUNDLED = {"azure": "Standard_M416ms_v2", "gcp": "m2-ultramem-416"}


def vm(asset_id, provider, instance_type, region=None, state="running", kind="vm", **extra):
    return {"asset_id": asset_id, "provider": provider, "kind": kind, "state": state, "platform": "linux",
            "instance_type": instance_type, "region": region, **extra}


@pytest.fixture
def bundled():
    return load_price_catalog(environ={})


def write(tmp_path: Path, doc, name="prices.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return path


# -- the bundled catalog ------------------------------------------------------------------------


def test_bundled_catalog_has_a_date_a_source_and_the_sample_types(bundled):
    assert bundled.as_of == "2024-10-01" and bundled.currency == "USD" and bundled.hours_per_month == 730
    [entry] = bundled.files
    assert entry.path == str(BUNDLED_PRICES_FILE) and "price lists" in entry.source
    for provider, types in SAMPLE_TYPES.items():
        assert types <= set(bundled.instance_types(provider)), provider
    for provider, name in NOT_IN_BUNDLED.items():
        assert name not in bundled.instance_types(provider)
    assert set(bundled.capacity) == {"vsphere", "kubernetes"}


def test_bundled_prices_are_ordered_within_a_family(bundled):
    # a sanity check of the data: bigger sizes of a family cost more, twice as much per doubling
    aws = bundled.providers["aws"].instance_types
    assert aws["m6i.large"] * 2 == pytest.approx(aws["m6i.xlarge"])
    assert aws["m6i.xlarge"] * 2 == pytest.approx(aws["m6i.2xlarge"])
    assert aws["r6i.large"] < aws["r6i.xlarge"] < aws["r6i.2xlarge"]
    gcp = bundled.providers["gcp"].instance_types
    assert gcp["n2-standard-2"] * 2 == pytest.approx(gcp["n2-standard-4"])
    assert bundled.providers["aws"].regions["eu-west-1"]["m6i.large"] > aws["m6i.large"]


# -- pricing one asset --------------------------------------------------------------------------


def test_list_price_in_the_assets_region_or_the_reference_region(bundled):
    in_region = bundled.price(vm("a", "aws", "m6i.large", "eu-west-1"))
    assert in_region.hourly_usd == 0.107 and in_region.region == "eu-west-1"
    assert in_region.basis == "aws m6i.large list price in eu-west-1"
    reference = bundled.price(vm("b", "aws", "m6i.large", "us-east-1"))
    assert reference.hourly_usd == 0.096 and reference.basis == "aws m6i.large list price in us-east-1"
    elsewhere = bundled.price(vm("c", "azure", "Standard_D4s_v5", "westeurope"))
    assert elsewhere.hourly_usd == 0.192 and elsewhere.region == "eastus"
    assert "(no westeurope price in the catalog)" in elsewhere.basis


def test_unknown_types_and_sizes_are_unpriced_never_guessed(bundled):
    for provider, name in NOT_IN_BUNDLED.items():
        price = bundled.price(vm("x", provider, name, "westeurope"))
        assert not price.priced and price.reason == f"{provider} instance type {name} is not in the price catalog"
    assert bundled.price(vm("y", "aws", None)).reason == "no instance type known"
    assert not bundled.price(vm("z", "vsphere", None, cpu_count=4, memory_mb=None)).priced
    workload = bundled.price(vm("w", "kubernetes", None, kind="workload"))
    assert not workload.priced and "runs on nodes" in workload.reason


def test_capacity_rate_and_kubernetes_nodes(bundled):
    vsphere = bundled.price(vm("v", "vsphere", None, cpu_count=4, memory_mb=16384))
    assert vsphere.hourly_usd == pytest.approx(4 * 0.02 + 16 * 0.003)
    assert vsphere.basis == "vsphere capacity rate: 4 vCPU x 0.02 + 16 GiB x 0.003"
    # an EKS node of a listed AWS type is that VM; an unlisted one falls back to the k8s capacity rate
    node = bundled.price(vm("n", "kubernetes", "r6i.xlarge", "us-east-1", kind="node", cpu_count=4, memory_mb=32768))
    assert node.hourly_usd == 0.252 and node.provider == "aws"
    other = bundled.price(vm("o", "kubernetes", "custom-8", "dc1", kind="node", cpu_count=8, memory_mb=32768))
    assert other.hourly_usd == pytest.approx(8 * 0.03 + 32 * 0.004) and other.provider == "kubernetes"


# -- the estimate -------------------------------------------------------------------------------


def test_estimate_totals_skip_stopped_and_unpriced(bundled):
    assets = [
        vm("a1", "aws", "m6i.xlarge", "us-east-1"),
        vm("a2", "aws", "m6i.xlarge", "us-east-1"),
        vm("a3", "aws", "m6i.xlarge", "us-east-1", state="stopped"),
        vm("a4", "aws", "t3.medium", "eu-west-1"),
        vm("z1", "azure", "Standard_M416ms_v2", "westeurope"),
        vm("k1", "kubernetes", None, kind="workload"),
        vm("k2", "kubernetes", None, kind="workload", state="terminated"),
    ]
    out = estimate(bundled, assets)
    assert out["asset_count"] == 7 and out["priced_count"] == 3 and out["unpriced_count"] == 1
    assert out["billed_count"] == 4 and out["on_nodes_count"] == 1
    assert out["not_billed"] == {"stopped": {"count": 1, "asset_ids": ["a3"]},
                                 "terminated": {"count": 1, "asset_ids": ["k2"]}}
    assert out["monthly_usd_now"] == round((2 * 0.192 + 0.0456) * 730, 2) == 313.61
    first = out["lines"][0]
    assert (first["instance_type"], first["count"], first["monthly_usd"]) == ("m6i.xlarge", 2, round(2 * 0.192 * 730, 2))
    [unpriced] = out["unpriced"]
    assert unpriced["asset_ids"] == ["z1"] and "Standard_M416ms_v2" in unpriced["reason"]
    assert "to_instance_type" not in out and "monthly_usd_after" not in out


def test_estimate_of_a_resize(bundled):
    assets = [vm(f"a{i}", "aws", "m6i.xlarge", "eu-west-1") for i in range(3)]
    assets.append(vm("v1", "vsphere", None, cpu_count=2, memory_mb=4096))
    out = estimate(bundled, assets, to_instance_type="m6i.large")
    assert out["priced_count"] == 4 and out["resized_count"] == 3
    assert out["monthly_usd_now_of_resized"] == round(3 * 0.214 * 730, 2) == 468.66
    assert out["monthly_usd_after"] == round(3 * 0.107 * 730, 2) == 234.33
    assert out["monthly_delta_usd"] == -234.33
    vsphere_line = next(line for line in out["lines"] if line["provider"] == "vsphere")
    assert vsphere_line["hourly_usd_after"] is None and vsphere_line["monthly_usd_after"] is None
    assert vsphere_line["unpriced_after"] == "a vsphere VM has no instance types to resize to"
    aws_line = next(line for line in out["lines"] if line["provider"] == "aws")
    assert aws_line["basis_after"] == "aws m6i.large list price in eu-west-1" and aws_line["monthly_usd_after"] == 234.33


def test_resize_to_an_unknown_type_is_unpriced(bundled):
    out = estimate(bundled, [vm("a", "aws", "m6i.large", "us-east-1")], to_instance_type="m7i.large")
    assert out["resized_count"] == 0 and out["monthly_usd_after"] == 0 and out["monthly_delta_usd"] == 0
    assert out["lines"][0]["unpriced_after"] == "aws instance type m7i.large is not in the price catalog"


# -- the override file --------------------------------------------------------------------------


def test_override_file_takes_precedence_and_extends(tmp_path):
    path = write(tmp_path, {
        "as_of": "2026-11-01", "source": "our negotiated rates",
        "providers": {
            "aws": {"instance_types": {"m6i.large": 0.08}, "regions": {"eu-west-1": {"m7i.large": 0.12}}},
            "azure": {"reference_region": "westeurope", "instance_types": {"Standard_M416ms_v2": 95.0}},
            "vsphere": {"per_vcpu_hour": 0.01, "per_gib_hour": 0.0},
        },
    })
    catalog = load_price_catalog(environ={PRICES_ENV: str(path)})
    assert [f.path for f in catalog.files] == [str(BUNDLED_PRICES_FILE), str(path)]
    assert catalog.as_of == "2026-11-01"
    assert catalog.price(vm("a", "aws", "m6i.large", "us-east-1")).hourly_usd == 0.08
    assert catalog.price(vm("b", "aws", "m6i.xlarge", "us-east-1")).hourly_usd == 0.192  # still bundled
    assert catalog.price(vm("c", "aws", "m6i.large", "eu-west-1")).hourly_usd == 0.107  # bundled region kept
    assert catalog.price(vm("d", "aws", "m7i.large", "eu-west-1")).hourly_usd == 0.12
    # a type priced only in another region is not priced at that region's price
    assert "no price for us-east-1" in catalog.price(vm("e", "aws", "m7i.large", "us-east-1")).reason
    big = catalog.price(vm("f", "azure", "Standard_M416ms_v2", "westeurope"))
    assert big.hourly_usd == 95.0 and big.basis == "azure Standard_M416ms_v2 list price in westeurope"
    assert catalog.price(vm("g", "vsphere", None, cpu_count=4, memory_mb=8192)).hourly_usd == 0.04


def test_a_json_file_is_yaml_too(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"as_of": "2026-01-31", "providers": {"gcp": {"instance_types": {"n4-standard-2": 0.1}}}}))
    catalog = load_price_catalog(environ={PRICES_ENV: str(path)})
    assert catalog.price(vm("a", "gcp", "n4-standard-2", "europe-west1")).hourly_usd == 0.1


@pytest.mark.parametrize("doc, message", [
    ("providers: [unclosed", "is not valid YAML"),
    ("", "is empty"),
    ("- just\n- a list\n", "must be a mapping, got list"),
    ({"providers": {}}, "as_of: is missing"),
    ({"as_of": "last week", "providers": {}}, "as_of: must be a date YYYY-MM-DD"),
    ({"as_of": "2026-01-01", "currency": "EUR"}, "currency: must be USD, got 'EUR'"),
    ({"as_of": "2026-01-01", "prices": {}}, "top level: unknown key(s) prices"),
    ({"as_of": "2026-01-01", "providers": {"oracle": {}}}, "providers.oracle: unknown provider 'oracle'"),
    ({"as_of": "2026-01-01", "providers": {"aws": {"types": {}}}}, "providers.aws: unknown key(s) types"),
    ({"as_of": "2026-01-01", "providers": {"aws": {"instance_types": {"m6i.large": "cheap"}}}},
     "providers.aws.instance_types.m6i.large: must be a positive number, got 'cheap'"),
    ({"as_of": "2026-01-01", "providers": {"aws": {"instance_types": {"m6i.large": -1}}}},
     "providers.aws.instance_types.m6i.large: must be a positive number, got -1"),
    ({"as_of": "2026-01-01", "providers": {"aws": {"instance_types": {"m6i.large": True}}}},
     "must be a positive number, got True"),
    ({"as_of": "2026-01-01", "providers": {"aws": {"regions": {"eu-west-1": [1]}}}},
     "providers.aws.regions.eu-west-1: must be a mapping, got list"),
    ({"as_of": "2026-01-01", "providers": {"vsphere": {"per_vcpu_hour": 0.01}}}, "providers.vsphere: missing per_gib_hour"),
    ({"as_of": "2026-01-01", "hours_per_month": 0}, "hours_per_month: must be a positive number, got 0"),
])
def test_a_malformed_price_file_is_an_error_naming_the_file(tmp_path, doc, message):
    path = write(tmp_path, doc)
    with pytest.raises(PriceCatalogError) as caught:
        load_price_catalog(environ={PRICES_ENV: str(path)})
    assert str(caught.value).startswith(f"price file {path}: ")
    assert message in str(caught.value)


def test_a_missing_override_file_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PriceCatalogError, match=f"price file {missing}: cannot be read"):
        load_price_catalog(environ={PRICES_ENV: str(missing)})


def test_an_empty_env_value_means_the_bundled_catalog_only():
    assert len(load_price_catalog(environ={PRICES_ENV: "  "}).files) == 1
