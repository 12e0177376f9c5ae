"""Sensors: start planning when drift lands, and execution when a person approves.

Neither opens the warehouse (a DuckDB writer would block them, and they would block it): the
drift sensor reads Dagster's event log and the lake's file names, the approval sensor reads the
control store.
"""
