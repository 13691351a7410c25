"""Issue #24: ``ckpt list`` on a server store never asks the server for a payload.

Each client library is instrumented where every request leaves it (redis-py's command packer,
pymongo's ``find``/``aggregate``, psycopg's ``execute``/``copy``); a request that would bring a
checkpoint, blob or write payload back fails the test. The stores are real servers, filled by
``ckpt migrate`` from the official SQLite store; the listing must equal the SQLite one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, sqlite_url
from tests.servers import mongo_database, postgres_schema, redis_prefix

OPTIONS = {
    "all": [],
    "glob": ["--thread", "thread-[12]"],
    "exact": ["--thread", "thread-3"],
    "ns": ["--ns", ""],
    "since": ["--since", "2000-01-01"],
}


@contextmanager
def _patched(owner: Any, name: str, check: Callable[..., str | None], seen: list[str]) -> Iterator[None]:
    """``owner.name`` wrapped: ``check(*args, **kwargs)`` names a payload request, recorded in ``seen``."""
    original = getattr(owner, name)

    @wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        why = check(*args, **kwargs)
        if why is not None:
            seen.append(why)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


# -- Redis: every command goes through the connection's packer ----------------------------------------------------

_REDIS_PAYLOAD_PATH = re.compile(r"^(\$|\*|\$\.(checkpoint|metadata|blob|channel_values)\b.*|@(blob|checkpoint))$")


def _text(arg: Any) -> str:
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _redis_check(_packer: Any, *args: Any) -> str | None:
    words = [_text(a) for a in args]
    name = words[0].upper() if words else ""
    if name == "JSON.GET":
        paths = words[2:] or ["$"]
    elif name == "JSON.MGET":
        paths = words[-1:]
    elif name == "FT.SEARCH":
        upper = [w.upper() for w in words]
        limit_zero = "LIMIT" in upper and words[upper.index("LIMIT") + 2 : upper.index("LIMIT") + 3] == ["0"]
        paths = [] if "NOCONTENT" in upper or limit_zero else ["$"]
    elif name == "FT.AGGREGATE" and "LOAD" in [w.upper() for w in words]:
        at = [w.upper() for w in words].index("LOAD")
        paths = words[at + 1 : at + 2 + int(words[at + 1])] if words[at + 1] != "*" else ["*"]
    else:
        return None
    bad = [p for p in paths if _REDIS_PAYLOAD_PATH.match(p)]
    return f"redis {' '.join(words[:3])} … {bad}" if bad else None


def _requests(packed: bytes) -> Iterator[list[bytes]]:
    """The commands in raw RESP request bytes (arrays of bulk strings, one after another)."""
    at = 0
    while at < len(packed):
        end = packed.index(b"\r\n", at)
        count, at, words = int(packed[at + 1 : end]), end + 2, []
        for _ in range(count):
            end = packed.index(b"\r\n", at)
            size = int(packed[at + 1 : end])
            words.append(packed[end + 2 : end + 2 + size])
            at = end + 2 + size + 2
        yield words


def _redis_raw_check(_conn: Any, command: Any, *args: Any, **kwargs: Any) -> str | None:
    """Commands ckpt packs itself (``backends/redis/wire.py``, ``fetch.py``) and sends raw; a
    script counts as what it runs (``EVAL`` of a body that reads documents)."""
    chunks = command if isinstance(command, (list, tuple)) else [command]
    for words in _requests(b"".join(bytes(c) for c in chunks)):
        if words and words[0].upper() == b"EVAL" and len(words) > 1 and re.search(rb"JSON\.M?GET", words[1]):
            return f"redis EVAL of a script reading documents ({words[1][:40]!r}…)"
        why = _redis_check(None, *words)
        if why is not None:
            return why
    return None


@contextmanager
def redis_guard(seen: list[str]) -> Iterator[None]:
    import redis.connection

    with ExitStack() as stack:
        for name in ("PythonRespSerializer", "HiredisRespSerializer"):
            packer = getattr(redis.connection, name, None)
            if packer is not None:
                stack.enter_context(_patched(packer, "pack", _redis_check, seen))
        raw = redis.connection.AbstractConnection
        stack.enter_context(_patched(raw, "send_packed_command", _redis_raw_check, seen))
        yield


# -- MongoDB: documents come back through find and aggregate ------------------------------------------------------

_MONGO_PAYLOADS = {"checkpoints": "checkpoint", "checkpoint_writes": "value"}


def _mongo_find_check(collection: Any, *args: Any, **kwargs: Any) -> str | None:
    field = _MONGO_PAYLOADS.get(collection.name)
    if field is None:
        return None
    projection = kwargs.get("projection", args[1] if len(args) > 1 else None)
    if projection is None or (isinstance(projection, dict) and _projects(projection, field)):
        return f"mongodb find on {collection.name} with projection {projection!r}"
    return None


def _projects(projection: dict[str, Any], field: str) -> bool:
    """Whether a projection returns ``field``: included, or an exclusion that keeps it."""
    included = {k for k, v in projection.items() if v and k != "_id"}
    return field in included if included else projection.get(field, 1) != 0


def _mongo_aggregate_check(collection: Any, pipeline: list[dict[str, Any]], *args: Any, **kwargs: Any) -> str | None:
    field = _MONGO_PAYLOADS.get(collection.name)
    if field is None:
        return None
    for stage in pipeline:
        if "$group" in stage or "$count" in stage:
            return None
        if "$project" in stage:
            return f"mongodb aggregate projects {field}" if _projects(stage["$project"], field) else None
    return f"mongodb aggregate on {collection.name} returns whole documents"


@contextmanager
def mongo_guard(seen: list[str]) -> Iterator[None]:
    from pymongo.collection import Collection

    with ExitStack() as stack:
        for name in ("find", "find_one", "find_raw_batches"):
            stack.enter_context(_patched(Collection, name, _mongo_find_check, seen))
        for name in ("aggregate", "aggregate_raw_batches"):
            stack.enter_context(_patched(Collection, name, _mongo_aggregate_check, seen))
        yield


# -- PostgreSQL: the SQL text names the payload columns ----------------------------------------------------------

_SIZE_ONLY = re.compile(r"\b(pg_column_size|octet_length|length)\s*\([^()]*\)", re.IGNORECASE)
_PG_PAYLOAD = re.compile(r"\b(blob|checkpoint)\b|select\s+\*", re.IGNORECASE)


def _pg_check(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> str | None:
    text = query if isinstance(query, str) else query.decode() if isinstance(query, bytes) else None
    if text is None:
        text = query.as_string(cursor.connection)
    found = _PG_PAYLOAD.search(_SIZE_ONLY.sub("size()", text))
    return f"postgres {found.group(0)!r} in {' '.join(text.split())[:160]}" if found else None


@contextmanager
def pg_guard(seen: list[str]) -> Iterator[None]:
    import psycopg

    with ExitStack() as stack:
        for cls in (psycopg.Cursor, psycopg.ServerCursor):
            stack.enter_context(_patched(cls, "execute", _pg_check, seen))
        stack.enter_context(_patched(psycopg.Cursor, "copy", _pg_check, seen))
        yield


@contextmanager
def _server(kind: str) -> Iterator[str]:
    if kind == "redis":
        with redis_prefix() as url:
            yield url
    elif kind == "mongodb":
        with mongo_database() as url:
            yield url
    else:
        with postgres_schema() as (url, _):
            yield url


GUARDS = {"redis": redis_guard, "mongodb": mongo_guard, "postgres": pg_guard}
# (kind, options) that still read payloads, each with its reason
KNOWN: set[tuple[str, str]] = set()


@pytest.mark.parametrize("kind", sorted(GUARDS))
def test_list_requests_no_payload(kind: str, cli: Cli, official_db: Path) -> None:
    with _server(kind) as url:
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        for label, options in OPTIONS.items():
            expected = _rows(cli("list", sqlite_url(official_db), *options, "-o", "jsonl").stdout)
            seen: list[str] = []
            with GUARDS[kind](seen):
                result = cli("list", url, *options, "-o", "jsonl")
            assert result.exit_code == 0, result.output
            assert _rows(result.stdout) == expected, label
            if (kind, label) in KNOWN:
                assert seen, f"{kind} {label} no longer reads payloads: drop it from KNOWN"
                continue
            assert not seen, f"ckpt list {' '.join(options)} on {kind}: {seen[:3]}"


@pytest.mark.parametrize("kind", sorted(GUARDS))
def test_planning_migrate_jobs_requests_no_payload(kind: str, cli: Cli, official_db: Path) -> None:
    """``migrate --jobs`` splits the source into thread ranges from its thread summaries alone."""
    from ckpt.backends import Selection, open_store
    from ckpt.backends.ops.parallel import thread_ranges

    with _server(kind) as url:
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        seen: list[str] = []
        with open_store(url) as store, GUARDS[kind](seen):
            ranges = list(thread_ranges(store, Selection(), 3))
            selected = list(thread_ranges(store, Selection(thread_glob="thread-*"), 3))
        assert len(ranges) >= 2 and len(selected) >= 2
        assert not seen, f"planning thread ranges on {kind}: {seen[:3]}"


def test_the_guards_catch_a_payload_read(official_db: Path, cli: Cli) -> None:
    """The instruments themselves: reading records trips each of them."""
    from ckpt.backends import open_store

    for kind, guard in GUARDS.items():
        with _server(kind) as url:
            assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
            seen: list[str] = []
            with guard(seen), open_store(url) as store:
                assert sum(1 for _ in store.records()) == 29
            assert seen, kind


def _rows(text: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in json.loads(line).items() if k != "keys_without_ttl"} for line in text.splitlines()]
