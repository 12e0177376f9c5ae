"""Regenerate the emulator's data files from the sample generator (deterministic):

    .venv/bin/python -m tests.emulators.kubernetes.make_data [n_assets]

Each file is one API response body: data/version.json (/version) and data/<key>.json, the full
List of that kind (`kubectl get <kind> -A -o json`), which the emulator serves in pages. As the
API server does in lists, items carry no kind / apiVersion of their own.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from qlrf_pipelines.sample import gen_kubernetes
from qlrf_pipelines.sites import Site

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_ASSETS = 160
SEED = "qlrf-k8s-emulator"
LIST_KEYS = ("nodes", "namespaces", "deployments", "statefulsets", "daemonsets", "cronjobs", "pods")

GENERATOR_SITE = Site(
    id="k8s-emulated",
    provider="kubernetes",
    name="Emulated EKS cluster",
    location="prod-eks-use1",
    environment="production",
    account="prod-eks-use1",
    settings={"golden_registry": "registry.example.com/golden"},
)


def api_payload(n_assets: int, seed: str = SEED) -> dict:
    """The generator's payload as the API server would serve it (no per-item kind/apiVersion)."""
    payload = gen_kubernetes.generate_payload(GENERATOR_SITE, n_assets, random.Random(seed))
    for key in LIST_KEYS:
        for item in payload[key]["items"]:
            item.pop("kind", None)
            item.pop("apiVersion", None)
    return payload


def write(n_assets: int = DEFAULT_ASSETS) -> None:
    payload = api_payload(n_assets)
    DATA_DIR.mkdir(exist_ok=True)
    for key in ("version", *LIST_KEYS):
        (DATA_DIR / f"{key}.json").write_text(json.dumps(payload[key], indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ASSETS)
