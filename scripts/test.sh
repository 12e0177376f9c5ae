#!/usr/bin/env bash
# Set up QL-RF with its test dependencies and run the whole test suite.
# Needs the PostgreSQL server on 127.0.0.1:5432 (trust auth, user postgres) for the
# dagster-postgres tests; it is started here if it is installed but down.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${QLRF_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
export DAGSTER_DISABLE_TELEMETRY=1 DBT_SEND_ANONYMOUS_USAGE_STATS=False DO_NOT_TRACK=1

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -e ".[test]"

if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "==> starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

# govmomi's vCenter simulator for the live vSphere tests: Debian's golang-go and
# golang-github-vmware-govmomi-dev (installed here if missing), built once and cached by content.
QLRF_VCSIM_BIN="$(bash tests/emulators/vsphere/build_vcsim.sh)"
export QLRF_VCSIM_BIN

"$VENV/bin/qlrf" prepare >/dev/null
exec "$VENV/bin/python" -m pytest "$@"
