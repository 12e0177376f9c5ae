"""Instance prices and the cost arithmetic of the `cost_estimate` planner tool.

The price catalog is a YAML file of hourly on-demand list prices per provider and instance type
(bundled: instance_prices.yaml beside this module, see its header for the shape). A user file
named by QLRF_INSTANCE_PRICES is merged over it: its entries take precedence, anything it does not
list comes from the bundled file. Pure code: no warehouse, no network. An instance type that is in
no catalog is reported as unpriced, never guessed; a malformed file is a PriceCatalogError naming
the file and the offending key.

Pricing of one asset (`PriceCatalog.price`):
- aws / azure / gcp VMs: the list price of their instance type in their region, or, when the
  catalog has no price for that region, in the provider's reference region (the basis says so);
- Kubernetes nodes: the list price of their instance type when a cloud provider's catalog lists
  it (the node is that VM), else the Kubernetes capacity rate from vCPUs and memory;
- vSphere VMs: the vSphere capacity rate (per vCPU-hour and per GiB-hour) from vCPUs and memory;
- Kubernetes workloads and containers are not priced: they run on nodes, which carry the cost.
Only billed states count (running, pending, degraded, unknown): stopped and terminated assets
pay no compute and are left out of the totals.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

BUNDLED_PRICES_FILE = Path(__file__).resolve().parent / "instance_prices.yaml"
PRICES_ENV = "QLRF_INSTANCE_PRICES"
CURRENCY = "USD"
DEFAULT_HOURS_PER_MONTH = 730.0

LIST_PRICE_PROVIDERS = ("aws", "azure", "gcp")
CAPACITY_PROVIDERS = ("vsphere", "kubernetes")
BILLED_STATES = ("running", "pending", "degraded", "unknown")
PRICED_KINDS = ("vm", "node")
_TOP_KEYS = {"as_of", "currency", "hours_per_month", "source", "providers"}
_LIST_KEYS = {"reference_region", "instance_types", "regions"}
_CAPACITY_KEYS = {"per_vcpu_hour", "per_gib_hour"}
_EXAMPLE_IDS = 20


class PriceCatalogError(ValueError):
    """A price file that cannot be used: missing, not YAML, or not of the catalog's shape."""


@dataclass(frozen=True)
class ProviderPrices:
    """List prices of one cloud provider: the reference region's, and other regions' where known."""

    reference_region: str | None = None
    instance_types: dict[str, float] = field(default_factory=dict)
    regions: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class CapacityRate:
    """A chargeback rate for capacity that has no list price (vSphere, Kubernetes)."""

    per_vcpu_hour: float
    per_gib_hour: float


@dataclass(frozen=True)
class CatalogFile:
    path: str
    as_of: str
    source: str


@dataclass(frozen=True)
class Price:
    """The hourly price of one asset, or why it has none (hourly_usd None, reason set)."""

    hourly_usd: float | None
    basis: str | None = None
    provider: str | None = None
    region: str | None = None
    reason: str | None = None

    @property
    def priced(self) -> bool:
        return self.hourly_usd is not None


@dataclass(frozen=True)
class PriceCatalog:
    files: tuple[CatalogFile, ...]
    hours_per_month: float = DEFAULT_HOURS_PER_MONTH
    currency: str = CURRENCY
    providers: dict[str, ProviderPrices] = field(default_factory=dict)
    capacity: dict[str, CapacityRate] = field(default_factory=dict)

    @property
    def as_of(self) -> str:
        """The date of the newest file (an override is usually newer than the bundled prices)."""
        return max(f.as_of for f in self.files)

    def instance_types(self, provider: str) -> list[str]:
        prices = self.providers.get(provider)
        if prices is None:
            return []
        known = set(prices.instance_types)
        for region in prices.regions.values():
            known.update(region)
        return sorted(known)

    def provider_of_type(self, instance_type: str) -> str | None:
        """The cloud provider whose catalog lists this instance type (names do not overlap)."""
        for provider in LIST_PRICE_PROVIDERS:
            if instance_type in self.instance_types(provider):
                return provider
        return None

    def list_price(self, provider: str, instance_type: str | None, region: str | None) -> Price:
        """The list price of an instance type of a cloud provider in a region."""
        if not instance_type:
            return Price(None, reason="no instance type known")
        prices = self.providers.get(provider)
        if prices is None:
            return Price(None, provider=provider, reason=f"no {provider} prices in the price catalog")
        if region and instance_type in prices.regions.get(region, {}):
            return Price(prices.regions[region][instance_type], f"{provider} {instance_type} list price in {region}",
                         provider, region)
        if instance_type in prices.instance_types:
            where = prices.reference_region or "the reference region"
            basis = f"{provider} {instance_type} list price in {where}"
            if region and region != prices.reference_region:
                basis += f" (no {region} price in the catalog)"
            return Price(prices.instance_types[instance_type], basis, provider, prices.reference_region)
        if region and any(instance_type in r for r in prices.regions.values()):
            return Price(None, provider=provider,
                         reason=f"{provider} instance type {instance_type} has no price for {region} in the price catalog")
        return Price(None, provider=provider, reason=f"{provider} instance type {instance_type} is not in the price catalog")

    def capacity_price(self, provider: str, cpu_count: Any, memory_mb: Any) -> Price:
        rate = self.capacity.get(provider)
        if rate is None:
            return Price(None, provider=provider, reason=f"no {provider} capacity rate in the price catalog")
        if not cpu_count or not memory_mb:
            return Price(None, provider=provider, reason=f"{provider} asset of unknown size (vCPUs or memory missing)")
        gib = float(memory_mb) / 1024
        hourly = float(cpu_count) * rate.per_vcpu_hour + gib * rate.per_gib_hour
        basis = f"{provider} capacity rate: {int(cpu_count)} vCPU x {rate.per_vcpu_hour} + {gib:g} GiB x {rate.per_gib_hour}"
        return Price(round(hourly, 6), basis, provider)

    def price(self, asset: Mapping[str, Any], instance_type: str | None = None) -> Price:
        """The hourly price of an asset (a row of `assets`), as it is or resized to `instance_type`."""
        provider = asset.get("provider")
        kind = asset.get("kind")
        wanted = instance_type or asset.get("instance_type")
        if kind not in PRICED_KINDS:
            return Price(None, provider=provider,
                         reason=f"a {kind or 'unknown kind'} is not priced: it runs on nodes, which carry the cost")
        if provider in LIST_PRICE_PROVIDERS:
            return self.list_price(provider, wanted, asset.get("region"))
        if provider == "kubernetes":
            cloud = self.provider_of_type(wanted) if wanted else None
            if cloud is not None:
                return self.list_price(cloud, wanted, asset.get("region"))
            if instance_type:
                return Price(None, provider=provider, reason=f"instance type {instance_type} is not in the price catalog")
            return self.capacity_price(provider, asset.get("cpu_count"), asset.get("memory_mb"))
        if provider in CAPACITY_PROVIDERS:
            if instance_type:
                return Price(None, provider=provider, reason=f"a {provider} VM has no instance types to resize to")
            return self.capacity_price(provider, asset.get("cpu_count"), asset.get("memory_mb"))
        return Price(None, provider=provider, reason=f"no prices for provider {provider!r}")

    def monthly(self, hourly: float) -> float:
        return hourly * self.hours_per_month

    def describe(self) -> dict[str, Any]:
        return {
            "currency": self.currency, "as_of": self.as_of, "hours_per_month": self.hours_per_month,
            "price_files": [{"path": f.path, "as_of": f.as_of, "source": f.source} for f in self.files],
        }


# ---------------------------------------------------------------- loading and validation

def _fail(path: Path, where: str, message: str) -> PriceCatalogError:
    return PriceCatalogError(f"price file {path}: {where}: {message}" if where else f"price file {path}: {message}")


def _number(path: Path, where: str, value: Any, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        wanted = "a number >= 0" if allow_zero else "a positive number"
        raise _fail(path, where, f"must be {wanted}, got {value!r}")
    return float(value)


def _mapping(path: Path, where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, where, f"must be a mapping, got {type(value).__name__}")
    return value


def _unknown(path: Path, where: str, data: Mapping[str, Any], known: set[str]) -> None:
    extra = sorted(str(k) for k in data if k not in known)
    if extra:
        raise _fail(path, where, f"unknown key(s) {', '.join(extra)}; known: {', '.join(sorted(known))}")


def _type_prices(path: Path, where: str, value: Any) -> dict[str, float]:
    prices = {}
    for name, price in _mapping(path, where, value).items():
        if not isinstance(name, str) or not name.strip():
            raise _fail(path, where, f"instance type names must be non-empty strings, got {name!r}")
        prices[name] = _number(path, f"{where}.{name}", price)
    return prices


def parse_catalog(path: Path | str, data: Any) -> tuple[CatalogFile, dict[str, Any]]:
    """Validate one price file's parsed YAML: its file entry and a normalised document."""
    path = Path(path)
    doc = _mapping(path, "", data) if data is not None else None
    if doc is None:
        raise _fail(path, "", "is empty")
    _unknown(path, "top level", doc, _TOP_KEYS)
    as_of = doc.get("as_of")
    if isinstance(as_of, date):
        as_of = as_of.isoformat()
    try:
        date.fromisoformat(str(as_of)) if as_of is not None else None
    except ValueError:
        raise _fail(path, "as_of", f"must be a date YYYY-MM-DD, got {as_of!r}") from None
    if as_of is None:
        raise _fail(path, "as_of", "is missing: say when the prices were taken (YYYY-MM-DD)")
    currency = doc.get("currency", CURRENCY)
    if currency != CURRENCY:
        raise _fail(path, "currency", f"must be {CURRENCY}, got {currency!r}")
    source = doc.get("source", "")
    if not isinstance(source, str):
        raise _fail(path, "source", f"must be text, got {type(source).__name__}")
    out: dict[str, Any] = {"providers": {}, "capacity": {}}
    if "hours_per_month" in doc:
        out["hours_per_month"] = _number(path, "hours_per_month", doc["hours_per_month"])
    for provider, spec in _mapping(path, "providers", doc.get("providers") or {}).items():
        where = f"providers.{provider}"
        spec = _mapping(path, where, spec)
        if provider in LIST_PRICE_PROVIDERS:
            _unknown(path, where, spec, _LIST_KEYS)
            reference = spec.get("reference_region")
            if reference is not None and not isinstance(reference, str):
                raise _fail(path, f"{where}.reference_region", f"must be a region name, got {reference!r}")
            regions = {
                str(region): _type_prices(path, f"{where}.regions.{region}", prices)
                for region, prices in _mapping(path, f"{where}.regions", spec.get("regions") or {}).items()
            }
            out["providers"][provider] = {
                "reference_region": reference,
                "instance_types": _type_prices(path, f"{where}.instance_types", spec.get("instance_types") or {}),
                "regions": regions,
            }
        elif provider in CAPACITY_PROVIDERS:
            _unknown(path, where, spec, _CAPACITY_KEYS)
            missing = sorted(_CAPACITY_KEYS - set(spec))
            if missing:
                raise _fail(path, where, f"missing {', '.join(missing)}")
            out["capacity"][provider] = {k: _number(path, f"{where}.{k}", spec[k], allow_zero=True) for k in _CAPACITY_KEYS}
        else:
            known = ", ".join(LIST_PRICE_PROVIDERS + CAPACITY_PROVIDERS)
            raise _fail(path, where, f"unknown provider {provider!r}; known: {known}")
    return CatalogFile(str(path), str(as_of), source.strip()), out


def read_price_file(path: Path | str) -> tuple[CatalogFile, dict[str, Any]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(path, "", f"cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(path, "", f"is not valid YAML ({exc})") from None
    return parse_catalog(path, data)


def merge(documents: Iterable[tuple[CatalogFile, dict[str, Any]]]) -> PriceCatalog:
    """Later documents take precedence, entry by entry."""
    files: list[CatalogFile] = []
    hours = DEFAULT_HOURS_PER_MONTH
    providers: dict[str, ProviderPrices] = {}
    capacity: dict[str, CapacityRate] = {}
    for entry, doc in documents:
        files.append(entry)
        hours = doc.get("hours_per_month", hours)
        for name, spec in doc["providers"].items():
            old = providers.get(name, ProviderPrices())
            regions = {r: dict(p) for r, p in old.regions.items()}
            for region, prices in spec["regions"].items():
                regions.setdefault(region, {}).update(prices)
            providers[name] = ProviderPrices(
                spec["reference_region"] or old.reference_region,
                {**old.instance_types, **spec["instance_types"]},
                regions,
            )
        for name, rate in doc["capacity"].items():
            capacity[name] = CapacityRate(rate["per_vcpu_hour"], rate["per_gib_hour"])
    return PriceCatalog(tuple(files), hours, CURRENCY, providers, capacity)


def load_price_catalog(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> PriceCatalog:
    """The bundled catalog (or `path`), with the QLRF_INSTANCE_PRICES file merged over it."""
    environ = os.environ if environ is None else environ
    documents = [read_price_file(path or BUNDLED_PRICES_FILE)]
    override = (environ.get(PRICES_ENV) or "").strip()
    if override:
        documents.append(read_price_file(Path(override).expanduser()))
    return merge(documents)


# ---------------------------------------------------------------- the estimate

def _money(value: float) -> float:
    return round(value + 0.0, 2)


def estimate(catalog: PriceCatalog, assets: Iterable[Mapping[str, Any]], to_instance_type: str | None = None) -> dict[str, Any]:
    """Monthly on-demand cost of the assets now and, with `to_instance_type`, after resizing each
    to it. Assets are rows of `assets` (asset_id, provider, kind, state, platform, instance_type,
    region, cpu_count, memory_mb).

    Stopped and terminated assets go to `not_billed`; Kubernetes workloads and containers are only
    counted (`on_nodes_count`: their nodes carry the cost); the rest is priced, in `lines` grouped
    by provider, instance type, platform and price basis, or listed in `unpriced` with the reason.
    `monthly_usd_now` sums the priced assets. With `to_instance_type`, `monthly_usd_after` and
    `monthly_delta_usd` compare the assets that are priced both now and after the resize
    (`resized_count`, `monthly_usd_now_of_resized`); a line whose resize cannot be priced says
    why in `unpriced_after`.
    """
    selected = list(assets)
    lines: dict[tuple, dict[str, Any]] = {}
    unpriced: dict[tuple, dict[str, Any]] = {}
    not_billed: dict[str, list[str]] = {}
    on_nodes: list[str] = []
    now_total = 0.0
    after_total = 0.0
    comparable_now = 0.0
    resized = 0
    priced = 0
    for asset in selected:
        asset_id = str(asset.get("asset_id"))
        state = asset.get("state") or "unknown"
        if state not in BILLED_STATES:
            not_billed.setdefault(state, []).append(asset_id)
            continue
        if asset.get("kind") not in PRICED_KINDS:
            on_nodes.append(asset_id)
            continue
        now = catalog.price(asset)
        if not now.priced:
            key = (asset.get("provider"), asset.get("instance_type"), now.reason)
            group = unpriced.setdefault(key, {
                "provider": key[0], "instance_type": key[1], "reason": now.reason, "count": 0, "asset_ids": [],
            })
            group["count"] += 1
            if len(group["asset_ids"]) < _EXAMPLE_IDS:
                group["asset_ids"].append(asset_id)
            continue
        priced += 1
        now_total += now.hourly_usd
        after = catalog.price(asset, to_instance_type) if to_instance_type else None
        key = (asset.get("provider"), asset.get("instance_type"), asset.get("platform"), now.basis,
               after.basis if after else None, after.reason if after else None)
        line = lines.get(key)
        if line is None:
            line = lines[key] = {
                "provider": asset.get("provider"), "instance_type": asset.get("instance_type"),
                "platform": asset.get("platform"), "count": 0, "hourly_usd": now.hourly_usd, "basis": now.basis,
                "_monthly": 0.0,
            }
            if to_instance_type:
                line.update({"to_instance_type": to_instance_type, "hourly_usd_after": after.hourly_usd,
                             "basis_after": after.basis, "_after": 0.0})
                if not after.priced:
                    line["unpriced_after"] = after.reason
        line["count"] += 1
        line["_monthly"] += catalog.monthly(now.hourly_usd)
        if after is not None and after.priced:
            resized += 1
            comparable_now += now.hourly_usd
            after_total += after.hourly_usd
            line["_after"] += catalog.monthly(after.hourly_usd)
    out_lines = []
    for line in sorted(lines.values(), key=lambda l: (-l["_monthly"], str(l["provider"]), str(l["instance_type"]))):
        line["monthly_usd"] = _money(line.pop("_monthly"))
        if "_after" in line:
            monthly_after = line.pop("_after")
            line["monthly_usd_after"] = _money(monthly_after) if line["hourly_usd_after"] is not None else None
        out_lines.append(line)
    result: dict[str, Any] = catalog.describe()
    result.update({
        "asset_count": len(selected),
        "billed_count": len(selected) - sum(len(v) for v in not_billed.values()) - len(on_nodes),
        "priced_count": priced,
        "unpriced_count": sum(g["count"] for g in unpriced.values()),
        "not_billed": {state: {"count": len(ids), "asset_ids": ids[:_EXAMPLE_IDS]} for state, ids in sorted(not_billed.items())},
        "on_nodes_count": len(on_nodes),
        "monthly_usd_now": _money(catalog.monthly(now_total)),
    })
    if to_instance_type:
        result.update({
            "to_instance_type": to_instance_type,
            "resized_count": resized,
            "monthly_usd_now_of_resized": _money(catalog.monthly(comparable_now)),
            "monthly_usd_after": _money(catalog.monthly(after_total)),
            "monthly_delta_usd": _money(catalog.monthly(after_total - comparable_now)),
        })
    result["lines"] = out_lines
    result["unpriced"] = sorted(unpriced.values(), key=lambda g: (-g["count"], str(g["provider"]), str(g["instance_type"])))
    return result
