"""Desired-state drift rules: the YAML format, its validation and the merge of rule files.

A rule says what in-scope assets must look like (required tags, allowed instance types, disk
encryption, no public IP, workloads pinned by digest, vSphere tools running, OS not past end of
life). The bundled `default_rules.yaml` is always read first; the user's files (env
`QLRF_DRIFT_RULES`, os.pathsep-separated, then the paths a caller passes) follow, and a rule with
an id seen before replaces it, so a user tightens or disables a bundled rule by id. An entry with
only `id` and `enabled` switches an earlier rule on or off without restating it.

Rules are evaluated in SQL by dbt as data (the warehouse judges every new site snapshot against
the landed rule set), so this module only validates and flattens them into typed columns:
`rule_rows` is the Arrow-ready form, one row per rule. Every error names the file and the rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Mapping, Sequence, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DRIFT_RULES_ENV = "QLRF_DRIFT_RULES"
BUNDLED_RULES = Path(__file__).with_name("default_rules.yaml")
BUNDLED_SOURCE = "bundled:default_rules.yaml"

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
CHECK_TYPES: tuple[str, ...] = (
    "required_tags",
    "allowed_instance_types",
    "disk_encryption",
    "no_public_ip",
    "image_pinned_by_digest",
    "vsphere_tools_running",
    "os_end_of_life",
)
# Encryption levels in increasing strength; `minimum` names the weakest one that passes.
ENCRYPTION_LEVELS: tuple[str, ...] = ("none", "platform_managed", "customer_managed")

_RULE_ID = re.compile(r"^[A-Z0-9-]+$")


class DriftRulesError(ValueError):
    """A rule file cannot be used; the message names the file and the rule."""


def check_glob(pattern: str) -> str:
    """A glob pattern (fnmatch-style: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`), lower-cased because
    every match is case-insensitive. Refuses empty patterns and unbalanced or empty brackets."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("a glob pattern must be a non-empty string")
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "]":
            raise ValueError(f"bad glob {pattern!r}: ']' without '['")
        if char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^") else i + 1)
            body = pattern[i + 1 : end] if end != -1 else ""
            if end == -1 or body in ("", "!", "^"):
                raise ValueError(f"bad glob {pattern!r}: unclosed or empty '[...]'")
            i = end
        i += 1
    return pattern.strip().lower()


_REGEX_SPECIAL = set("\\.^$|?*+()[]{}/")


def glob_regex(pattern: str) -> str:
    """The regular expression (RE2, for DuckDB's regexp_full_match) a checked glob means:
    `*` any text, `?` one character, `[abc]` / `[a-z]` / `[!abc]` a class, the rest literal.
    The warehouse matches these rather than using DuckDB's GLOB, whose character classes do not
    behave like fnmatch's once a `*` follows them."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            negated = pattern[i + 1 : i + 2] in ("!", "^")
            end = pattern.find("]", i + 2 if negated else i + 1)
            body = pattern[i + (2 if negated else 1) : end]
            body = body.replace("\\", "\\\\").replace("[", "\\[").replace("^", "\\^")
            out.append("[" + ("^" if negated else "") + body + "]")
            i = end
        else:
            out.append("\\" + char if char in _REGEX_SPECIAL else char)
        i += 1
    return "".join(out)


def _text(value: Any) -> Any:
    """YAML reads `tier: 1` as an int and `env: yes` as a bool; tag values are text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _lower_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    lowered: dict[str, Any] = {}
    for key, value in mapping.items():
        key = str(_text(key)).strip().lower()
        if not key:
            raise ValueError("tag keys must not be empty")
        if key in lowered:
            raise ValueError(f"tag key {key!r} given twice (keys are case-insensitive)")
        lowered[key] = value
    return lowered


def _allowed_values(value: Any) -> list[str]:
    values = [value] if not isinstance(value, list) else value
    texts = [str(_text(v)) for v in values]
    if not texts or any(not t.strip() for t in texts):
        raise ValueError("allowed values must be a non-empty list of non-empty strings")
    return sorted({t.strip().lower() for t in texts})


class Scope(BaseModel):
    """Which assets a rule judges. Every key is optional; values within a list are OR, keys are
    AND; an empty list means all. `tags` is a selector: every pair must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: list[Literal["aws", "azure", "gcp", "vsphere", "kubernetes"]] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)
    environments: list[str] = Field(default_factory=list)
    kinds: list[Literal["vm", "node", "workload"]] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("environments", mode="before")
    @classmethod
    def _environments_lower(cls, value: Any) -> Any:
        return [str(v).strip().lower() for v in value] if isinstance(value, list) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _selector(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {k: str(_text(v)).strip().lower() for k, v in _lower_keys(value).items()}


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequiredTagsCheck(_Check):
    """`tags`: keys that must be present, each `any` or a list of allowed values.
    `optional_tags`: keys that may be absent but, when present, must carry an allowed value.
    Keys and values compare case-insensitively."""

    type: Literal["required_tags"]
    tags: dict[str, list[str]] = Field(default_factory=dict)
    optional_tags: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("tags", mode="before")
    @classmethod
    def _required(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {
            k: [] if isinstance(v, str) and v.strip().lower() == "any" else _allowed_values(v)
            for k, v in _lower_keys(value).items()
        }

    @field_validator("optional_tags", mode="before")
    @classmethod
    def _optional(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {k: _allowed_values(v) for k, v in _lower_keys(value).items()}

    @model_validator(mode="after")
    def _something_required(self) -> "RequiredTagsCheck":
        if not self.tags and not self.optional_tags:
            raise ValueError("required_tags needs `tags` or `optional_tags`")
        both = set(self.tags) & set(self.optional_tags)
        if both:
            raise ValueError(f"tag {sorted(both)[0]!r} is both required and optional")
        return self


class AllowedInstanceTypesCheck(_Check):
    """`patterns`: globs the instance type / VM size / machine type must match (any of them)."""

    type: Literal["allowed_instance_types"]
    patterns: list[str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        return [check_glob(p) for p in value]


class DiskEncryptionCheck(_Check):
    """Disks encrypted at rest at least at `minimum` (customer_managed is stronger)."""

    type: Literal["disk_encryption"]
    minimum: Literal["platform_managed", "customer_managed"] = "platform_managed"


class NoPublicIpCheck(_Check):
    type: Literal["no_public_ip"]


class ImagePinnedByDigestCheck(_Check):
    """Every container image of a workload names its digest (`@sha256:`), not a tag."""

    type: Literal["image_pinned_by_digest"]


class VsphereToolsRunningCheck(_Check):
    """VMware Tools run on every powered-on vSphere VM."""

    type: Literal["vsphere_tools_running"]


class OsRelease(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str
    end_of_life: date

    @field_validator("match")
    @classmethod
    def _glob(cls, value: str) -> str:
        return check_glob(value)

    @field_validator("end_of_life", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}$", value.strip()):
            raise ValueError(f"end_of_life must be a date YYYY-MM-DD, got {value!r}")
        return value


class OsEndOfLifeCheck(_Check):
    """`releases`: the first release whose glob matches the asset's `os` gives its end of life;
    an asset fails when its snapshot was taken after that date."""

    type: Literal["os_end_of_life"]
    releases: list[OsRelease] = Field(min_length=1)


Check = Annotated[
    Union[
        RequiredTagsCheck,
        AllowedInstanceTypesCheck,
        DiskEncryptionCheck,
        NoPublicIpCheck,
        ImagePinnedByDigestCheck,
        VsphereToolsRunningCheck,
        OsEndOfLifeCheck,
    ],
    Field(discriminator="type"),
]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    description: str = Field(min_length=1)
    severity: Severity
    enabled: bool = True
    scope: Scope = Field(default_factory=Scope)
    check: Check

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError("rule ids are upper-case letters, digits and dashes, like QLRF-TAG-001")
        return value


class _Toggle(BaseModel):
    """`- {id: QLRF-NET-001, enabled: false}`: switch an earlier rule off (or on) by id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    enabled: bool


@dataclass(frozen=True)
class LoadedRule:
    rule: Rule
    source: str  # BUNDLED_SOURCE or the user file's path


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[LoadedRule, ...]

    @property
    def sha256(self) -> str:
        """Digest of the merged rules' content (not of where they came from), so landing can tell
        a changed rule set from the same one read again."""
        return hashlib.sha256(_canonical([rule_document(r.rule) for r in self.rules]).encode()).hexdigest()

    @property
    def enabled(self) -> list[Rule]:
        return [r.rule for r in self.rules if r.rule.enabled]

    def rule(self, rule_id: str) -> Rule:
        for loaded in self.rules:
            if loaded.rule.id == rule_id:
                return loaded.rule
        raise KeyError(rule_id)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rule_document(rule: Rule) -> dict[str, Any]:
    return rule.model_dump(mode="json")


def _describe(path: str, entries: list[Any], error: Mapping[str, Any]) -> str:
    loc = list(error.get("loc", ()))
    label = ""
    if len(loc) >= 1 and isinstance(loc[0], int):
        index = loc[0]
        raw = entries[index] if index < len(entries) else {}
        rule_id = raw.get("id") if isinstance(raw, Mapping) else None
        label = f"rule {rule_id!r} (entry {index + 1})" if rule_id else f"rule entry {index + 1}"
        loc = loc[1:]
    # Union members show up in the location (`check.required_tags.tags`); keep only real fields.
    loc = [part for part in loc if part not in CHECK_TYPES]
    field = ".".join(str(part) for part in loc) or "(whole entry)"
    message = str(error.get("msg"))
    if error.get("type") == "union_tag_invalid":
        tag = (error.get("ctx") or {}).get("tag")
        message = f"unknown check type {tag!r}; expected one of {', '.join(CHECK_TYPES)}"
    elif error.get("type") == "union_tag_not_found":
        message = f"check needs a `type`, one of {', '.join(CHECK_TYPES)}"
    return f"{path}: {label}, field {field}: {message}" if label else f"{path}: field {field}: {message}"


class _TextDatesLoader(yaml.SafeLoader):
    """SafeLoader that leaves `2024-13-01` as text: PyYAML's own date parsing raises a bare
    ValueError on a bad date, which could not name the rule; pydantic parses dates instead."""


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_rule_file(text: str, source: str) -> list[Rule | _Toggle]:
    """Validate one rule file's text; `source` names it in every error."""
    try:
        raw = yaml.load(text, Loader=_TextDatesLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise DriftRulesError(f"{source}: not valid YAML: {exc}") from None
    if raw is None:
        return []
    if not isinstance(raw, Mapping) or not isinstance(raw.get("rules", []), list):
        raise DriftRulesError(f"{source}: expected a mapping with `version: 1` and a `rules` list")
    unknown = sorted(set(raw) - {"version", "rules"})
    if unknown:
        raise DriftRulesError(f"{source}: unknown top-level key {unknown[0]!r} (expected version, rules)")
    if raw.get("version", 1) != 1:
        raise DriftRulesError(f"{source}: field version: only version 1 is supported, got {raw.get('version')!r}")
    entries = raw.get("rules") or []
    parsed: list[Rule | _Toggle] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"{source}: rule entry {index + 1}: expected a mapping")
            continue
        # A bare {id, enabled} is a toggle; anything more must be a whole rule.
        model = _Toggle if set(entry) <= {"id", "enabled"} and "enabled" in entry else Rule
        try:
            parsed.append(model.model_validate(entry))
        except ValidationError as exc:
            problems.extend(
                _describe(source, entries, {**err, "loc": (index, *err.get("loc", ()))}) for err in exc.errors()
            )
    if problems:
        raise DriftRulesError("invalid drift rules:\n  " + "\n  ".join(problems))
    seen: set[str] = set()
    for entry in parsed:
        if entry.id in seen:
            raise DriftRulesError(f"{source}: rule {entry.id!r}: duplicate rule id in this file")
        seen.add(entry.id)
    return parsed


def rule_paths(extra_paths: Sequence[str | os.PathLike] = (), environ: Mapping[str, str] | None = None) -> list[Path]:
    """The user's rule files in merge order: QLRF_DRIFT_RULES first, then `extra_paths`; each
    file once (the first time it is named), empty entries ignored."""
    environ = os.environ if environ is None else environ
    named = [p for p in (environ.get(DRIFT_RULES_ENV) or "").split(os.pathsep)]
    named += [os.fspath(p) for p in extra_paths]
    paths: list[Path] = []
    seen: set[Path] = set()
    for item in named:
        if not str(item).strip():
            continue
        path = Path(str(item).strip()).expanduser()
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            paths.append(path)
    return paths


def merge(files: Iterable[tuple[str, list[Rule | _Toggle]]]) -> RuleSet:
    """Later files win: a rule replaces the earlier rule of its id (keeping its place in the
    order), a toggle switches an earlier rule on or off."""
    merged: dict[str, LoadedRule] = {}
    for source, entries in files:
        for entry in entries:
            if isinstance(entry, Rule):
                merged[entry.id] = LoadedRule(entry, source)
            elif entry.id in merged:
                earlier = merged[entry.id]
                merged[entry.id] = LoadedRule(earlier.rule.model_copy(update={"enabled": entry.enabled}), source)
            else:
                raise DriftRulesError(
                    f"{source}: rule {entry.id!r}: `enabled` alone refers to an earlier rule, but no bundled "
                    "or earlier file defines this id (give description, severity and check to define it)"
                )
    return RuleSet(tuple(merged.values()))


def load_rule_set(
    extra_paths: Sequence[str | os.PathLike] = (),
    environ: Mapping[str, str] | None = None,
    bundled: Path = BUNDLED_RULES,
) -> RuleSet:
    """The bundled rules merged with the user's files (see `rule_paths`)."""
    files = [(BUNDLED_SOURCE, parse_rule_file(bundled.read_text(), BUNDLED_SOURCE))]
    for path in rule_paths(extra_paths, environ):
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise DriftRulesError(f"{path}: drift rules file not found (named by {DRIFT_RULES_ENV} or config)") from None
        except OSError as exc:
            raise DriftRulesError(f"{path}: cannot read drift rules file: {exc}") from None
        files.append((str(path), parse_rule_file(text, str(path))))
    return merge(files)


def _pairs(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in sorted(mapping.items())]


def _allowed(mapping: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    return [{"key": k, "allowed": list(v)} for k, v in sorted(mapping.items())]


def rule_rows(rule_set: RuleSet) -> list[dict[str, Any]]:
    """One flat row per rule (disabled ones too, with enabled=false), the columns of the lake
    entity `drift_rules`: scope and check parameters as typed columns dbt joins on. Check
    parameters a check type does not use are null."""
    digest = rule_set.sha256
    rows = []
    for loaded in rule_set.rules:
        rule, check = loaded.rule, loaded.rule.check
        document = rule_document(rule)
        rows.append(
            {
                "rule_set_sha256": digest,
                "rule_id": rule.id,
                "rule_sha256": hashlib.sha256(_canonical(document).encode()).hexdigest(),
                "description": rule.description,
                "severity": rule.severity,
                "enabled": rule.enabled,
                "source": loaded.source,
                "check_type": check.type,
                "check_json": _canonical(document["check"]),
                "scope_providers": list(rule.scope.providers),
                "scope_sites": list(rule.scope.sites),
                "scope_environments": list(rule.scope.environments),
                "scope_kinds": list(rule.scope.kinds),
                "scope_tags": _pairs(rule.scope.tags),
                "required_tags": _allowed(check.tags) if isinstance(check, RequiredTagsCheck) else None,
                "optional_tags": _allowed(check.optional_tags) if isinstance(check, RequiredTagsCheck) else None,
                "instance_type_patterns": list(check.patterns) if isinstance(check, AllowedInstanceTypesCheck) else None,
                "instance_type_regexes": (
                    [glob_regex(p) for p in check.patterns] if isinstance(check, AllowedInstanceTypesCheck) else None
                ),
                "minimum_encryption": check.minimum if isinstance(check, DiskEncryptionCheck) else None,
                "os_releases": (
                    [{"match": r.match, "regex": glob_regex(r.match), "end_of_life": r.end_of_life} for r in check.releases]
                    if isinstance(check, OsEndOfLifeCheck)
                    else None
                ),
            }
        )
    return rows
