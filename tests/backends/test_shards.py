"""The shard function: one definition (``core.shards``), the same in Python, SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import string

import pytest

from ckpt.backends.core.errors import UsageError
from ckpt.backends.core.shards import Shard, parse_shard, shard_lock_name, shard_of, shard_path
from ckpt.backends.postgres.rows import SHARD_SQL
from ckpt.backends.sqlite.connect import connect
from tests.servers import postgres_schema

IDS = ["", "a", "thread-1", "ü-日本", "emoji-😀", "x" * 5000, "with space", "user:42", "UPPER", "\t"] + [
    "".join(random.Random(n).choices(string.printable, k=n % 40)) for n in range(300)
]


def test_the_definition_is_the_documented_one() -> None:
    """docs/format.md: the first 15 hex digits of the MD5 of the UTF-8 bytes, mod N."""
    for thread_id in IDS:
        digest = hashlib.md5(thread_id.encode()).hexdigest()
        assert shard_of(thread_id, 7) == int(digest[:15], 16) % 7
    # pinned: a change of the function would split a running job differently (docs/format.md lists these)
    assert [shard_of(t, 7) for t in ("thread-1", "user-42", "a")] == [4, 2, 6]
    assert [shard_of(t, 1000) for t in ("thread-1", "user-42", "a")] == [591, 92, 362]


def test_shards_are_disjoint_covering_and_balanced() -> None:
    ids = [f"thread-{n}" for n in range(20_000)]
    for count in (1, 3, 7):
        sizes = [sum(1 for t in ids if Shard(k, count).holds(t)) for k in range(count)]
        assert sum(sizes) == len(ids)  # every id in exactly one shard (holds is shard_of == k)
        assert max(sizes) / (len(ids) / count) < 1.05


@pytest.mark.parametrize("count", [1, 3, 7, 1_000_003])
def test_postgres_computes_the_same_shard(count: int) -> None:
    import psycopg

    with postgres_schema() as (_, libpq), psycopg.connect(libpq) as conn:
        query = "SELECT " + SHARD_SQL.replace("thread_id", "%s::text")
        got = [conn.execute(query, (thread_id, count)).fetchone()[0] for thread_id in IDS]  # type: ignore[index]
    assert got == [shard_of(t, count) for t in IDS]


def test_sqlite_computes_the_same_shard(tmp_path: object) -> None:
    conn: sqlite3.Connection = connect(":memory:", ":memory:")
    got = [conn.execute("SELECT ckpt_shard(?, 7)", (t,)).fetchone()[0] for t in IDS]
    assert got == [shard_of(t, 7) for t in IDS]


def test_parse_shard() -> None:
    assert parse_shard("2/7") == Shard(2, 7)
    assert parse_shard(" 0 / 1 ") == Shard(0, 1)
    assert parse_shard("auto/4", {"JOB_COMPLETION_INDEX": "3"}) == Shard(3, 4)
    for bad in ("7/7", "-1/3", "1/0", "a/3", "3", "auto/3"):
        with pytest.raises(UsageError):
            parse_shard(bad, {})


def test_names_for_locks_and_files() -> None:
    shard = Shard(2, 7)
    assert shard_lock_name("prune", shard) == "prune.shard-2-of-7"
    assert shard_lock_name("prune", None) == "prune"
    assert shard_path("out-{shard}.jsonl", shard) == "out-2-of-7.jsonl"
    assert shard_path("out.jsonl", None) == "out.jsonl"
    with pytest.raises(UsageError):
        shard_path("out-{shard}.jsonl", None)
