"""PostgreSQL: the official ``PostgresStore`` (langgraph-checkpoint-postgres) in a fresh schema.

ckpt finds the schema by its URL's ``?schema=``; the official store by the libpq URL whose
``search_path`` option is that schema (both from ``tests.servers.postgres_schema``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.memory.kinds import MemoryKind
from tests.servers import postgres_schema

_libpq: dict[str, str] = {}
"""The official store's connection string for each place's ckpt URL."""


@contextmanager
def place(tmp_path: Path) -> Iterator[str]:
    with postgres_schema() as (url, libpq):
        _libpq[url] = libpq
        try:
            yield url
        finally:
            del _libpq[url]


@contextmanager
def official(url: str) -> Iterator[Any]:
    from langgraph.store.postgres import PostgresStore

    with PostgresStore.from_conn_string(_libpq[url]) as store:
        store.setup()
        yield store


KIND = MemoryKind("postgres", place, official)
