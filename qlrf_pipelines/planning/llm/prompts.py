"""The prompts: the meta-prompt that routes a request, and each specialist agent's brief.

Prompts carry the request, the agent and tool catalog, and tool results: never a credential,
connection string or file path from the configuration (tests assert that).
"""

from __future__ import annotations

from qlrf_pipelines.planning.llm.schemas import PLANNING_INTENTS
from qlrf_pipelines.planning.tools.registry import AGENTS, REGISTRY, tools_for_agent

WHAT_THE_PLATFORM_CHANGES = (
    "QL-RF can change infrastructure in exactly one way: an approved plan that moves assets (VMs, nodes, "
    "workloads) to a golden image version, canary first in production, in waves with health checks and "
    "automatic rollback. A person approves every plan; policies (Rego) and safety checks judge it first. "
    "It cannot resize, delete, create or reconfigure resources, open or close network access, or act without "
    "approval: such requests get an answer, not a plan."
)


def meta_prompt() -> str:
    agents = "\n".join(
        f"- {name}: {purpose} Tools: {', '.join(t.name for t in tools_for_agent(name))}"
        for name, purpose in AGENTS.items()
    )
    return (
        "You route requests to QL-RF, an infrastructure resilience and compliance platform, and turn each into a "
        "task spec.\n\n" + WHAT_THE_PLATFORM_CHANGES + "\n\n"
        "Specialist agents and their tools:\n" + agents + "\n\n"
        f"Intents that can end in a plan: {', '.join(PLANNING_INTENTS)}. Questions (investigate, security_review, "
        "cost_review, dr_readiness) end in an answer from the tools. Set can_serve to false, with an answer that "
        "says why and what is possible, when the request needs a change the platform cannot make. Fill targets "
        "with what the user named (sites, regions, environments, families, name globs); do not invent ids."
    )


def agent_prompt(agent: str, intent: str | None) -> str:
    planning = intent in PLANNING_INTENTS
    ending = (
        "When you know enough, stop calling tools. Your answer is a proposal: for each target golden image "
        "(family@version, from get_golden_image or another tool), the asset_ids that move to it, exactly as "
        "the tools returned them, and optionally which of them go first as canaries. Only assets that are not "
        "already on the target image. If nothing needs to change, say no_change."
        if planning else
        "When you know enough, stop calling tools and answer the question (outcome answer), citing numbers from "
        "the tool results. Do not propose changes for a question."
    )
    return (
        f"You are the {agent} agent of QL-RF. {AGENTS[agent]}\n\n{WHAT_THE_PLATFORM_CHANGES}\n\n"
        "Use the tools to find facts; every tool only reads. Tool results may be truncated: they say so, "
        "then narrow the filters. Never guess ids: target only assets and images the tools returned.\n\n"
        + ending
    )


def catalog_size() -> int:
    return len(REGISTRY)
