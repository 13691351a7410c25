"""PostgreSQL to PostgreSQL as stored rows (``PostgresStore.rows_from``, issue #24).

The rows path must leave what the decoding copy leaves, as PostgresSaver reads it: the same
``get_tuple`` for every checkpoint, the same history. Where both stores are in the current layout
the rows are the source's own, byte for byte (blobs, writes) and value for value (JSONB).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

import ckpt as lib
from ckpt.backends import Selection, open_store
from ckpt.backends.core.shards import Shard
from ckpt.backends.ops.transfer import copy_records
from tests.conftest import sqlite_url
from tests.oracle import store_keys
from tests.servers import postgres_schema
from tests.shards.support import many_threads_store
from tests.support import official_saver, tuple_view

TABLES = {
    "checkpoints": "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata",
    "checkpoint_blobs": "thread_id, checkpoint_ns, channel, version, type, blob",
    "checkpoint_writes": "thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob",
}


def _rows(libpq: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(libpq) as conn:
        return {t: sorted(conn.execute(f"SELECT {c} FROM {t}").fetchall(), key=repr) for t, c in TABLES.items()}


@contextmanager
def _schemas(count: int) -> Iterator[list[tuple[str, str]]]:
    with ExitStack() as stack:
        yield [stack.enter_context(postgres_schema()) for _ in range(count)]


def _copy(source: str, target: str, *, as_rows: bool, selection: Selection = Selection(), batch: int = 7) -> Any:
    with open_store(source) as src, open_store(target, write=True) as tgt:
        return copy_records(src, tgt, selection, batch_size=batch, as_rows=as_rows)


@pytest.fixture
def source(official_db: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A PostgreSQL store of many threads (interrupts, Sends, a subgraph), in the current layout."""
    with postgres_schema() as (url, libpq):
        lib.migrate(many_threads_store(official_db, tmp_path / "many.db", threads=12), url)
        yield url, libpq


def test_rows_are_the_sources_and_the_saver_sees_what_the_decoding_copy_gives(source: tuple[str, str]) -> None:
    url, libpq = source
    keys = store_keys(url)
    with _schemas(2) as [(rows_url, rows_libpq), (decoded_url, decoded_libpq)]:
        with open_store(url) as src, open_store(rows_url, write=True) as tgt:
            assert tgt.rows_from(src, Selection(), 7) is not None, "both in the current layout: rows are copied"
        report = _copy(url, rows_url, as_rows=True)
        assert report.checkpoints_read == report.checkpoints_written == len(keys)
        assert report.writes_written > 0 and report.bytes_read > 0
        _copy(url, decoded_url, as_rows=False)
        assert _rows(rows_libpq) == _rows(libpq), "every row as the source holds it"
        view = tuple_view(libpq, keys)
        assert tuple_view(rows_libpq, keys) == view == tuple_view(decoded_libpq, keys)
        again = _copy(url, rows_url, as_rows=True)  # a rerun writes nothing and says so
        assert (again.checkpoints_written, again.writes_written) == (0, 0)
        assert again.checkpoints_skipped == len(keys) and again.writes_skipped == report.writes_written


@pytest.mark.parametrize(
    "selection",
    [
        Selection(shard=Shard(1, 3)),
        Selection(thread_from="t-003", thread_to="t-008"),
        Selection(thread_id="t-004-ü"),
        Selection(checkpoint_ns=""),
    ],
    ids=["shard", "thread-range", "one-thread", "root-namespace"],
)
def test_a_selection_copies_exactly_its_checkpoints(source: tuple[str, str], selection: Selection) -> None:
    url, _ = source
    with open_store(url) as src:
        wanted = sorted(h.key_tuple for h in src.headers(selection))
    assert wanted
    with _schemas(2) as [(rows_url, rows_libpq), (decoded_url, decoded_libpq)]:
        assert _copy(url, rows_url, as_rows=True, selection=selection).checkpoints_written == len(wanted)
        _copy(url, decoded_url, as_rows=False, selection=selection)
        assert sorted(store_keys(rows_url)) == wanted
        assert _rows(rows_libpq) == _rows(decoded_libpq)
        assert tuple_view(rows_libpq, wanted) == tuple_view(decoded_libpq, wanted)


def test_what_rows_cannot_carry_goes_through_records(source: tuple[str, str], official_db: Path) -> None:
    url, libpq = source
    with _schemas(1) as [(older, older_libpq)]:
        lib.migrate(url, older)
        with open_store(url) as src, open_store(older, write=True) as tgt:
            assert tgt.rows_from(src, Selection(thread_glob="t-00*"), 7) is None, "a glob is re-checked in Python"
            assert tgt.rows_from(src, Selection(since=0.0), 7) is None, "time bounds are re-checked in Python"
        with psycopg.connect(older_libpq, autocommit=True) as conn:
            conn.execute("DELETE FROM checkpoint_migrations WHERE v = 9")  # a store its saver has not set up fully
        with open_store(older) as old, open_store(url, write=True) as tgt:
            assert tgt.rows_from(old, Selection(), 7) is None, "an older layout is read through records"
        with open_store(sqlite_url(official_db)) as other, open_store(url, write=True) as tgt:
            assert tgt.rows_from(other, Selection(), 7) is None


def test_the_decoding_copys_repairs_are_made_in_sql(source: tuple[str, str]) -> None:
    """Metadata held as a JSON *string* of JSON, and the legacy ``writes`` key in it (rows made
    here to the shapes spec §4.6 gives PostgresSaver 2.0.0-2.0.24), come out as the decoding copy
    leaves them: the object, without ``writes``."""
    url, libpq = source
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(
            "UPDATE checkpoints SET metadata = to_jsonb(metadata::text) WHERE checkpoint_id IN "
            "(SELECT checkpoint_id FROM checkpoints WHERE thread_id = 't-002-ü')"
        )
        conn.execute(
            """UPDATE checkpoints SET metadata = metadata || '{"writes": {"agent": {"n": 1}}}' """
            "WHERE thread_id = 't-003-ü'"
        )
    with _schemas(2) as [(rows_url, rows_libpq), (decoded_url, decoded_libpq)]:
        _copy(url, rows_url, as_rows=True)
        _copy(url, decoded_url, as_rows=False)
        copied, decoded = _rows(rows_libpq), _rows(decoded_libpq)
        assert copied["checkpoints"] == decoded["checkpoints"]
        assert all(isinstance(row[6], dict) and "writes" not in row[6] for row in copied["checkpoints"])
        keys = store_keys(url)
        assert tuple_view(rows_libpq, keys) == tuple_view(decoded_libpq, keys)


def test_inline_sends_are_left_to_the_decoding_copy(source: tuple[str, str]) -> None:
    """A v<4 checkpoint with Sends in its own ``pending_sends`` (rows made here, not by an old
    release: today's fixtures of PostgresSaver 1.0 and 2.0 keep ``[]`` there) is not copied as
    rows: the decoding copy moves its Sends where today's saver finds them."""
    url, libpq = source
    with psycopg.connect(libpq, autocommit=True) as conn:
        key = conn.execute(
            "UPDATE checkpoints SET checkpoint = jsonb_set(jsonb_set(checkpoint, '{v}', '1'), '{pending_sends}', "
            """'[{"node": "worker", "arg": {"item": "alpha"}}]') WHERE ctid = (SELECT ctid FROM checkpoints """
            "WHERE parent_checkpoint_id IS NOT NULL ORDER BY thread_id, checkpoint_id LIMIT 1) "
            "RETURNING thread_id, checkpoint_ns, checkpoint_id"
        ).fetchone()
    assert key is not None
    with _schemas(3) as [(probe_url, _), (rows_url, rows_libpq), (decoded_url, decoded_libpq)]:
        with open_store(url) as src, open_store(probe_url, write=True) as tgt:
            batches = list(tgt.rows_from(src, Selection(thread_id=key[0]), 1000) or [])
        assert [(k.thread_id, k.checkpoint_ns, k.checkpoint_id) for b in batches for k in b.left] == [tuple(key)]
        report = _copy(url, rows_url, as_rows=True, batch=1000)
        _copy(url, decoded_url, as_rows=False)
        assert report.checkpoints_written == len(store_keys(url))
        assert _rows(rows_libpq) == _rows(decoded_libpq)
        keys = store_keys(url)
        assert tuple_view(rows_libpq, keys) == tuple_view(decoded_libpq, keys)


def test_pickled_values_are_carried_unread(source: tuple[str, str]) -> None:
    """Blobs the decoding copy cannot embed in a whole checkpoint (``pickle``) pass as rows."""
    url, libpq = source
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    with official_saver(libpq) as saver:
        saver.serde = JsonPlusSerializer(pickle_fallback=True)
        parent = saver.get_tuple({"configurable": {"thread_id": "t-001-ü", "checkpoint_ns": ""}})
        checkpoint = {**parent.checkpoint, "id": "1f1f9999-0000-6000-8000-000000000001"}
        checkpoint["channel_values"] = {**checkpoint["channel_values"], "opaque": Opaque(7)}
        checkpoint["channel_versions"] = {**checkpoint["channel_versions"], "opaque": "99.0.1"}
        saver.put(parent.config, checkpoint, {"source": "update", "step": 99}, {"opaque": "99.0.1"})
    with psycopg.connect(libpq) as conn:
        assert conn.execute("SELECT count(*) FROM checkpoint_blobs WHERE type = 'pickle'").fetchone() == (1,)
    with _schemas(1) as [(rows_url, rows_libpq)]:
        _copy(url, rows_url, as_rows=True)
        with official_saver(rows_libpq) as saver:
            saver.serde = JsonPlusSerializer(pickle_fallback=True)
            found = saver.get_tuple({"configurable": {"thread_id": "t-001-ü", "checkpoint_ns": ""}})
        assert found.checkpoint["id"] == checkpoint["id"] and found.checkpoint["channel_values"]["opaque"].n == 7


class Opaque:
    """A value only pickle can hold (no dataclass, no pydantic): the serializer falls back to it."""

    def __init__(self, n: int) -> None:
        self.n = n


def test_parallel_workers_copy_their_ranges_as_rows(source: tuple[str, str]) -> None:
    url, libpq = source
    with _schemas(1) as [(target, target_libpq)]:
        report = lib.migrate(url, target, jobs=2, batch_size=5, verify=True)
        assert report.jobs == 2 and report.verified is not None and report.verified.ok
        assert _rows(target_libpq) == _rows(libpq)
