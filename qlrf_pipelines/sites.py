"""The sites file: the estate QL-RF discovers, one entry per account / subscription / project /
vCenter / cluster, and the disaster-recovery pairs between those sites (`dr_pairs`, optional).

Credentials are referenced by environment-variable *name* only; a literal secret in this file is
refused, because the file is committed to repositories and copied into run metadata.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

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


def checked_id(value: str) -> str:
    if not _SITE_ID.match(value):
        raise ValueError("must be 2-63 lowercase letters, digits or dashes, starting with a letter or digit")
    return value


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
        return checked_id(value)

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


PositiveMinutes = Annotated[int, Field(strict=True, gt=0)]


class DrPair(BaseModel):
    """A disaster-recovery pair: `dr_site` takes over the workloads of `primary_site` within the
    recovery time objective, losing at most `rpo_minutes` of data. Both sites must be declared in
    the same file (checked by load_sites, which sees every site)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="pair id, same shape as a site id, e.g. dc1-to-weu")
    primary_site: str = Field(description="id of the site that normally runs the workloads")
    dr_site: str = Field(description="id of the site that takes over when the primary fails")
    rpo_minutes: PositiveMinutes = Field(description="recovery point objective: most data loss accepted, minutes")
    rto_minutes: PositiveMinutes = Field(description="recovery time objective: longest outage accepted, minutes")
    families: list[str] | None = Field(
        default=None,
        description="golden image families that must be recoverable at the DR site; "
        "unset: every family running at the primary site",
    )
    description: str | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        return checked_id(value)

    @field_validator("families")
    @classmethod
    def _families(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = [family.strip() for family in value]
        if not cleaned or any(not family for family in cleaned):
            raise ValueError("must list at least one family, each a non-empty name (leave it out for all families)")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("lists a family twice")
        return cleaned

    def public_dict(self) -> dict[str, Any]:
        """The pair as it lands in the lake (lake entity `dr_pairs`)."""
        return {
            "pair_id": self.id,
            "primary_site_id": self.primary_site,
            "dr_site_id": self.dr_site,
            "rpo_minutes": self.rpo_minutes,
            "rto_minutes": self.rto_minutes,
            "families": list(self.families) if self.families is not None else None,
            "description": self.description,
        }


class SitesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    sites: list[Site]
    dr_pairs: list[DrPair] = Field(default_factory=list, description="disaster-recovery pairs between the sites")
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("dr_pairs", mode="before")
    @classmethod
    def _no_pairs(cls, value: Any) -> Any:
        return [] if value is None else value

    def dr_pair(self, pair_id: str) -> DrPair:
        for pair in self.dr_pairs:
            if pair.id == pair_id:
                return pair
        raise KeyError(f"no DR pair {pair_id!r} in {self.path}")

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


_ENTRY_KINDS = {"sites": "site", "dr_pairs": "DR pair"}


def _describe_error(path: Path, raw: dict[str, Any], error: dict[str, Any]) -> str:
    loc = list(error.get("loc", ()))
    site_label = ""
    if len(loc) >= 2 and loc[0] in _ENTRY_KINDS and isinstance(loc[1], int):
        kind, index = _ENTRY_KINDS[loc[0]], loc[1]
        entries = raw.get(loc[0]) if isinstance(raw.get(loc[0]), list) else []
        entry = entries[index] if index < len(entries) else {}
        entry_id = entry.get("id") if isinstance(entry, dict) else None
        site_label = f"{kind} {entry_id!r} (entry {index + 1})" if entry_id else f"{kind} entry {index + 1}"
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
    try:
        parsed = SitesFile.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe_error(path, raw, err) for err in exc.errors()]
        raise SitesFileError("invalid sites file:\n  " + "\n  ".join(problems)) from None
    seen: set[str] = set()
    for site in parsed.sites:
        if site.id in seen:
            raise SitesFileError(f"{path}: site {site.id!r}, field id: duplicate site id")
        seen.add(site.id)
    if not parsed.sites:
        raise SitesFileError(f"{path}: field sites: no sites defined")
    problems = _dr_pair_problems(parsed)
    if problems:
        raise SitesFileError("invalid sites file:\n  " + "\n  ".join(f"{path}: {p}" for p in problems))
    parsed.path = path.resolve()
    return parsed


def _dr_pair_problems(parsed: SitesFile) -> list[str]:
    """What the per-pair validation cannot see: duplicate pair ids, sites not in the file, a site
    paired with itself."""
    problems: list[str] = []
    known = parsed.site_ids
    seen: set[str] = set()
    for pair in parsed.dr_pairs:
        label = f"DR pair {pair.id!r}"
        if pair.id in seen:
            problems.append(f"{label}, field id: duplicate DR pair id")
        seen.add(pair.id)
        for field in ("primary_site", "dr_site"):
            site_id = getattr(pair, field)
            if site_id not in known:
                problems.append(f"{label}, field {field}: unknown site {site_id!r}; sites in this file: {', '.join(known)}")
        if pair.primary_site == pair.dr_site:
            problems.append(f"{label}, field dr_site: must differ from primary_site ({pair.primary_site!r})")
    return problems
