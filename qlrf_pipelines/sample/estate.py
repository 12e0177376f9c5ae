"""Write a sample estate (sites file + provider payloads) to a folder.

`python -m qlrf_pipelines.sample.estate` regenerates the bundled estate in
qlrf_pipelines/sample_data/ (deterministic: same seed, same files), and the sample supply-chain
files in sample_data/supply_chain/ (see gen_supply_chain). The benchmark uses
`write_estate(folder, total_assets=N)` to build synthetic estates of any size in the same shapes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
from pathlib import Path


from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from qlrf_pipelines.sites import load_sites

BUNDLED_COUNTS = {
    "aws-prod-use1": 70,
    "aws-stg-euw1": 35,
    "azure-prod-weu": 50,
    "gcp-prod-euw1": 40,
    "vsphere-dc1": 50,
    "k8s-prod-eks": 40,
    "k8s-stg-gke": 24,
}
DEFAULT_SEED = 20261101


def scaled_counts(total_assets: int) -> dict[str, int]:
    """Spread `total_assets` over the bundled sites in the bundled proportions."""
    base = sum(BUNDLED_COUNTS.values())
    counts = {site: max(4, round(total_assets * n / base)) for site, n in BUNDLED_COUNTS.items()}
    largest = max(counts, key=counts.get)
    counts[largest] += total_assets - sum(counts.values())
    return counts


def write_estate(folder: Path, counts: dict[str, int] | None = None, total_assets: int | None = None,
                 seed: int = DEFAULT_SEED) -> Path:
    """Write sites.yaml and one payload per site; returns the sites file path."""
    counts = counts or (scaled_counts(total_assets) if total_assets else BUNDLED_COUNTS)
    folder.mkdir(parents=True, exist_ok=True)
    template = load_sites(BUNDLED_SITES_FILE)
    for site in template.sites:
        generator = importlib.import_module(f"qlrf_pipelines.sample.gen_{site.provider}")
        rng = random.Random(f"{seed}/{site.id}")
        payload = generator.generate_payload(site, counts[site.id], rng)
        target = folder / (site.sample or f"{site.provider}/{site.id}.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w") as handle:
            json.dump(payload, handle, indent=1 if folder_is_bundled(folder) else None, sort_keys=False)
    sites_file = folder / "sites.yaml"
    if folder.resolve() != BUNDLED_SITES_FILE.parent.resolve():
        sites_file.write_text(BUNDLED_SITES_FILE.read_text())
    return sites_file


def folder_is_bundled(folder: Path) -> bool:
    return folder.resolve() == BUNDLED_SITES_FILE.parent.resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=BUNDLED_SITES_FILE.parent)
    parser.add_argument("--total-assets", type=int, default=None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    path = write_estate(args.out, total_assets=args.total_assets, seed=args.seed)
    print(f"wrote {path}")
    from qlrf_pipelines.sample.gen_supply_chain import FOLDER, write_supply_chain

    written = write_supply_chain(args.out / FOLDER)
    print(f"wrote {len(written)} supply-chain files in {args.out / FOLDER}")


if __name__ == "__main__":
    main()
