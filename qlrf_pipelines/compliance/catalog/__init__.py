"""The compliance catalog: bundled frameworks, controls and checks, merged with the user's YAML.

Bundled: `checks.yaml` and `frameworks/*.yaml` beside this file (CIS-style subset `cis-qlrf`,
SOC 2 `soc2`, NIST SP 800-53 `nist-800-53`). The user's files are named by env
QLRF_COMPLIANCE_CATALOG (os.pathsep-separated files or folders of *.yaml), then by the paths a
caller passes, and merge in that order:

- `checks:` a check with a known id replaces it, a new id adds one;
- `framework:` with a full header (id, title, version, description) adds a framework or
  replaces the header of one with that id; `framework: {id: soc2}` alone extends it;
- `controls:` (under a framework) a control with a known id replaces it, a new one is added, so
  a user maps an extra check to CC6.1 by restating CC6.1 with its checks.

Every error names the file and the id; a control may only name checks the merged catalog has.
Reading the catalog is cheap (a few YAML files), which is why the Dagster definitions read it at
load time to declare one asset check per check.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml
from pydantic import ValidationError

from qlrf_pipelines.compliance.catalog.schema import (
    CHECK_KINDS,
    Check,
    Control,
    Expectation,
    Framework,
    FrameworkHeader,
)

__all__ = [
    "BUNDLED_DIR", "CATALOG_ENV", "CHECK_KINDS", "Catalog", "CatalogError", "Check", "Control",
    "Expectation", "Framework", "ControlCheck", "canonical_json", "catalog_paths", "load_catalog", "parse_catalog_file",
]

CATALOG_ENV = "QLRF_COMPLIANCE_CATALOG"
BUNDLED_DIR = Path(__file__).resolve().parent
_TOP_LEVEL = {"version", "checks", "framework", "controls"}


class CatalogError(ValueError):
    """A catalog file cannot be used; the message names the file and the id."""


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 as is: the same data always gives the same text (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ControlCheck:
    """One (framework, control, check) triple: the unit evidence is recorded for."""

    framework: Framework
    control: Control
    check: Check


@dataclass(frozen=True)
class Catalog:
    frameworks: dict[str, Framework]
    checks: dict[str, Check]
    sources: dict[str, str] = field(default_factory=dict)  # "check:<id>", "framework:<id>", "control:<fw>/<id>"

    def source(self, kind: str, key: str) -> str:
        return self.sources.get(f"{kind}:{key}", "")

    def mappings(self) -> Iterator[ControlCheck]:
        for framework in self.frameworks.values():
            for control in framework.controls.values():
                for check_id in control.checks:
                    yield ControlCheck(framework, control, self.checks[check_id])

    def controls_of(self, check_id: str) -> list[tuple[str, str]]:
        """(framework_id, control_id) of every control the check answers."""
        return [(m.framework.id, m.control.id) for m in self.mappings() if m.check.id == check_id]

    def document(self) -> dict[str, Any]:
        return {
            "checks": [c.document() for c in self.checks.values()],
            "frameworks": [f.model_dump(mode="json", exclude_none=True) for f in self.frameworks.values()],
        }

    @property
    def sha256(self) -> str:
        """Digest of the merged catalog's content (not of where it came from), so landing can tell
        a changed catalog from the same one read again."""
        return hashlib.sha256(canonical_json(self.document()).encode()).hexdigest()


def _describe(source: str, what: str, entries: list[Any], error: Mapping[str, Any]) -> str:
    loc = list(error.get("loc", ()))
    label = what
    if loc and isinstance(loc[0], int):
        index = loc[0]
        raw = entries[index] if index < len(entries) else {}
        entry_id = raw.get("id") if isinstance(raw, Mapping) else None
        label = f"{what} {entry_id!r} (entry {index + 1})" if entry_id else f"{what} entry {index + 1}"
        loc = loc[1:]
    where = ".".join(str(part) for part in loc) or "(whole entry)"
    return f"{source}: {label}, field {where}: {error.get('msg')}"


def _validate_list(source: str, what: str, entries: Any, model: type) -> list[Any]:
    if not isinstance(entries, list):
        raise CatalogError(f"{source}: `{what}s` must be a list")
    parsed, problems, seen = [], [], set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"{source}: {what} entry {index + 1}: expected a mapping")
            continue
        try:
            item = model.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_describe(source, what, entries, {**e, "loc": (index, *e.get("loc", ()))}) for e in exc.errors())
            continue
        if item.id in seen:
            problems.append(f"{source}: {what} {item.id!r}: duplicate id in this file")
        seen.add(item.id)
        parsed.append(item)
    if problems:
        raise CatalogError("invalid compliance catalog:\n  " + "\n  ".join(problems))
    return parsed


@dataclass
class CatalogFile:
    source: str
    checks: list[Check] = field(default_factory=list)
    framework: FrameworkHeader | None = None
    extends: str | None = None  # `framework: {id: X}` alone: add controls to framework X
    controls: list[Control] = field(default_factory=list)


def parse_catalog_file(text: str, source: str) -> CatalogFile:
    """Validate one catalog file's text; `source` names it in every error."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: not valid YAML: {exc}") from None
    if raw is None:
        return CatalogFile(source)
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{source}: expected a mapping with `version: 1` and `checks` and/or `framework` + `controls`")
    unknown = sorted(set(raw) - _TOP_LEVEL)
    if unknown:
        raise CatalogError(f"{source}: unknown top-level key {unknown[0]!r} (expected {', '.join(sorted(_TOP_LEVEL))})")
    if raw.get("version", 1) != 1:
        raise CatalogError(f"{source}: field version: only version 1 is supported, got {raw.get('version')!r}")
    parsed = CatalogFile(source)
    if "checks" in raw:
        parsed.checks = _validate_list(source, "check", raw["checks"] or [], Check)
    header = raw.get("framework")
    if "controls" in raw and header is None:
        raise CatalogError(f"{source}: `controls` need a `framework` (at least `framework: {{id: ...}}`)")
    if header is not None:
        if not isinstance(header, Mapping) or not header.get("id"):
            raise CatalogError(f"{source}: `framework` must be a mapping with an `id`")
        if set(header) == {"id"}:
            parsed.extends = str(header["id"])
        else:
            try:
                parsed.framework = FrameworkHeader.model_validate(header)
            except ValidationError as exc:
                problems = [
                    f"{source}: framework {header.get('id')!r}, field {'.'.join(map(str, e['loc'])) or '(whole entry)'}: {e['msg']}"
                    for e in exc.errors()
                ]
                raise CatalogError("invalid compliance catalog:\n  " + "\n  ".join(problems)) from None
        parsed.controls = _validate_list(source, "control", raw.get("controls") or [], Control)
    return parsed


def bundled_files() -> list[Path]:
    return [BUNDLED_DIR / "checks.yaml", *sorted((BUNDLED_DIR / "frameworks").glob("*.yaml"))]


def catalog_paths(extra_paths: Sequence[str | os.PathLike] = (), environ: Mapping[str, str] | None = None) -> list[Path]:
    """The user's catalog files in merge order: QLRF_COMPLIANCE_CATALOG, then `extra_paths`; a
    folder stands for its *.yaml / *.yml files in name order; each file once."""
    environ = os.environ if environ is None else environ
    named = [p for p in (environ.get(CATALOG_ENV) or "").split(os.pathsep)] + [os.fspath(p) for p in extra_paths]
    paths: list[Path] = []
    seen: set[Path] = set()
    for item in named:
        if not str(item).strip():
            continue
        path = Path(str(item).strip()).expanduser()
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                paths.append(file)
    return paths


def _bundled_source(path: Path) -> str:
    return "bundled:" + path.relative_to(BUNDLED_DIR).as_posix()


def merge(files: Sequence[CatalogFile]) -> Catalog:
    checks: dict[str, Check] = {}
    headers: dict[str, FrameworkHeader] = {}
    controls: dict[str, dict[str, Control]] = {}
    sources: dict[str, str] = {}
    control_files: dict[tuple[str, str], str] = {}
    for file in files:
        for check in file.checks:
            checks[check.id] = check
            sources[f"check:{check.id}"] = file.source
        framework_id = file.framework.id if file.framework else file.extends
        if framework_id is None:
            continue
        if file.framework is not None:
            headers[file.framework.id] = file.framework
            sources[f"framework:{framework_id}"] = file.source
        elif framework_id not in headers:
            raise CatalogError(
                f"{file.source}: framework {framework_id!r}: `framework: {{id: {framework_id}}}` extends a framework, "
                "but no bundled or earlier file defines it (give title, version and description to define it)"
            )
        target = controls.setdefault(framework_id, {})
        for control in file.controls:
            target[control.id] = control
            sources[f"control:{framework_id}/{control.id}"] = file.source
            control_files[(framework_id, control.id)] = file.source
    problems = []
    for framework_id, framework_controls in controls.items():
        for control in framework_controls.values():
            for check_id in control.checks:
                if check_id not in checks:
                    problems.append(
                        f"{control_files[(framework_id, control.id)]}: framework {framework_id!r} control {control.id!r}: "
                        f"unknown check {check_id!r}"
                    )
    if problems:
        raise CatalogError("invalid compliance catalog:\n  " + "\n  ".join(problems))
    frameworks = {
        fid: Framework(**header.model_dump(), controls=dict(controls.get(fid, {}))) for fid, header in headers.items()
    }
    return Catalog(frameworks=frameworks, checks=checks, sources=sources)


def load_catalog(extra_paths: Sequence[str | os.PathLike] = (), environ: Mapping[str, str] | None = None) -> Catalog:
    """The bundled catalog merged with the user's files (see `catalog_paths`)."""
    files = [parse_catalog_file(path.read_text(), _bundled_source(path)) for path in bundled_files()]
    for path in catalog_paths(extra_paths, environ):
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise CatalogError(f"{path}: compliance catalog file not found (named by {CATALOG_ENV} or config)") from None
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read compliance catalog file: {exc}") from None
        files.append(parse_catalog_file(text, str(path)))
    return merge(files)
