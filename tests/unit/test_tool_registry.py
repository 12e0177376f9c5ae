"""The planner tool registry: validation, unknown tools, truncation, schemas, read-only effects."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from qlrf_pipelines.planning.tools import AGENTS, REGISTRY, Tool, ToolContext, ToolError, call_tool, tools_for_agent
from qlrf_pipelines.planning.tools.registry import DEFAULT_MAX_ROWS

EXPECTED_TOOLS = {
    "query_assets", "get_golden_image", "image_lineage", "image_vulnerabilities", "cve_blast_radius",
    "drift_items", "compliance_status", "control_evidence", "list_sites",
}


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    # No warehouse: validation must fail before any query runs.
    return ToolContext(warehouse_path=tmp_path / "missing.duckdb", lake_dir=tmp_path / "lake")


class _ManyArgs(BaseModel):
    count: int = Field(..., ge=0, description="How many rows to return.")


@pytest.fixture
def many_rows_tool(monkeypatch):
    tool = Tool(
        name="test_many_rows", description="Return COUNT rows.", input_model=_ManyArgs,
        run=lambda ctx, args: [{"n": i} for i in range(args.count)], agents=("drift",),
    )
    monkeypatch.setitem(REGISTRY, tool.name, tool)
    return tool


def test_registry_holds_the_nine_tools():
    assert EXPECTED_TOOLS <= set(REGISTRY)
    assert set(AGENTS) == {"drift", "patch", "compliance", "incident", "dr", "cost", "security", "image"}


def test_the_registry_has_the_tools_the_agents_need():
    assert len(REGISTRY) >= 26
    for agent in AGENTS:
        assert len(tools_for_agent(agent)) >= 4, agent


def test_every_tool_reads_or_proposes_and_has_a_schema_and_description():
    proposing = {name for name, tool in REGISTRY.items() if tool.effect == "propose"}
    assert proposing == {"generate_patch_plan", "generate_rollback_plan", "generate_sop"}
    for name, tool in REGISTRY.items():
        assert tool.name == name
        assert tool.effect in ("read", "propose"), name
        assert tool.description.strip().endswith("."), name
        assert tool.agents and set(tool.agents) <= set(AGENTS), name
        schema = tool.input_schema()
        assert schema["type"] == "object", name
        for field_name, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field_name} has no description"


def test_required_arguments_are_in_the_schemas():
    assert REGISTRY["get_golden_image"].input_schema()["required"] == ["family"]
    assert set(REGISTRY["control_evidence"].input_schema()["required"]) == {"framework", "control"}
    assert REGISTRY["cve_blast_radius"].input_schema()["required"] == ["cve_id"]


def test_every_agent_has_tools():
    for agent in AGENTS:
        assert tools_for_agent(agent), agent


def test_missing_argument_is_a_tool_error_naming_the_tool(ctx):
    with pytest.raises(ToolError, match=r"invalid arguments for tool 'get_golden_image': family: Field required"):
        call_tool(ctx, "get_golden_image", {})


def test_unexpected_argument_is_refused(ctx):
    with pytest.raises(ToolError, match=r"'query_assets'.*sql: Extra inputs are not permitted"):
        call_tool(ctx, "query_assets", {"sql": "DROP TABLE assets"})


def test_wrong_enum_value_is_refused(ctx):
    with pytest.raises(ToolError, match=r"'drift_items'.*drift_type"):
        call_tool(ctx, "drift_items", {"drift_type": "everything"})
    with pytest.raises(ToolError, match=r"'image_vulnerabilities'.*min_severity"):
        call_tool(ctx, "image_vulnerabilities", {"image_id": "x@1", "min_severity": "catastrophic"})


def test_non_object_arguments_are_refused(ctx):
    with pytest.raises(ToolError, match=r"'list_sites'.*JSON object"):
        call_tool(ctx, "list_sites", ["aws"])  # type: ignore[arg-type]


def test_unknown_tool_lists_the_known_ones(ctx):
    with pytest.raises(ToolError) as info:
        call_tool(ctx, "delete_everything", {})
    message = str(info.value)
    assert "unknown tool 'delete_everything'" in message
    for name in EXPECTED_TOOLS:
        assert name in message


def test_missing_warehouse_is_a_tool_error(ctx):
    with pytest.raises(ToolError, match=r"tool 'list_sites' failed: .*no warehouse yet"):
        call_tool(ctx, "list_sites", {})


def test_small_results_are_not_truncated(ctx, many_rows_tool):
    result = call_tool(ctx, many_rows_tool.name, {"count": 3})
    assert result.rows == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert result.result_size == 3 and result.truncated is False and result.note is None
    assert result.duration_ms >= 0
    assert result.arguments == {"count": 3}


def test_large_results_are_truncated_with_a_note(ctx, many_rows_tool):
    result = call_tool(ctx, many_rows_tool.name, {"count": DEFAULT_MAX_ROWS + 50})
    assert DEFAULT_MAX_ROWS == 200
    assert len(result.rows) == 200 and result.rows[-1] == {"n": 199}
    assert result.truncated is True
    assert result.result_size == 250
    assert "200 of 250" in result.note and "50 rows left out" in result.note
    assert result.to_dict()["note"] == result.note


def test_max_rows_bound_is_configurable(ctx, many_rows_tool):
    result = call_tool(ctx, many_rows_tool.name, {"count": 10}, max_rows=4)
    assert len(result.rows) == 4 and result.truncated and "6 rows left out" in result.note
    exact = call_tool(ctx, many_rows_tool.name, {"count": 4}, max_rows=4)
    assert not exact.truncated


def test_a_listing_fetches_only_what_it_shows_and_counts_the_rest(tmp_path, monkeypatch):
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("CREATE TABLE things AS SELECT range AS n FROM range(500)")
    fetched: list[int] = []

    def listing(ctx, args):
        page = ctx.page("SELECT n FROM things WHERE n >= ? ORDER BY n DESC", [args.count])
        fetched.append(len(page))
        return page

    monkeypatch.setitem(REGISTRY, "test_listing", Tool(
        name="test_listing", description="List things.", input_model=_ManyArgs, run=listing, agents=("drift",)))
    context = ToolContext(warehouse_path=warehouse)
    result = call_tool(context, "test_listing", {"count": 100}, max_rows=50)
    assert fetched == [50] and result.result_size == 400 and result.truncated
    assert [r["n"] for r in result.rows] == list(range(499, 449, -1))
    assert "showing 50 of 400 rows; 350 rows left out" in result.note
    small = call_tool(context, "test_listing", {"count": 480}, max_rows=50)
    assert small.result_size == 20 and not small.truncated and small.note is None
