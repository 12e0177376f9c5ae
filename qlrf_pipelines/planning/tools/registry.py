"""Tool, ToolContext, the registry of tools and `call_tool`.

Every tool reads the warehouse read-only (qlrf_pipelines.warehouse.query) with parameterized SQL;
none writes. The only way to change infrastructure stays an approved plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ValidationError

from qlrf_pipelines.warehouse import WarehouseError, query

DEFAULT_MAX_ROWS = 200

# The specialist agents and what each is for.
AGENTS: dict[str, str] = {
    "drift": "Finds assets that drifted from their golden image or desired state and proposes fixes.",
    "patch": "Plans patch rollouts of assets to the current golden image, canary first.",
    "compliance": "Answers which controls pass or fail, with evidence, and proposes remediation.",
    "incident": "Investigates an incident: which assets, images and sites are involved.",
    "dr": "Checks disaster-recovery readiness of sites and plans failover tests.",
    "cost": "Estimates the cost impact of a change from instance sizes and counts.",
    "security": "Assesses vulnerabilities and CVE exposure across images and running assets.",
    "image": "Manages golden images: current versions, lineage and what runs on them.",
}


class ToolError(Exception):
    """A tool call that cannot run: unknown tool, invalid arguments, or a warehouse error."""


@dataclass(frozen=True)
class ToolContext:
    """Where tools read from. Only paths: no open handles, nothing secret (credentials stay in
    the sites file's environment variables and are never read by a tool)."""

    warehouse_path: Path
    lake_dir: Path | None = None
    sites_file: Path | None = None
    compliance_catalog_paths: tuple[Path, ...] = ()
    max_rows: int = DEFAULT_MAX_ROWS  # call_tool sets it: what a listing (`page`) fetches at most

    @classmethod
    def from_settings(cls) -> "ToolContext":
        """The context of the `qlrf` command line: QLRF_HOME, QLRF_SITES (catalog files come
        from QLRF_COMPLIANCE_CATALOG, which the catalog loader reads itself)."""
        from qlrf_pipelines import settings

        paths = settings.paths()
        return cls(warehouse_path=paths.warehouse_path, lake_dir=paths.lake_dir, sites_file=settings.sites_file())

    def rows(self, sql: str, parameters: list[Any] | None = None) -> list[dict[str, Any]]:
        """Run one read-only, parameterized query and return plain JSON-able dicts."""
        result = query(Path(self.warehouse_path), sql, parameters or [])
        return [{c: plain(v) for c, v in zip(result.columns, row)} for row in result.rows]

    def page(self, sql: str, parameters: list[Any] | None = None) -> "Page":
        """The first max_rows rows of an ordered listing (`sql` ends with its ORDER BY) and how many
        it holds in all: the database stops early, so listing a million assets fetches 200."""
        parameters = list(parameters or [])
        rows = self.rows(f"{sql} LIMIT ?", parameters + [self.max_rows])
        if len(rows) < self.max_rows:
            return Page(rows, len(rows))
        total = self.rows(f"SELECT count(*) AS n FROM ({sql}) AS listing", parameters)[0]["n"]
        return Page(rows, int(total))


class Page(list):
    """Rows of a listing cut at ToolContext.max_rows, with the listing's full size in `total`."""

    def __init__(self, rows: list[dict[str, Any]], total: int) -> None:
        super().__init__(rows)
        self.total = total


def plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    run: Callable[[ToolContext, BaseModel], list[dict[str, Any]] | dict[str, Any]]
    effect: Literal["read", "propose"] = "read"
    agents: tuple[str, ...] = ()

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def describe(self, with_schema: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "effect": self.effect, "agents": list(self.agents), "description": self.description,
        }
        if with_schema:
            out["input_schema"] = self.input_schema()
        return out


@dataclass
class ToolResult:
    tool: str
    arguments: dict[str, Any]
    rows: list[dict[str, Any]] | dict[str, Any]
    result_size: int
    duration_ms: float
    truncated: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "tool": self.tool, "arguments": self.arguments, "result_size": self.result_size,
            "duration_ms": self.duration_ms, "truncated": self.truncated,
        }
        if self.note:
            out["note"] = self.note
        out["rows"] = self.rows
        return out


REGISTRY: dict[str, Tool] = {}


def register(tool: Tool) -> Tool:
    if tool.name in REGISTRY:
        raise ValueError(f"tool {tool.name!r} registered twice")
    unknown = [a for a in tool.agents if a not in AGENTS]
    if unknown:
        raise ValueError(f"tool {tool.name!r}: unknown agents {unknown}")
    REGISTRY[tool.name] = tool
    return tool


def tools_for_agent(agent: str) -> list[Tool]:
    return [t for t in REGISTRY.values() if agent in t.agents]


def _validation_message(tool: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        problems.append(f"{where}: {error.get('msg')}")
    return f"invalid arguments for tool {tool!r}: " + "; ".join(problems)


def call_tool(
    ctx: ToolContext, name: str, arguments: dict[str, Any] | None = None, max_rows: int = DEFAULT_MAX_ROWS
) -> ToolResult:
    """Validate `arguments` with the tool's input model, run it read-only, time and bound the result."""
    tool = REGISTRY.get(name)
    if tool is None:
        raise ToolError(f"unknown tool {name!r}; known tools: {', '.join(sorted(REGISTRY))}")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolError(f"invalid arguments for tool {name!r}: expected a JSON object, got {type(arguments).__name__}")
    try:
        args = tool.input_model.model_validate(arguments)
    except ValidationError as exc:
        raise ToolError(_validation_message(name, exc)) from None
    started = time.perf_counter()
    try:
        rows = tool.run(replace(ctx, max_rows=max_rows), args)
    except WarehouseError as exc:
        raise ToolError(f"tool {name!r} failed: {exc}") from None
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    clean_args = args.model_dump(exclude_none=True)
    if isinstance(rows, list):
        size = rows.total if isinstance(rows, Page) else len(rows)
        if size > len(rows[:max_rows]):
            left_out = size - max_rows
            return ToolResult(
                name, clean_args, rows[:max_rows], size, duration_ms, truncated=True,
                note=f"truncated: showing {max_rows} of {size} rows; {left_out} rows left out (narrow the filters)",
            )
        return ToolResult(name, clean_args, rows, size, duration_ms)
    return ToolResult(name, clean_args, rows, 1, duration_ms)


# The tools register themselves on import, in this order (the order `qlrf tools` lists them).
from qlrf_pipelines.planning.tools import warehouse_tools  # noqa: E402,F401
from qlrf_pipelines.planning.tools import estate_tools  # noqa: E402,F401
from qlrf_pipelines.planning.tools import image_tools  # noqa: E402,F401
from qlrf_pipelines.planning.tools import dr_tools  # noqa: E402,F401
from qlrf_pipelines.planning.tools import change_tools  # noqa: E402,F401
