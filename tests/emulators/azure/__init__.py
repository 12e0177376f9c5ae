"""A local Microsoft Entra ID + Azure Resource Manager emulator and its data, for the Azure live
connector's tests (tests/integration/test_live_azure.py)."""

from tests.emulators.azure.estate import N_VMS, SUBSCRIPTION, TENANT
from tests.emulators.azure.server import AzureEmulator

__all__ = ["AzureEmulator", "N_VMS", "SUBSCRIPTION", "TENANT"]
