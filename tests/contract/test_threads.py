"""Issue #22 on every store kind: copy-thread, fork, delete by thread and by run, the residue scan."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from ckpt.backends import CheckpointRecord, open_store
from ckpt.backends.core.base import Capability, CheckpointKey, Payload, Selection, Store
from ckpt.backends.core.errors import CheckpointNotFoundError, NotFoundError, ThreadNotFoundError, UsageError
from ckpt.backends.ops import threads
from tests.contract.conftest import StoreFactory

Row = tuple[str, str | None, bytes, bytes, tuple[tuple[str, str, int, str, bytes], ...]]


def _interrupted(records: list[CheckpointRecord]) -> str:
    return next(r.key.thread_id for r in records if any(w.idx == -3 for w in r.writes) and r.key.checkpoint_ns == "")


def _rows(store: Store, thread_id: str) -> list[tuple[str, str, Row]]:
    return [
        (
            r.key.checkpoint_ns,
            r.key.checkpoint_id,
            (
                r.key.checkpoint_ns,
                r.parent_checkpoint_id,
                r.checkpoint.data,
                r.metadata.data,
                tuple(sorted((w.task_id, w.task_path, w.idx, w.channel, w.value.data) for w in r.writes)),
            ),
        )
        for r in store.records(Selection(thread_id=thread_id))
    ]


def _filled(make: StoreFactory, records: list[CheckpointRecord]) -> str:
    url = make()
    with open_store(url, write=True) as store:
        store.write(records)
    return url


def test_copy_thread_everywhere(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> None:
    thread = _interrupted(official_records)
    url = _filled(new_store_url, official_records)
    if url.endswith((".jsonl", ".jsonl.gz")):
        out = new_store_url()
        with open_store(url) as source, open_store(out, write=True) as target:
            report = threads.copy_thread(source, thread, "copied", target=target)
            with pytest.raises(UsageError):
                threads.copy_thread(source, thread, "copied")  # an export file takes nothing in place
        with open_store(url) as source, open_store(out) as target:
            assert [r[2] for r in _rows(target, "copied")] == [r[2] for r in _rows(source, thread)]
        assert report.checkpoints == len(_rows(open_store(url), thread))
        return
    with open_store(url, write=True) as store:
        before = _rows(store, thread)
        report = threads.copy_thread(store, thread, "copied")
        assert report.checkpoints == len(before) and report.namespaces == 2
        assert [r[2] for r in _rows(store, "copied")] == [r[2] for r in before]
        assert _rows(store, thread) == before  # the source is unchanged
        with pytest.raises(UsageError, match="already exists"):
            threads.copy_thread(store, thread, "copied")
        threads.copy_thread(store, thread, "copied", overwrite=True)
        assert [r[2] for r in _rows(store, "copied")] == [r[2] for r in before]
        with pytest.raises(ThreadNotFoundError):
            threads.copy_thread(store, "no-such-thread", "other")
        assert not _rows(store, "other")


def test_fork_everywhere(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> None:
    thread = _interrupted(official_records)
    url = _filled(new_store_url, official_records)
    if url.endswith((".jsonl", ".jsonl.gz")):
        pytest.skip("an export file is forked into another store (copy-thread --to covers the path)")
    with open_store(url, write=True) as store:
        root = [h for h in store.headers(Selection(thread_id=thread, checkpoint_ns=""))]
        at = root[len(root) // 2]
        report = threads.fork(store, thread, at.key.checkpoint_id, "forked")
        ids = [h.key.checkpoint_id for h in store.headers(Selection(thread_id="forked", checkpoint_ns=""))]
        assert ids == [h.key.checkpoint_id for h in root[: len(root) // 2 + 1]]
        assert report.at_checkpoint == at.key.checkpoint_id
        with pytest.raises(CheckpointNotFoundError):
            threads.fork(store, thread, "ffffffff", "forked-2")
        with pytest.raises(UsageError):
            threads.fork(store, thread, at.key.checkpoint_id, "forked")
        assert not _rows(store, "forked-2")


def _with_run(records: list[CheckpointRecord], thread: str, run: str) -> list[CheckpointRecord]:
    out = []
    for r in records:
        if r.key.thread_id == thread and r.key.checkpoint_ns == "" and r.metadata.type == "json":
            meta = orjson.loads(r.metadata.data)
            if meta.get("step", 0) >= 2:
                r = replace(r, metadata=Payload("json", orjson.dumps({**meta, "run_id": run})))
        out.append(r)
    return out


def test_delete_threads_and_runs_everywhere(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord]
) -> None:
    thread = _interrupted(official_records)
    other = next(r.key.thread_id for r in official_records if r.key.thread_id != thread)
    url = _filled(new_store_url, _with_run(official_records, other, "run-A"))
    with open_store(url, write=not url.endswith(("jsonl", "gz"))) as store:
        if Capability.DELETE not in store.capabilities:
            with pytest.raises(UsageError):
                threads.delete(store, threads.plan_delete(store, thread_globs=[thread]))
            return
        with pytest.raises(NotFoundError):
            threads.plan_delete(store, thread_globs=["no-such-*"])
        with pytest.raises(NotFoundError):
            threads.plan_delete(store, run_ids=["no-such-run"])
        others_before = _rows(store, other)
        plan = threads.plan_delete(store, thread_globs=[thread])
        assert plan.thread_ids == [thread] and plan.checkpoints == len(_rows(store, thread))
        report = threads.delete(store, plan)
        assert report.clean and report.deleted_checkpoints == plan.checkpoints, report
        assert not _rows(store, thread) and _rows(store, other) == others_before

        runs = threads.plan_delete(store, run_ids=["run-A"])
        assert runs.keys and all(k.thread_id == other for k in runs.keys)
        report = threads.delete(store, runs)
        assert report.clean, report
        left = {(ns, cid) for ns, cid, _ in _rows(store, other)}
        assert not left & {(k.checkpoint_ns, k.checkpoint_id) for k in runs.keys}
        assert left  # the rest of the thread stays


def test_a_late_write_is_reported(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = _interrupted(official_records)
    url = _filled(new_store_url, official_records)
    if url.endswith(("jsonl", "gz")):
        pytest.skip("export files have no delete")
    late = next(r for r in official_records if r.key.thread_id == thread)

    def writer(store: Store, plan: threads.DeletePlan) -> None:  # a saver racing the delete (langgraph#7206)
        store.write([replace(late, key=CheckpointKey(thread, "", late.key.checkpoint_id))])

    monkeypatch.setattr(threads, "_after_delete", writer)
    with open_store(url, write=True) as store:
        report = threads.delete(store, threads.plan_delete(store, thread_globs=[thread]))
        assert report.late_writes and not report.clean
        assert sum(report.residue.values()) >= 1
