"""Generator of the bundled sample estate and of synthetic estates for the benchmark.

Payloads are written in each provider's own API response shape so the same `normalize`
functions the live connectors use are exercised end to end.
"""
