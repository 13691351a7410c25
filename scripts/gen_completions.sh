#!/usr/bin/env bash
# Regenerate completions/ from the CLI itself (tests/test_completions.py checks they are current).
# Leading blank lines are dropped: zsh loads _ckpt from $fpath only when its first line is #compdef.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
for pair in bash:ckpt.bash zsh:_ckpt fish:ckpt.fish; do
    _CKPT_COMPLETE="source_${pair%%:*}" "$PY" -m ckpt.cli | sed '/./,$!d' > "completions/${pair#*:}"
done
