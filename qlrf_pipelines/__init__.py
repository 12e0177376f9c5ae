"""QL-RF Resilience Fabric: the Dagster code location and the domain code beneath it."""

__version__ = "0.1.0"
