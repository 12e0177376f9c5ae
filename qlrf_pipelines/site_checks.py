"""Connection health of each site (`qlrf sites check`): credentials plus one cheap read."""

from __future__ import annotations

import time
from dataclasses import dataclass

from qlrf_pipelines.connectors.base import ConnectorError
from qlrf_pipelines.sites import Site, SitesFile


@dataclass
class SiteCheck:
    site_id: str
    provider: str
    status: str  # ok | failed
    detail: str
    seconds: float


def check_site(sites: SitesFile, site: Site) -> SiteCheck:
    started = time.perf_counter()
    try:
        detail = _check(sites, site)
        status = "ok"
    except ConnectorError as exc:
        status, detail = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - one site's surprise must not hide the others' results
        status, detail = "failed", f"site {site.id}: {type(exc).__name__}: {exc}"
    return SiteCheck(site.id, site.provider, status, detail, time.perf_counter() - started)


def _check(sites: SitesFile, site: Site) -> str:
    sample = sites.sample_path(site)
    if sample is not None:
        from qlrf_pipelines.connectors.sample import load_payload

        load_payload(site, sample)
        return f"sample payload {sample.name} (no credentials needed)"
    from qlrf_pipelines.connectors.live import FetchContext, live_module

    return live_module(site.provider).check(FetchContext.for_site(site))
