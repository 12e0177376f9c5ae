"""Desired-state drift: the YAML rules that say what the estate should look like.

Pure domain code (no Dagster, no warehouse): `rules` validates and merges the bundled
`default_rules.yaml` with the user's files, `landing` writes the validated rule set to the lake
(entity `drift_rules`, site `config`) where dbt evaluates it as data, and `report` turns the
drift marts into the numbers and chart the Dagster UI shows.
"""
