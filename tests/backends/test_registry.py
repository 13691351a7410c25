"""URLs pick drivers by scheme; missing drivers and unknown schemes are clear errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ckpt import backends
from ckpt.backends import open_store, store_class
from ckpt.backends.core.errors import BackendUnavailableError, UnknownSchemeError
from ckpt.backends.core.urls import redact, sqlite_path
from ckpt.backends.jsonl.store import JsonlStore
from ckpt.backends.sqlite.store import SqliteStore


def test_sqlite_url_forms() -> None:
    assert sqlite_path("sqlite:///rel/agent.db") == "rel/agent.db"
    assert sqlite_path("sqlite:////abs/agent.db") == "/abs/agent.db"
    assert sqlite_path("sqlite:///with%20space.db") == "with space.db"
    assert sqlite_path("agent.db") == "agent.db"
    assert store_class("sqlite:///x.db") is SqliteStore and store_class("./agent.sqlite") is SqliteStore
    assert store_class("dump.jsonl") is JsonlStore and store_class("dump.jsonl.gz") is JsonlStore
    assert store_class("-") is JsonlStore


def test_relative_sqlite_url_is_relative_to_the_working_directory(
    official_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(official_db.parent)
    with open_store(f"sqlite:///{official_db.name}") as store:
        assert store.count() == 29
    with open_store(f"sqlite:///{official_db}") as store:  # sqlite:////abs
        assert store.count() == 29


def test_unknown_scheme() -> None:
    with pytest.raises(
        UnknownSchemeError, match=r"unknown URL scheme 'ftp'; expected one of: couchbase://, .*postgres://, .*sqlite://"
    ):
        store_class("ftp://x")
    with pytest.raises(UnknownSchemeError, match="for 'notes.txt'"):
        store_class("notes.txt")


def test_postgres_url_forms() -> None:
    from ckpt.backends.postgres.store import PostgresStore

    for url in ("postgresql://h/db", "postgres://h/db", "postgresql+psycopg://h/db"):
        assert store_class(url) is PostgresStore


@pytest.mark.parametrize(
    ("url", "module", "message"),
    [
        (
            "redis://localhost:6379/0",
            "redis",
            "redis:// needs the 'redis' package: pip install 'langgraph-ckpt[redis]'",
        ),
        (
            "mongodb+srv://c/db",
            "pymongo",
            "mongodb:// needs the 'pymongo' package: pip install 'langgraph-ckpt[mongodb]'",
        ),
        (
            "postgres://h/db",
            "psycopg",
            "postgres:// needs the 'psycopg' package: pip install 'langgraph-ckpt[postgres]'",
        ),
    ],
)
def test_missing_driver_names_the_install_line(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, message: str
) -> None:
    package = store_class(url).__module__
    monkeypatch.delitem(sys.modules, package)
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(BackendUnavailableError) as info:
        store_class(url)
    assert str(info.value) == message


def test_one_list_of_schemes_the_driver_classes_declare() -> None:
    """The registry's schemes are the drivers' own (declared once, in each driver's light package)."""
    schemes = backends.known_schemes()
    assert schemes == sorted(
        ["sqlite", "postgresql", "postgres", "redis", "rediss", "redis+cluster", "rediss+cluster"]
        + ["mongodb", "mongodb+srv", "couchbase", "couchbases"]
    )
    classes = {store_class(f"{scheme}://x") for scheme in schemes}
    assert sorted(s for cls in classes for s in cls.schemes) == schemes
    assert all(scheme in store_class(f"{scheme}://x").schemes for scheme in schemes)


def test_redact_masks_passwords_everywhere() -> None:
    text = "postgresql://admin:s3cr%40t@db:5432/x and redis://:pw@h:6379/0 and sqlite:///a.db"
    assert redact(text) == "postgresql://admin:***@db:5432/x and redis://:***@h:6379/0 and sqlite:///a.db"
    assert "s3cr" not in redact("mongodb+srv://u:s3cr@cluster/db")


def test_write_open_creates_nothing_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no such directory"):
        open_store(f"sqlite:///{tmp_path}/missing/dir.db", write=True)
    assert not os.path.exists(tmp_path / "missing")
