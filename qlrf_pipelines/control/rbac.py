"""Role-based access control from a YAML file: roles grant permissions, users hold roles.

The file (env QLRF_RBAC, default the bundled sample_data/rbac.yaml) is loaded by whoever makes a
decision (the CLI, the execute job) and passed to the control store, which checks it at decision
time and again before execution: taking a role away withdraws what that person approved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qlrf_pipelines.control.errors import PermissionDenied, RbacError
from qlrf_pipelines.settings import PACKAGE_DIR

BUNDLED_RBAC_FILE = PACKAGE_DIR / "sample_data" / "rbac.yaml"


class Permission(StrEnum):
    APPROVE_AI_TASKS = "APPROVE_AI_TASKS"
    EXECUTE_AI_TASKS = "EXECUTE_AI_TASKS"
    TRIGGER_DRILL = "TRIGGER_DRILL"
    VIEW_AUDIT_LOGS = "VIEW_AUDIT_LOGS"
    PROMOTE_IMAGES = "PROMOTE_IMAGES"
    MANAGE_IMAGE_LINEAGE = "MANAGE_IMAGE_LINEAGE"
    MANAGE_WAIVERS = "MANAGE_WAIVERS"  # add and revoke compliance waivers (accepted failures)


PERMISSIONS: frozenset[str] = frozenset(p.value for p in Permission)


class _RoleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    permissions: list[Permission]


class _UserSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] = Field(min_length=1)


class _RbacSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    roles: dict[str, _RoleSpec]
    users: dict[str, _UserSpec]

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only version 1 is understood")
        return value


def rbac_file() -> Path:
    """The RBAC file in use: QLRF_RBAC if set, else the bundled sample."""
    configured = os.environ.get("QLRF_RBAC")
    return Path(configured).expanduser().resolve() if configured else BUNDLED_RBAC_FILE


@dataclass(frozen=True)
class Rbac:
    """Who holds which permission. Immutable: reload the file to see changes."""

    user_permissions: Mapping[str, frozenset[str]]
    user_roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "<memory>"

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Rbac":
        """Read and validate an RBAC file (default: rbac_file()); errors name the file and field."""
        path = Path(path) if path is not None else rbac_file()
        try:
            raw = yaml.safe_load(path.read_text())
        except FileNotFoundError as exc:
            raise RbacError(f"{path}: RBAC file not found") from exc
        except yaml.YAMLError as exc:
            raise RbacError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<memory>") -> "Rbac":
        """Build from parsed YAML (tests use this); every problem names the source and the field."""
        if not isinstance(raw, dict):
            raise RbacError(f"{source}: expected a mapping with 'roles' and 'users'")
        try:
            spec = _RbacSpec.model_validate(raw)
        except ValidationError as exc:
            problems = [
                f"{source}: field {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            ]
            raise RbacError("invalid RBAC file:\n  " + "\n  ".join(problems)) from None
        permissions: dict[str, frozenset[str]] = {}
        roles: dict[str, tuple[str, ...]] = {}
        for user, user_spec in spec.users.items():
            granted: set[str] = set()
            for index, role in enumerate(user_spec.roles):
                if role not in spec.roles:
                    raise RbacError(
                        f"{source}: field users.{user}.roles.{index}: unknown role {role!r} "
                        f"(defined: {', '.join(sorted(spec.roles)) or 'none'})"
                    )
                granted.update(p.value for p in spec.roles[role].permissions)
            permissions[user] = frozenset(granted)
            roles[user] = tuple(user_spec.roles)
        return cls(user_permissions=permissions, user_roles=roles, source=source)

    def knows(self, user: str) -> bool:
        return user in self.user_permissions

    def permissions(self, user: str) -> frozenset[str]:
        return self.user_permissions.get(user, frozenset())

    def has(self, user: str, permission: str | Permission) -> bool:
        return str(permission) in self.permissions(user)

    def require(self, user: str, permission: str | Permission) -> None:
        """Raise PermissionDenied naming the user and the permission unless the user holds it."""
        if str(permission) not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r} (known: {', '.join(sorted(PERMISSIONS))})")
        if not self.knows(user):
            raise PermissionDenied(user, str(permission), f"user is not listed in {self.source}")
        if not self.has(user, permission):
            roles = ", ".join(self.user_roles.get(user, ())) or "none"
            raise PermissionDenied(user, str(permission), f"roles held: {roles} (from {self.source})")

    def users_with(self, permission: str | Permission) -> list[str]:
        return sorted(u for u, perms in self.user_permissions.items() if str(permission) in perms)
