"""pytest fixtures around the vCenter simulator; import them into a test module to use them.

    from tests.emulators.vsphere.fixtures import vcsim, vcsim_binary  # noqa: F401

`vcsim_binary` builds (or finds in the cache) the simulator once per session; set QLRF_VCSIM_BIN
to use a binary built beforehand (e.g. by scripts/test.sh). `vcsim` is one seeded simulator per
session (120 VMs: 1 datacenter, 2 clusters of 3 hosts and a standalone host, 40 VMs each; one of
them, ENCRYPTED_VM, with a VM Encryption key id).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.emulators.vsphere.vcsim import ENCRYPTED_VM, Vcsim, build

VCSIM_COUNTS = dict(dc=1, cluster=2, host=3, standalone_host=1, vm=40)


@pytest.fixture(scope="session")
def vcsim_binary() -> Path:
    prebuilt = os.environ.get("QLRF_VCSIM_BIN")
    if prebuilt:
        return Path(prebuilt)
    started = time.monotonic()
    binary = build()
    print(f"\nvcsim binary {binary} ready in {time.monotonic() - started:.1f}s")
    return binary


@pytest.fixture(scope="session")
def vcsim(vcsim_binary) -> Iterator[Vcsim]:
    """A running, seeded simulator: .url, .username, .password, .seeded (see Vcsim.seed)."""
    simulator = Vcsim.start(vcsim_binary, encrypted_vms=(ENCRYPTED_VM,), **VCSIM_COUNTS)
    try:
        simulator.seed()
        yield simulator
    finally:
        simulator.stop()
