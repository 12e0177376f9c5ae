"""The emulated Azure estate: one tenant, one subscription of N_VMS VMs (data/ is generated from
the sample Azure generator with these values by make_data.py)."""

from __future__ import annotations

from qlrf_pipelines.sites import Site

SUBSCRIPTION = "5b0e7c2d-9a41-4f6e-8c3b-1d2e3f4a5b6c"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
N_VMS = 150
SEED = 20261101


def emulated_site() -> Site:
    """The site the data was generated for (its location and subscription)."""
    return Site(
        id="azure-emulated",
        provider="azure",
        name="Azure emulated subscription",
        location="westeurope",
        environment="production",
        account=SUBSCRIPTION,
    )
