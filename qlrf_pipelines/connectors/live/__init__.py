"""Live discovery: each provider's `fetch` makes the SDK calls and assembles the same payload
shape its pure `normalize` already reads, so live and sample discovery share every line after
the network.

Contract of a provider module `connectors/live/<provider>.py`:
  READ_PERMISSIONS: dict[str, list[str]]   what a least-privilege credential needs, by kind
  fetch(ctx: FetchContext) -> dict          SDK calls -> payload for connectors/<provider>.normalize
  check(ctx: FetchContext) -> str           one cheap authenticated read, for `qlrf sites check`
Errors raise ConnectorError(site_id, "<API call>", message): never a secret in the message.
"""

from __future__ import annotations

import importlib
import os
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.sites import Site

DEFAULT_TIMEOUT_S = 30.0


@dataclass
class FetchContext:
    site: Site
    timeout_s: float = DEFAULT_TIMEOUT_S
    api_calls: Counter = field(default_factory=Counter)

    @classmethod
    def for_site(cls, site: Site) -> "FetchContext":
        timeout = float(site.settings.get("timeout_seconds", DEFAULT_TIMEOUT_S))
        return cls(site=site, timeout_s=timeout)

    def count(self, call: str, n: int = 1) -> None:
        """One API request made (a page, not an item): the cost the benchmark reports."""
        self.api_calls[call] += n

    def secret(self, credential_field: str) -> str | None:
        """The value of the environment variable a credentials field names (e.g. client_secret_env).

        Values are only ever passed to SDK clients; they are never logged, stored or put in errors.
        """
        name = getattr(self.site.credentials, credential_field, None)
        return os.environ.get(name) if name else None

    def fail(self, call: str, message: str) -> ConnectorError:
        return ConnectorError(self.site.id, call, message)


def live_module(provider: str) -> ModuleType:
    try:
        return importlib.import_module(f"qlrf_pipelines.connectors.live.{provider}")
    except ModuleNotFoundError as exc:
        raise ConnectorError(provider, "import", f"no live connector for provider {provider!r}") from exc
