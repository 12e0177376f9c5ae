"""Disaster recovery: the DR pairs declared in the sites file, landed in the lake (landing.py) so
dbt builds the `dr_pairs` table from data, like the rest of the configuration."""
