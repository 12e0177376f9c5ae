"""The sites file: the estate QL-RF discovers, one entry per account / subscription / project /
vCenter / cluster.

Credentials are referenced by environment-variable *name* only; a literal secret in this file is
refused, because the file is committed to repositories and copied into run metadata.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Provider = Literal["aws", "azure", "gcp", "vsphere", "kubernetes"]
PROVIDERS: tuple[str, ...] = ("aws", "azure", "gcp", "vsphere", "kubernetes")

_SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class SitesFileError(ValueError):
    """The sites file cannot be used; the message names the file, the site and the field."""


class Credentials(BaseModel):
    """Names of environment variables (or a profile / context name) holding credentials."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = None
    role_arn: str | None = None
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None
    tenant_id_env: str | None = None
    client_id_env: str | None = None
    client_secret_env: str | None = None
    service_account_file_env: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    kubeconfig_env: str | None = None
    context: str | None = None

    @model_validator(mode="after")
    def _env_names_only(self) -> "Credentials":
        for name, value in self:
            if name.endswith("_env") and value is not None and not _ENV_VAR_NAME.match(value):
                raise ValueError(
                    f"{name} must name an environment variable (like MY_SECRET), not hold a value"
                )
        return self


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    provider: Provider
    name: str
    location: str = Field(description="region, datacenter or cluster")
    environment: str = Field(description="production, staging, development, dr, ...")
    account: str | None = Field(
        default=None, description="AWS account, Azure subscription, GCP project, vCenter host or cluster name"
    )
    regions: list[str] = Field(default_factory=list, description="extra regions to discover")
    endpoint_url: str | None = Field(default=None, description="API endpoint override")
    verify_ssl: bool = True
    execution_enabled: bool = Field(
        default=False, description="allow approved plans to change this site for real; dry run otherwise"
    )
    credentials: Credentials = Field(default_factory=Credentials)
    settings: dict[str, Any] = Field(default_factory=dict, description="provider-specific options")
    sample: str | None = Field(
        default=None, description="payload file (relative to the sites file) for the sample connector"
    )

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _SITE_ID.match(value):
            raise ValueError("must be 2-63 lowercase letters, digits or dashes, starting with a letter or digit")
        return value

    @field_validator("environment")
    @classmethod
    def _environment_lower(cls, value: str) -> str:
        return value.strip().lower()

    def public_dict(self) -> dict[str, Any]:
        """What may be written to the lake, the warehouse and run metadata: no credential fields."""
        return {
            "site_id": self.id,
            "provider": self.provider,
            "name": self.name,
            "location": self.location,
            "environment": self.environment,
            "account": self.account,
            "endpoint_url": self.endpoint_url,
        }


class SitesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    sites: list[Site]
    path: Path | None = Field(default=None, exclude=True)

    def site(self, site_id: str) -> Site:
        for site in self.sites:
            if site.id == site_id:
                return site
        raise KeyError(f"no site {site_id!r} in {self.path}")

    @property
    def site_ids(self) -> list[str]:
        return [site.id for site in self.sites]

    def sample_path(self, site: Site) -> Path | None:
        if site.sample is None:
            return None
        base = self.path.parent if self.path else Path.cwd()
        return (base / site.sample).resolve()


def _describe_error(path: Path, raw_sites: list[Any], error: dict[str, Any]) -> str:
    loc = list(error.get("loc", ()))
    site_label = ""
    if len(loc) >= 2 and loc[0] == "sites" and isinstance(loc[1], int):
        index = loc[1]
        raw = raw_sites[index] if index < len(raw_sites) else {}
        site_id = raw.get("id") if isinstance(raw, dict) else None
        site_label = f"site {site_id!r} (entry {index + 1})" if site_id else f"site entry {index + 1}"
        loc = loc[2:]
    field = ".".join(str(part) for part in loc) or "(whole entry)"
    where = f"{site_label}, field {field}" if site_label else f"field {field}"
    return f"{path}: {where}: {error.get('msg')}"


def load_sites(path: str | Path) -> SitesFile:
    """Read and validate a sites file; every problem is reported with file, site and field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise SitesFileError(f"{path}: sites file not found") from exc
    except yaml.YAMLError as exc:
        raise SitesFileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or "sites" not in raw:
        raise SitesFileError(f"{path}: expected a mapping with a 'sites' list")
    raw_sites = raw.get("sites") or []
    try:
        parsed = SitesFile.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe_error(path, raw_sites, err) for err in exc.errors()]
        raise SitesFileError("invalid sites file:\n  " + "\n  ".join(problems)) from None
    seen: set[str] = set()
    for site in parsed.sites:
        if site.id in seen:
            raise SitesFileError(f"{path}: site {site.id!r}, field id: duplicate site id")
        seen.add(site.id)
    if not parsed.sites:
        raise SitesFileError(f"{path}: field sites: no sites defined")
    parsed.path = path.resolve()
    return parsed
