"""``core.iterate.behind``: a copy's writes in a thread while the next batch is read (issue #24)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends import open_store
from ckpt.backends.core.iterate import behind
from ckpt.backends.ops.transfer import copy_records
from tests.conftest import sqlite_url
from tests.servers import postgres_schema


def test_results_come_in_order_and_the_next_item_is_made_while_one_is_at_work() -> None:
    made = {n: threading.Event() for n in range(6)}

    def items() -> Iterator[int]:
        for n in range(5):
            made[n].set()
            yield n

    def work(n: int) -> tuple[int, str, bool]:
        overlapped = made[n + 1].wait(2) if n < 4 else True  # the next item is made meanwhile
        return n * n, threading.current_thread().name, overlapped

    results = list(behind(work, items()))
    assert [r for r, _, _ in results] == [0, 1, 4, 9, 16]
    assert all(name.startswith("ckpt-behind") and overlapped for _, name, overlapped in results)


def test_nothing_after_a_failed_item_is_worked_on() -> None:
    done: list[int] = []

    def work(n: int) -> int:
        if n == 2:
            raise ValueError("item 2")
        done.append(n)
        return n

    with pytest.raises(ValueError, match="item 2"):
        list(behind(work, iter(range(6))))
    assert done == [0, 1]


def test_a_failure_making_items_waits_for_the_work_in_hand() -> None:
    done: list[int] = []

    def items() -> Iterator[int]:
        yield 0
        raise OSError("source gone")

    def work(n: int) -> int:
        threading.Event().wait(0.05)
        done.append(n)
        return n

    with pytest.raises(OSError, match="source gone"):
        list(behind(work, items()))
    assert done == [0]


@pytest.mark.parametrize("overlap", [True, False])
def test_a_copy_into_a_server_store_sends_in_the_background(
    official_db: Path, monkeypatch: pytest.MonkeyPatch, overlap: bool
) -> None:
    """PostgreSQL's writes wait on its server: each batch is built (split into the saver's rows) by
    the caller's thread and sent by the ``ckpt-behind`` thread (by the caller's, with
    ``overlap=False``, as ``--jobs`` workers copy), every checkpoint once, in the order read."""
    with postgres_schema() as (url, _), open_store(sqlite_url(official_db)) as source:
        with open_store(url, write=True) as target:
            assert target.writes_wait_on_server and not source.writes_wait_on_server
            built: list[str] = []
            sent: list[tuple[str, list[str]]] = []
            prepare = target.prepared_write

            def spy(records: list[Any]) -> Callable[[], Any]:
                built.append(threading.current_thread().name)
                send = prepare(records)

                def sending() -> Any:
                    sent.append((threading.current_thread().name, [r.key.checkpoint_id for r in records]))
                    return send()

                return sending

            monkeypatch.setattr(target, "prepared_write", spy)
            report = copy_records(source, target, batch_size=4, as_rows=False, overlap=overlap)
        keys = [h.key.checkpoint_id for h in source.headers()]
        assert report.checkpoints_written == len(keys) and len(sent) > 2
        main = threading.main_thread().name
        assert set(built) == {main}
        assert all(name.startswith("ckpt-behind" if overlap else main) for name, _ in sent)
        assert [k for _, batch in sent for k in batch] == keys


def test_a_bad_batch_is_written_record_by_record_while_no_other_batch_is_built(
    official_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``skip_bad``, a batch holding a record the target refuses goes record by record in the
    sending thread; building a batch changes the target's state (loss counts, caches), so the
    copy's thread never builds the next one meanwhile."""
    from dataclasses import replace

    from ckpt.backends.core.base import Payload
    from ckpt.backends.ops.transfer import _decoded_batches

    with open_store(sqlite_url(official_db)) as source, postgres_schema() as (url, _):
        records = list(source.records())
        bad = {records[i].key for i in range(1, len(records), 7)}
        broken = [replace(r, checkpoint=Payload("pickle", b"\x80")) if r.key in bad else r for r in records]
        with open_store(url, write=True) as target:
            building, overlapped = [0], []
            prepare = target.prepared_write

            def spy(batch: list[Any]) -> Callable[[], Any]:
                building[0] += 1
                overlapped.append(building[0] > 1)
                try:
                    threading.Event().wait(0.01)  # widen the window another builder would fall into
                    return prepare(batch)
                finally:
                    building[0] -= 1

            monkeypatch.setattr(target, "prepared_write", spy)
            skipped: list[str] = []
            done = list(_decoded_batches(iter(broken), source, target, 5, skipped, overlap=True))
    assert sum(d.checkpoints_written for d in done) == len(records) - len(bad)
    assert len(skipped) == len(bad) and not any(overlapped)
