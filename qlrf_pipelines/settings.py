"""Where local state lives.

Everything a run writes (lake, warehouse, control store, Dagster home when DAGSTER_HOME is not
set) sits under one directory, QLRF_HOME, so two checkouts or two test runs never share state.
Paths are computed when asked for, never at import, so tests can point QLRF_HOME elsewhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
BUNDLED_SITES_FILE = PACKAGE_DIR / "sample_data" / "sites.yaml"


def _telemetry_off() -> None:
    """No phone-home: users on locked-down networks expect none, and this machine has none."""
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def control_store_path(self) -> Path:
        return self.home / "control.sqlite"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt-target"


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class LakeLocation:
    """The shared lake on an S3-compatible object store: s3://bucket/prefix.

    The object store is the source of truth; QLRF_HOME/lake is a local mirror that dbt reads
    (DuckDB's httpfs extension cannot be downloaded on locked-down machines, so the warehouse
    never reads the bucket directly). Credentials are never part of a location: boto3 finds them
    in the standard AWS chain (environment variables, shared config / profile, instance role).
    """

    bucket: str
    prefix: str = ""  # no leading or trailing slash; "" for the bucket root
    endpoint_url: str | None = None  # http://127.0.0.1:9000 for moto / MinIO; None for AWS S3
    region: str | None = None

    @classmethod
    def parse(cls, uri: str, endpoint_url: str | None = None, region: str | None = None) -> "LakeLocation":
        parts = urlsplit(uri.strip())
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"QLRF_LAKE_URI must look like s3://bucket/optional/prefix, not {uri!r}")
        if "@" in parts.netloc or parts.query or parts.fragment or not _BUCKET.match(parts.netloc):
            raise ValueError(f"QLRF_LAKE_URI names no valid bucket: {uri!r}")
        prefix = "/".join(p for p in parts.path.split("/") if p)
        if any(p in (".", "..") for p in prefix.split("/")):
            raise ValueError(f"QLRF_LAKE_URI prefix may not contain . or .. segments: {uri!r}")
        if endpoint_url is not None:
            endpoint = urlsplit(endpoint_url)
            if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
                raise ValueError("QLRF_LAKE_ENDPOINT_URL must be an http(s):// URL")
            if endpoint.username or endpoint.password:
                raise ValueError("QLRF_LAKE_ENDPOINT_URL may not carry credentials; use the AWS credential chain")
        return cls(bucket=parts.netloc, prefix=prefix, endpoint_url=endpoint_url or None, region=region or None)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, relative: str) -> str:
        """The object key of a lake-relative path such as raw/assets/site=x/snapshot=y.parquet."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def describe(self) -> str:
        """For logs and errors: the URI and endpoint, never a credential."""
        return f"{self.uri} at {self.endpoint_url}" if self.endpoint_url else self.uri


def lake_uri() -> str | None:
    """QLRF_LAKE_URI: s3://bucket/prefix of the shared lake; unset means a local lake only."""
    return os.environ.get("QLRF_LAKE_URI", "").strip() or None


def lake_endpoint_url() -> str | None:
    """QLRF_LAKE_ENDPOINT_URL: an S3-compatible endpoint (MinIO, moto); unset means AWS S3."""
    return os.environ.get("QLRF_LAKE_ENDPOINT_URL", "").strip() or None


def lake_region() -> str | None:
    """QLRF_LAKE_REGION, else AWS_DEFAULT_REGION / AWS_REGION; else boto3's own chain decides."""
    for name in ("QLRF_LAKE_REGION", "AWS_DEFAULT_REGION", "AWS_REGION"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def lake_location(uri: str | None = None, endpoint_url: str | None = None) -> LakeLocation | None:
    """The configured remote lake (arguments first, then the environment); None for local only."""
    uri = uri or lake_uri()
    if not uri:
        return None
    return LakeLocation.parse(uri, endpoint_url or lake_endpoint_url(), lake_region())


def qlrf_home() -> Path:
    return Path(os.environ.get("QLRF_HOME", ".qlrf")).expanduser().resolve()


def paths() -> Paths:
    return Paths(home=qlrf_home())


def sites_file() -> Path:
    configured = os.environ.get("QLRF_SITES")
    return Path(configured).expanduser().resolve() if configured else BUNDLED_SITES_FILE


def dbt_project_dir() -> Path:
    configured = os.environ.get("QLRF_DBT_PROJECT_DIR")
    return Path(configured).expanduser().resolve() if configured else REPO_DIR / "dbt"


_telemetry_off()
