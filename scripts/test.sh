#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a developer's: installs what it needs into .venv,
# starts the servers the tests talk to (none yet beyond SQLite), type-checks, lints, tests.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k export  # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

export DO_NOT_TRACK=1 PIP_DISABLE_PIP_VERSION_CHECK=1
PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/pip install --quiet -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import ckpt.cli, langgraph.checkpoint.sqlite' # fail here, not in 50 tests, if the install broke

echo "== mypy --strict (cli, backends, formats)"
.venv/bin/mypy
echo "== ruff"
.venv/bin/ruff check cli backends formats tests examples scripts bench
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
