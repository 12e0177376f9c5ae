"""Remediation planning: the plan schema, planners and the tools they use (no Dagster here)."""
