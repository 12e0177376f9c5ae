#!/usr/bin/env bash
# Set up QL-RF and run the main job on the bundled sample estate.
# Embedded defaults only: DuckDB, SQLite, a local lake under QLRF_HOME (./.qlrf); no credentials,
# no network beyond the package index for the install.
#   QLRF_VENV   virtual environment to create or reuse (default ./.venv)
#   QLRF_HOME   where the lake, warehouse and Dagster instance live (default ./.qlrf)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${QLRF_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
export DAGSTER_DISABLE_TELEMETRY=1 DBT_SEND_ANONYMOUS_USAGE_STATS=False DO_NOT_TRACK=1

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "==> installing qlrf-pipelines into $VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -e .

export QLRF_HOME="${QLRF_HOME:-$PWD/.qlrf}"
echo "==> preparing the dbt manifest"
"$VENV/bin/qlrf" prepare
echo "==> importing the bundled sample scanner reports, SBOMs and provenance (a no-op when already imported)"
"$VENV/bin/qlrf" import --sample
echo "==> running refresh_estate_job on the bundled sample estate (QLRF_HOME=$QLRF_HOME)"
exec "$VENV/bin/qlrf" run
