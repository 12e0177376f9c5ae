"""The compliance catalog's YAML format: checks, frameworks and their controls (pydantic).

A check is one question asked of the warehouse; a control (of a framework) is answered by one or
more checks. Checks are kept apart from frameworks so one check serves several frameworks (disk
encryption is CIS, SOC 2 CC6.1 and a NIST baseline setting at once) and is evaluated once per run.

Check kinds:
- `gx`: `population` is SQL returning one row per checked thing (an `asset_id` column, `site_id`
  when it has one, and the columns the expectations read); `expectations` is a Great
  Expectations 1.x suite (`type` as in GX's JSON, e.g. expect_column_values_to_be_null, and its
  `kwargs`). Failing ids are the `asset_id`s of the unexpected rows.
- `sql`: `population` as above (it gives the checked count); `failing` is SQL returning the
  failing rows (`asset_id`, optional `site_id` and `detail`).
- `drift_rules`: failing = open `drift_items` of the listed desired-state rule ids; the
  population defaults to the current assets.
Every SQL text may read `getvariable('evaluated_at')` (the evaluation time, UTC) and
`getvariable('<param>')` for each entry of `params`, so thresholds live in YAML, not in SQL.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CHECK_KINDS: tuple[str, ...] = ("gx", "sql", "drift_rules")
RESERVED_PARAMS = frozenset({"evaluated_at"})

_CHECK_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # also a valid Dagster asset check name
_TABLE = re.compile(r"^[a-z_][a-z0-9_]*$")
_PARAM = re.compile(r"^[a-z_][a-z0-9_]*$")
_RULE_ID = re.compile(r"^[A-Z0-9-]+$")
_FRAMEWORK_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_CONTROL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._()-]*$")
_EXPECTATION = re.compile(r"^expect_[a-z0-9_]+$")

Scalar = str | int | float | bool


class Expectation(BaseModel):
    """One GX expectation, in GX's own JSON shape (`type` + `kwargs`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type_shape(cls, value: str) -> str:
        if not _EXPECTATION.match(value):
            raise ValueError("an expectation type looks like expect_column_values_to_be_null (snake case)")
        return value


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    kind: Literal["gx", "sql", "drift_rules"]
    asset: str = Field(description="the warehouse table the check is about: its Dagster asset key")
    blocking: bool = False
    params: dict[str, Scalar] = Field(default_factory=dict)
    requires: list[str] = Field(
        default_factory=list,
        description="warehouse relations the check needs; while one is missing the check is not_assessed",
    )
    not_assessed_reason: str | None = Field(default=None, description="said when a required relation is missing")
    population: str | None = None
    failing: str | None = None
    expectations: list[Expectation] | None = None
    rule_ids: list[str] | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _CHECK_ID.match(value):
            raise ValueError("check ids are lower-case snake case (letters, digits, _), starting with a letter")
        return value

    @field_validator("asset")
    @classmethod
    def _asset_shape(cls, value: str) -> str:
        if not _TABLE.match(value):
            raise ValueError("asset is a warehouse table name (lower-case snake case)")
        return value

    @field_validator("requires")
    @classmethod
    def _requires_shape(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _TABLE.match(name):
                raise ValueError(f"{name!r} is not a warehouse table name")
        return value

    @field_validator("params")
    @classmethod
    def _params_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _PARAM.match(name) or name in RESERVED_PARAMS:
                raise ValueError(f"param {name!r}: use a snake-case name other than {', '.join(sorted(RESERVED_PARAMS))}")
        return value

    @field_validator("rule_ids")
    @classmethod
    def _rule_ids_shape(cls, value: list[str] | None) -> list[str] | None:
        for rule_id in value or []:
            if not _RULE_ID.match(rule_id):
                raise ValueError(f"{rule_id!r} is not a drift rule id (like QLRF-ENC-001)")
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> "Check":
        def need(field: str) -> None:
            if not getattr(self, field):
                raise ValueError(f"a {self.kind} check needs `{field}`")

        def refuse(*fields: str) -> None:
            for field in fields:
                if getattr(self, field) is not None:
                    raise ValueError(f"`{field}` does not apply to a {self.kind} check")

        if self.kind == "gx":
            need("population")
            need("expectations")
            refuse("failing", "rule_ids")
        elif self.kind == "sql":
            need("population")
            need("failing")
            refuse("expectations", "rule_ids")
        else:
            need("rule_ids")
            refuse("failing", "expectations")
        if self.requires and not self.not_assessed_reason:
            raise ValueError("a check with `requires` needs `not_assessed_reason`")
        return self

    def document(self) -> dict[str, Any]:
        """The definition as plain JSON-able data: what check_sha256 is taken over."""
        return self.model_dump(mode="json", exclude_none=True)


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    checks: list[str] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _CONTROL_ID.match(value):
            raise ValueError("control ids are letters, digits and . _ - ( ), like CM-2 or CC6.1")
        return value


class FrameworkHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = Field(min_length=1)
    url: str | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _FRAMEWORK_ID.match(value):
            raise ValueError("framework ids are lower-case letters, digits, dots and dashes, like nist-800-53")
        return value


class Framework(BaseModel):
    """A framework with its controls in catalog order (a dict, so `fw.controls` lists control ids)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    version: str
    description: str
    url: str | None = None
    controls: dict[str, Control]
