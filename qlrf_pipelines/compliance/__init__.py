"""Compliance evidence: frameworks and controls as data, checks over the warehouse, evidence an
auditor can trust.

Pure domain code (no Dagster): `catalog` validates and merges the bundled frameworks, controls and
checks with the user's YAML; `runner` evaluates every check on the DuckDB warehouse (Great
Expectations 1.x suites or SQL); `evidence` turns the results into append-only lake rows whose
SHA-256 `chain` links each row to the previous evidence of the same control and check; `landing`
writes the catalog to the lake; `gate` tells remediation planning whether a blocking check failed.
Waivers (accepted failures) come from the control store (`waivers`, C2's module).
"""
