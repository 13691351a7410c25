"""PostgreSQL ``threads(details=False)`` (``ckpt list``): the server-side cursor's next chunk is
fetched in a thread while the caller works on this one (issue #24). Chunks of one thread here, so
every row crosses the thread boundary."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckpt.backends import open_store
from ckpt.backends.core.base import CheckpointRecord
from ckpt.backends.postgres import reads
from tests.conftest import sqlite_url
from tests.servers import postgres_schema


def _expected(records: list[CheckpointRecord]) -> list[tuple[str, int, str, str]]:
    by_thread: dict[str, list[str]] = {}
    for record in records:
        by_thread.setdefault(record.key.thread_id, []).append(record.key.checkpoint_id)
    return [(t, len(ids), min(ids), max(ids)) for t, ids in sorted(by_thread.items())]


def test_chunks_fetched_ahead_give_every_thread_and_let_the_caller_query_between(
    official_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "THREAD_CHUNK", 1)
    with postgres_schema() as (url, _libpq):
        with open_store(sqlite_url(official_db)) as source, open_store(url, write=True) as target:
            records = list(source.records())
            target.write(records)
        with open_store(url) as store:
            listed = [
                (s.thread_id, s.checkpoints, s.first_checkpoint_id, s.last_checkpoint_id)
                for s in store.threads(details=False)
            ]
            assert listed == _expected(records) and len(listed) > 1
            # A caller that queries the same store between rows (``show`` learning triggers does).
            latest = {s.thread_id: store.latest(s.thread_id) for s in store.threads(details=False)}
            assert all(header is not None for header in latest.values()) and len(latest) == len(listed)
            # Stopping after the first row leaves the connection usable, and the next list whole.
            first = next(iter(store.threads(details=False)))
            assert first.thread_id == listed[0][0]
            assert store.count() == len(records)
            assert [s.thread_id for s in store.threads(details=False)] == [t for t, *_ in listed]
