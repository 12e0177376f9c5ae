"""The estate resource: which sites file to discover and which QLRF_HOME to write."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from qlrf_pipelines.settings import Paths
from qlrf_pipelines.sites import SitesFile, load_sites

if TYPE_CHECKING:
    from qlrf_pipelines.lake_remote import RemoteLake, SyncResult


class EstateResource(ConfigurableResource):
    """Where the estate is described and where its data lands.

    Defaults come from QLRF_HOME / QLRF_SITES / QLRF_LAKE_URI / QLRF_LAKE_ENDPOINT_URL when the
    definitions are built; each can be set per run in the launchpad. With a lake_uri the object
    store is the lake's source of truth and <home>/lake its local mirror (lake_remote.py).
    """

    home: str = Field(description="QLRF_HOME: lake, warehouse, control store live under it")
    sites_file: str = Field(description="YAML sites file (QLRF_SITES); the bundled sample by default")
    lake_uri: str | None = Field(
        default=None,
        description="QLRF_LAKE_URI: s3://bucket/prefix of a shared lake on an S3-compatible store; "
        "unset: the lake is <home>/lake only. Credentials come from the AWS chain, never from here.",
    )
    lake_endpoint_url: str | None = Field(
        default=None, description="QLRF_LAKE_ENDPOINT_URL: S3-compatible endpoint (MinIO, moto); unset: AWS S3"
    )
    drift_rules_files: list[str] = Field(
        default_factory=list,
        description="Desired-state rule files merged after the bundled rules and QLRF_DRIFT_RULES "
        "(a rule with the same id replaces the earlier one)",
    )
    compliance_catalog_files: list[str] = Field(
        default_factory=list,
        description="Compliance catalog files or folders (frameworks, controls, checks) merged after the bundled "
        "catalog and QLRF_COMPLIANCE_CATALOG",
    )

    @property
    def paths(self) -> Paths:
        return Paths(home=Path(self.home))

    def remote_lake(self) -> "RemoteLake | None":
        """The object store behind this lake: these fields, else QLRF_LAKE_URI; None for local only."""
        from qlrf_pipelines.lake_remote import RemoteLake

        return RemoteLake.from_settings(self.lake_uri, self.lake_endpoint_url)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Every writer of this lake in this run (discovery, failure records, control export)
        uploads to remote_lake() first: lake.write_snapshot looks it up by lake folder, so no
        client is threaded through them. (No teardown hook: that would make this a
        context-manager resource; the next run's setup replaces the registration.)"""
        from qlrf_pipelines.lake_remote import use_remote

        use_remote(self.paths.lake_dir, self.remote_lake())

    def sync_lake(self, log) -> "SyncResult | None":
        """Before dbt reads the local mirror, copy into it every snapshot the remote lake has and
        it lacks, so a warehouse built on any machine sees every site. None without a remote
        lake; raises LakeError naming the S3 call (never a credential) if the store fails."""
        remote = self.remote_lake()
        if remote is None:
            return None
        from qlrf_pipelines.lake_remote import sync_from_remote

        result = sync_from_remote(self.paths.lake_dir, remote)
        log.info(
            f"lake sync from {remote.location.describe()}: {result.downloaded} files downloaded, "
            f"{result.already_present} already present, {result.skipped} other keys ignored, in {result.seconds:.2f} s"
        )
        return result

    def load_sites(self) -> SitesFile:
        return load_sites(self.sites_file)

    def dbt_target_path(self, run_id: str) -> Path:
        """Per-run dbt artifacts (run_results, compiled SQL) stay with the data, not the repo."""
        return self.paths.dbt_target_dir / run_id

    @contextmanager
    def dbt_environment(self) -> Iterator[dict[str, str]]:
        """dbt reads the lake and warehouse locations from its environment (profiles.yml and
        sources use env_var), and dagster-dbt starts dbt with this process's environment."""
        wanted = {
            "QLRF_LAKE_DIR": str(self.paths.lake_dir),
            "QLRF_WAREHOUSE_PATH": str(self.paths.warehouse_path),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        }
        previous = {key: os.environ.get(key) for key in wanted}
        os.environ.update(wanted)
        try:
            yield wanted
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
