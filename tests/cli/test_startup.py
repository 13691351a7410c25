"""`ckpt --help`, `--version` and `ckpt CMD --help` stay light: no store, format or rich code is imported.

Start-up time is benchmarked in bench/bench_startup.py; this checks the cause, not the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ckpt.backends.ops.transfer import DEFAULT_BATCH
from ckpt.cli import options

HEAVY = ("ckpt.backends", "ckpt.formats", "rich", "sqlite3", "psycopg", "redis", "pymongo", "couchbase", "tomllib")
PROBE = """
import json, runpy, sys
sys.argv = ["ckpt", *sys.argv[1:]]
try:
    runpy.run_module("ckpt.cli", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list", "--help"], ["migrate", "--help"]])
def test_help_and_version_import_no_store_code(args: list[str]) -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    assert "Usage: ckpt" in probe.stdout or probe.stdout.startswith("ckpt ")
    loaded = json.loads(probe.stderr.splitlines()[-1])
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert heavy == []


def test_batch_size_default_is_the_transfer_default() -> None:
    assert options.DEFAULT_BATCH == DEFAULT_BATCH


def test_a_command_imports_no_other_command_module() -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE, "list", "--help"], capture_output=True, text=True, check=True)
    loaded = json.loads(probe.stderr.splitlines()[-1])
    commands = {m for m in loaded if m.startswith("ckpt.cli.") and m.split(".")[2] in _command_modules()}
    assert commands == {"ckpt.cli.list_"}


def _command_modules() -> set[str]:
    from ckpt.cli.main import COMMANDS

    return {module for module, _ in COMMANDS.values()}
