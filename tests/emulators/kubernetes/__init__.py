"""Kubernetes API server emulator (see server.py) for the live connector's integration tests."""

from tests.emulators.kubernetes.server import (
    DATA_DIR,
    LIST_KEYS,
    PATHS,
    KubernetesEmulator,
    load_data,
    write_kubeconfig,
)

__all__ = ["DATA_DIR", "LIST_KEYS", "PATHS", "KubernetesEmulator", "load_data", "write_kubeconfig"]
