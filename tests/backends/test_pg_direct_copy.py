"""Rows ``COPY``ed straight into PostgresSaver's tables while nothing conflicts
(``backends/postgres/writes.py``), staged with ``ON CONFLICT DO NOTHING`` as soon as a row is there,
for the blob rows a thread cut between batches repeats, and under row-level security: what
PostgresSaver reads afterwards, and which path each batch took."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
import pytest

from ckpt.backends import open_store
from ckpt.backends.core.base import CheckpointRecord, Selection
from ckpt.backends.postgres import writes
from tests.conftest import sqlite_url
from tests.servers import postgres_schema
from tests.support import resume, saver_view, tuple_view

THREADS = ("thread-1", "thread-2", "thread-3")


def _records(db: Path, thread_id: str) -> list[CheckpointRecord]:
    with open_store(sqlite_url(db)) as store:
        return list(store.records(Selection(thread_id=thread_id)))


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, set[str]]]:
    """``(table, thread ids of its rows)`` of each call that took the staging table, in order (the
    real function still runs)."""
    calls: list[tuple[str, set[str]]] = []
    real = writes.stage_and_insert

    def spy(conn: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]) -> int:
        calls.append((table, {row[0] for row in rows}))
        return real(conn, table, rows)

    monkeypatch.setattr(writes, "stage_and_insert", spy)
    return calls


def _tables(calls: list[tuple[str, set[str]]]) -> list[str]:
    return [table for table, _ in calls]


def _rows(libpq: str, thread_id: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(libpq) as conn:
        query = "SELECT * FROM {} WHERE thread_id = %s ORDER BY 1, 2, 3, 4"
        return {
            table: conn.execute(query.format(table), [thread_id]).fetchall()
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        }


def test_a_fresh_target_takes_rows_without_staging_but_the_blobs_a_cut_thread_may_repeat(
    official_db: Path, db_copy: Path, staged: list[tuple[str, set[str]]]
) -> None:
    first, second, third = (_records(official_db, thread_id) for thread_id in THREADS)
    half = len(first) // 2
    batches = [first[:half], first[half:] + second, third]  # thread-1 cut in two, as batches cut threads
    with postgres_schema() as (url, libpq):
        store = open_store(url, write=True)
        try:
            for batch in batches:
                report = store.write(batch)
                assert (report.checkpoints_written, report.checkpoints_skipped) == (len(batch), 0)
                assert report.writes_skipped == 0
        finally:
            store.close()
        # Only each batch's first thread takes the staging table, for its blob rows (the second
        # batch repeats blob rows of the first); thread-2's blobs and every checkpoint and write row
        # went straight in, and no COPY failed (a failed one would stage the whole batch).
        assert staged == [
            ("checkpoint_blobs", {"thread-1"}),
            ("checkpoint_blobs", {"thread-1"}),
            ("checkpoint_blobs", {"thread-3"}),
        ]
        for thread_id in THREADS:
            assert saver_view(libpq, thread_id) == saver_view(official_db, thread_id)
        after = resume(libpq, "thread-3")
        assert [m.content for m in after["messages"]] == [m.content for m in resume(db_copy, "thread-3")["messages"]]


def test_rows_already_there_send_the_batch_through_staging_and_stay_as_they_were(
    official_db: Path, staged: list[tuple[str, set[str]]]
) -> None:
    first = _records(official_db, "thread-1")
    with postgres_schema() as (url, libpq):
        store = open_store(url, write=True)
        try:
            store.write(first[: len(first) // 2])
        finally:
            store.close()
        with psycopg.connect(libpq, autocommit=True) as conn:  # as if the app had changed what it wrote
            conn.execute("UPDATE checkpoints SET metadata = metadata || '{\"app\": 1}'::jsonb")
        kept = _rows(libpq, "thread-1")
        held = [(row[0], row[1], row[2]) for row in kept["checkpoints"]]
        seen_before = tuple_view(libpq, held)  # PostgresSaver's reading of every checkpoint already there
        staged.clear()

        store = open_store(url, write=True)  # a new session: rows go straight in until one conflicts
        try:
            resumed = store.write(first)  # half of it is there: the COPY fails whole, the batch is staged
            assert (resumed.checkpoints_written, resumed.checkpoints_skipped) == (
                len(first) - len(first) // 2,
                len(first) // 2,
            )
            assert _tables(staged) == ["checkpoint_blobs", "checkpoints", "checkpoint_writes"]
            staged.clear()
            store.write(_records(official_db, "thread-2"))  # staged still, and every row was new...
            assert _tables(staged) == ["checkpoint_blobs", "checkpoints", "checkpoint_writes"]
            staged.clear()
            store.write(_records(official_db, "thread-3"))  # ...so the next batch goes straight in again
            assert _tables(staged) == ["checkpoint_blobs"]  # (the first thread's blobs: always staged)
            again = store.write(_records(official_db, "thread-3"))  # a rerun: nothing new, nothing changed
            assert (again.checkpoints_written, again.writes_written) == (0, 0)
        finally:
            store.close()

        after = _rows(libpq, "thread-1")
        for table, rows in kept.items():  # the app's rows as they were
            assert [row for row in after[table] if row in rows] == rows
        assert tuple_view(libpq, held) == seen_before
        for thread_id in ("thread-2", "thread-3"):
            assert saver_view(libpq, thread_id) == saver_view(official_db, thread_id)
        history = saver_view(libpq, "thread-1")
        expected = saver_view(official_db, "thread-1")
        assert [h["config"] for h in history] == [h["config"] for h in expected]
        assert [h["values"] for h in history] == [h["values"] for h in expected]
        assert [h["pending_writes"] for h in history] == [h["pending_writes"] for h in expected]


def test_tables_under_row_level_security_take_the_staging_pass(
    official_db: Path, staged: list[tuple[str, set[str]]]
) -> None:
    """PostgreSQL refuses ``COPY FROM`` into a table whose row-level security applies to the user
    (a common setup on hosted PostgreSQL): the rows go through the staging table instead."""
    role = f"ckpt_rls_{uuid.uuid4().hex[:8]}"
    with postgres_schema() as (url, libpq):
        schema = parse_qs(urlsplit(url).query)["schema"][0]
        admin = open_store(url, write=True)  # creates the saver's tables, as the app's owner would
        admin.close()
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN")
            conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
            conn.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO {role}')
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
                conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                conn.execute(f"CREATE POLICY everything ON {table} TO {role} USING (true) WITH CHECK (true)")
        try:
            parts = urlsplit(url)
            as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
            store = open_store(as_role, write=True)
            try:
                for thread_id in THREADS:
                    report = store.write(_records(official_db, thread_id))
                    assert report.checkpoints_written == len(_records(official_db, thread_id))
            finally:
                store.close()
            # refused once per table, then staged without trying again
            assert _tables(staged) == ["checkpoint_blobs", "checkpoints", "checkpoint_writes"] * 3
            for thread_id in THREADS:
                assert saver_view(libpq, thread_id) == saver_view(official_db, thread_id)
        finally:
            with psycopg.connect(libpq, autocommit=True) as conn:
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")


def test_threads_out_of_order_fall_back_to_staging_for_the_repeated_blobs(
    official_db: Path, staged: list[tuple[str, set[str]]]
) -> None:
    """An input not in thread order (a hand-made JSONL file): thread-1's second half comes after
    other threads, so its repeated blob rows are not the batch's first thread's; their ``COPY``
    fails, the batch's blobs are staged, nothing is lost."""
    first, second, third = (_records(official_db, thread_id) for thread_id in THREADS)
    half = len(first) // 2
    with postgres_schema() as (url, libpq):
        store = open_store(url, write=True)
        try:
            for batch in ([*first[:half]], [*second], [*third, *first[half:]]):
                report = store.write(batch)
                assert (report.checkpoints_written, report.checkpoints_skipped) == (len(batch), 0)
        finally:
            store.close()
        assert staged == [
            ("checkpoint_blobs", {"thread-1"}),
            ("checkpoint_blobs", {"thread-2"}),
            ("checkpoint_blobs", {"thread-3"}),  # the first thread's, then the rest after the failed COPY
            ("checkpoint_blobs", {"thread-1"}),
        ]
        for thread_id in THREADS:
            assert saver_view(libpq, thread_id) == saver_view(official_db, thread_id)
