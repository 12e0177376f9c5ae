"""The planner tool registry: named, typed, read-only warehouse tools for the specialist agents.

No Dagster here. `call_tool(ctx, name, arguments)` validates, runs, times and bounds one call.
"""

from qlrf_pipelines.planning.tools.registry import (
    AGENTS,
    REGISTRY,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    call_tool,
    tools_for_agent,
)

__all__ = ["AGENTS", "REGISTRY", "Tool", "ToolContext", "ToolError", "ToolResult", "call_tool", "tools_for_agent"]
