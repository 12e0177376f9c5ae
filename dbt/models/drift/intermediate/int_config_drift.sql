{#
  Config drift of every site snapshot in the lake: the violations of the enabled desired-state
  rules, one row per (snapshot_id, asset_id, rule_id). The logic is the macro config_drift_ctes
  (macros/config_drift.sql), which drift_observations renders over the snapshots it has not
  observed yet; this view shows it over the whole history, for inspection and unit tests.
#}
{{ config(materialized='view') }}

with {{ config_drift_ctes() }}

select * from config_violations
