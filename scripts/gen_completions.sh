#!/usr/bin/env bash
# Regenerate completions/ from the CLI itself (a test checks they are current).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
_CKPT_COMPLETE=source_bash "$PY" -m ckpt.cli > completions/ckpt.bash
_CKPT_COMPLETE=source_zsh "$PY" -m ckpt.cli > completions/_ckpt
_CKPT_COMPLETE=source_fish "$PY" -m ckpt.cli > completions/ckpt.fish
