"""Shared fixtures: stores written by the official SqliteSaver from the real example graph."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ckpt.cli.main import app
from examples.graphs import populate, serializer

os.environ.setdefault("DO_NOT_TRACK", "1")


def make_official_store(path: Path, threads: int = 3) -> list[str]:
    """Run the example graph on the official SqliteSaver at ``path``."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    with SqliteSaver.from_conn_string(str(path)) as saver:
        saver.serde = serializer()
        return populate(saver, threads)


@pytest.fixture(scope="session")
def official_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WAL-mode store written by SqliteSaver 3.1.2; never modify it (copy it first)."""
    path = tmp_path_factory.mktemp("official") / "agent.db"
    make_official_store(path)
    return path


@pytest.fixture
def db_copy(official_db: Path, tmp_path: Path) -> Path:
    """A private copy of the official store that a test may change."""
    target = tmp_path / "copy.db"
    src = sqlite3.connect(official_db)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return target


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def table_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row with every column and its storage class, in primary-key order."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        select = ", ".join(f"{c}, typeof({c})" for c in columns)
        order = "thread_id, checkpoint_ns, checkpoint_id" + (", task_id, idx" if table == "writes" else "")
        return conn.execute(f"SELECT {select} FROM {table} ORDER BY {order}").fetchall()
    finally:
        conn.close()


class Cli:
    """Runs the CLI in-process; ``stderr`` is separate from ``stdout``."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Any:
        return self.runner.invoke(app, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def no_pwned_file(tmp_path: Path) -> Iterator[Path]:
    """A path that hostile payloads try to create; the test fails if it appears."""
    target = tmp_path / "pwned"
    yield target
    assert not target.exists(), "stored data was executed"


def copy_file(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst
