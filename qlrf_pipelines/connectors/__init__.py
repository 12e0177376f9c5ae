"""Provider connectors. Each provider module has a pure `normalize(payload, site, discovered_at)`
turning the provider's own API response shapes into canonical records; live `fetch` functions
(SDK calls) arrive per provider and reuse the same `normalize`.

A provider is added by adding one module here and one sample payload generator: the registry
below finds modules by provider name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from qlrf_pipelines.connectors.base import ConnectorError, PayloadError


def provider_module(provider: str) -> ModuleType:
    try:
        return importlib.import_module(f"qlrf_pipelines.connectors.{provider}")
    except ModuleNotFoundError as exc:
        raise ConnectorError(provider, "import", f"no connector module for provider {provider!r}") from exc


__all__ = ["ConnectorError", "PayloadError", "provider_module"]
