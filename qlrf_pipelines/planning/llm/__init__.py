"""The LLM planner: a model proposes, schemas, Rego and safety checks judge, a person approves.

No Dagster here. `orchestrator.ask` turns a natural-language request into a task spec (the
meta-prompt), lets the chosen specialist agent gather context through the read-only tools
(function calling), and returns the plans it proposed, materialized from warehouse facts.
"""
