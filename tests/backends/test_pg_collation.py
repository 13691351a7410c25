"""PostgreSQL reads in its index's collation (issue #24): nothing ckpt pairs may depend on code points.

The saver's tables are created in a database whose default collation is ICU ``en-US``, where
``"a" < "B"``, ``"é" < "f"`` and ``"a_b"``/``"a-b"`` sort otherwise than in code points. Every
path that pairs two streams (copy, ``--verify``, ``--dry-run``, ``--jobs`` ranges) must still
find each checkpoint exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from ckpt.backends import CheckpointKey, CheckpointRecord, Selection, open_store
from ckpt.backends.ops import parallel
from ckpt.backends.ops.pairing import code_point_order
from ckpt.backends.ops.parallel import migrate, thread_ranges
from ckpt.backends.ops.transfer import plan_copy
from ckpt.backends.ops.verify import verify
from ckpt.backends.postgres import ranges as pg_ranges
from ckpt.formats.semantic import semantic_digest
from tests.conftest import sqlite_url
from tests.servers import server_url

THREADS = ["a", "B", "A", "b", "a_b", "a-b", "ab", "a b", "a.b", "é", "e", "f", "Z", "ñ", "n", "_x", "-x", "x"]
THREADS += ["thread-10", "thread-9", "Thread-2", "日本", "ü", "u", "v"]


@pytest.fixture(scope="module")
def icu_url() -> Iterator[str]:
    """A database whose default collation is ICU en-US (PostgreSQL 15+), dropped afterwards."""
    base = server_url("postgres")
    name = f"ckpt_icu_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' "
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        )
    parts = urlsplit(base)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def records(official_db: Path) -> list[CheckpointRecord]:
    """The official store's records, cloned under each thread id of :data:`THREADS`."""
    with open_store(sqlite_url(official_db)) as store:
        first = list(store.records(Selection(thread_id=next(store.threads()).thread_id)))
    return [
        replace(r, key=CheckpointKey(thread, r.key.checkpoint_ns, r.key.checkpoint_id))
        for thread in THREADS
        for r in first
    ]


@pytest.fixture(scope="module")
def source(icu_url: str, records: list[CheckpointRecord]) -> str:
    url = f"{icu_url}?schema=public"
    with open_store(url, write=True) as store:
        store.write(records)
    return url


def _keys(records: list[CheckpointRecord]) -> list[str]:
    return sorted(str(r.key) for r in records)


def test_the_collation_orders_threads_otherwise_than_code_points(source: str) -> None:
    with open_store(source) as store:
        order = [t.thread_id for t in store.threads()]
        assert not code_point_order(store)
    assert sorted(order) == sorted(THREADS) and order != sorted(THREADS)  # the premise of this module


def test_reads_find_every_checkpoint_once_with_its_writes(source: str, records: list[CheckpointRecord]) -> None:
    with open_store(source) as store:
        got = list(store.records())
        headers = list(store.headers())
    assert _keys(got) == _keys(records)
    by_key = {r.key: r for r in records}
    for record in got:
        want = by_key[record.key]
        assert semantic_digest(record) == semantic_digest(want)  # checkpoint, blobs, writes
    assert [h.key for h in headers] == [r.key for r in got]  # one order: the index's
    assert [h.writes_count for h in headers] == [len(r.writes) for r in got]
    threads = [r.key.thread_id for r in got]
    assert len({t for i, t in enumerate(threads) if i == 0 or threads[i - 1] != t}) == len(THREADS)  # contiguous


def test_copy_verify_and_dry_run_across_orders(source: str, records: list[CheckpointRecord], tmp_path: Path) -> None:
    target = sqlite_url(tmp_path / "copy.db")
    plan = plan_copy(open_store(source), target, open_store)
    assert (plan.checkpoints, plan.already_present, plan.threads) == (len(records), 0, len(THREADS))
    report = migrate(source, target, open_store)
    assert report.checkpoints_written == len(records)
    with open_store(source) as pg, open_store(target) as sqlite:
        assert _keys(list(sqlite.records())) == _keys(records)
        for a, b in ((pg, sqlite), (sqlite, pg)):
            checked = verify(a, b)
            assert checked.ok and checked.checkpoints == len(records) and checked.threads == len(THREADS)
    assert plan_copy(open_store(source), target, open_store).already_present == len(records)


def test_verify_names_what_differs_across_orders(source: str, records: list[CheckpointRecord], tmp_path: Path) -> None:
    target = sqlite_url(tmp_path / "copy.db")
    migrate(source, target, open_store)
    gone = next(r.key for r in records if r.key.thread_id == "a_b")
    extra = [replace(r, key=CheckpointKey("a-c", r.key.checkpoint_ns, r.key.checkpoint_id)) for r in records[:3]]
    with open_store(target, write=True) as sqlite:
        sqlite.delete([gone])
        sqlite.write(extra)
    with open_store(source) as pg, open_store(target) as sqlite:
        forward, backward = verify(pg, sqlite), verify(sqlite, pg)
    assert (forward.missing, forward.extra, forward.different) == (1, 3, 0)
    assert forward.threads_with_differences == {"a_b", "a-c"}
    assert (backward.missing, backward.extra, backward.different) == (3, 1, 0)


@pytest.mark.parametrize("sample_rows", [0, 5])
def test_thread_ranges_from_a_sample_are_disjoint_and_cover(
    source: str, records: list[CheckpointRecord], monkeypatch: pytest.MonkeyPatch, sample_rows: int
) -> None:
    if sample_rows:
        monkeypatch.setattr(pg_ranges, "SAMPLE_ROWS", sample_rows)  # a TABLESAMPLE of a few pages
    with open_store(source, write=True) as store:
        store._conn.execute("ANALYZE checkpoints")  # type: ignore[attr-defined]
        for parts in (2, 4, 7, 100):
            ranges = list(thread_ranges(store, Selection(), parts))
            assert ranges[0][0] is None and ranges[-1][1] is None and len(ranges) <= parts
            seen = [[r.key for r in store.records(Selection(thread_from=lo, thread_to=hi))] for lo, hi in ranges]
            assert sorted(str(k) for part in seen for k in part) == _keys(records)  # disjoint, covering
            owners = {k.thread_id: i for i, part in enumerate(seen) for k in part}
            assert all(owners[k.thread_id] == i for i, part in enumerate(seen) for k in part)  # threads whole
            if not sample_rows:  # every row read: balanced ranges
                assert len(ranges) >= 2


def test_parallel_migrate_from_collated_ranges(source: str, records: list[CheckpointRecord], tmp_path: Path) -> None:
    target = sqlite_url(tmp_path / "jobs.db")
    report = parallel.migrate(source, target, open_store, jobs=2)
    assert report.checkpoints_read == len(records)
    with open_store(target) as sqlite:
        assert _keys(list(sqlite.records())) == _keys(records)


def test_a_file_exported_in_collation_order_still_verifies(
    source: str, records: list[CheckpointRecord], tmp_path: Path
) -> None:
    exported, copy = str(tmp_path / "export.jsonl"), sqlite_url(tmp_path / "copy.db")
    migrate(source, exported, open_store)
    migrate(source, copy, open_store)
    with open_store(exported) as jsonl:
        order = [r.key.thread_id for r in jsonl.records()]
        assert order != sorted(order)  # the file keeps the collation's order
    with open_store(exported) as jsonl, open_store(copy) as sqlite:
        for a, b in ((jsonl, sqlite), (sqlite, jsonl)):
            checked = verify(a, b)
            assert checked.ok and checked.checkpoints == len(records), checked.as_json()
    with open_store(exported) as jsonl:
        plan = plan_copy(jsonl, copy, open_store)
    assert (plan.checkpoints, plan.already_present, plan.threads) == (len(records), len(records), len(THREADS))
