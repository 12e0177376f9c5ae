"""A local Compute Engine REST emulator and its data, for the GCP live connector's tests."""

from tests.emulators.gcp.server import ComputeEmulator, google_error

__all__ = ["ComputeEmulator", "google_error"]
