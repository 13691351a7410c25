"""Thread operations the official savers declare but lack (issue #22): copy a thread, fork one at a
checkpoint, delete threads or runs with a residue scan that proves nothing is left.

The signatures below are the contract ``ckpt.savers`` (the savers' ``copy_thread``,
``delete_for_runs``) and the CLI build on.

Records carry raw payloads, so a copy changes only the key's ``thread_id``: no checkpoint, metadata
or write payload holds the thread id (``get_checkpoint_metadata`` leaves ``thread_id`` out of
metadata, ``EXCLUDED_METADATA_KEYS``), and checkpoint ids, ``v``, namespaces and task ids stay, so
pending writes keep matching their tasks. The target's ``write`` files each record as its saver
would (PostgreSQL blobs under the new thread, Redis documents, latest pointers and write
registries, MongoDB and Couchbase documents).

``fork`` copies the fork point's history as it is. LangGraph's own fork
(``update_state(config, None, as_node="__copy__")``, ``langgraph/pregel/main.py``) puts a *new*
checkpoint with ``source: "fork"`` beside the old one *in the same thread*: a fresh id and ``ts``,
the same parent, and no pending writes (they belong to the old id's tasks, whose ids hash the
checkpoint id). Reproducing that would rewrite ids and drop the writes an interrupted thread
resumes from; a new thread holding the ancestors needs no sibling to tell apart, and the app
resumes (or ``update_state``-forks itself) from there.

Deletes (``delete_thread`` / ``delete_for_runs``) are planned, locked, batched, then proved by the
store's residue scan (:meth:`Store.residue`); a writer that wrote to a deleted thread while the
delete ran (langgraph#7206) is reported in ``late_writes``, never deleted unseen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from ckpt.backends.core.base import Capability, CheckpointHeader, CheckpointKey, CheckpointRecord, Selection, Store
from ckpt.backends.core.errors import NotFoundError, ThreadNotFoundError, UsageError
from ckpt.backends.core.iterate import batched
from ckpt.backends.core.shards import Shard, shard_lock_name

BATCH = 2000
"""Checkpoints per write or delete transaction."""
THREAD_BATCH = 100
"""Threads per ``delete_threads`` call."""
LOCK = "threads"
"""The name of the store lock copy, fork and delete hold (one destructive thread op at a time)."""

_after_delete: Callable[[Store, DeletePlan], None] | None = None
"""TEST-ONLY: called after the deletes, before the residue scan (plants a leftover or a late write)."""


@dataclass(slots=True)
class ThreadCopyReport:
    """What ``copy_thread``/``fork`` wrote under the new thread id."""

    source_thread: str
    new_thread: str
    checkpoints: int = 0
    writes: int = 0
    namespaces: int = 0
    at_checkpoint: str | None = None
    """``fork``: the checkpoint the new thread's history ends at."""

    def as_json(self) -> dict[str, Any]:
        return {
            "source_thread": self.source_thread,
            "new_thread": self.new_thread,
            "checkpoints": self.checkpoints,
            "writes": self.writes,
            "namespaces": self.namespaces,
            "at_checkpoint": self.at_checkpoint,
        }


@dataclass(slots=True)
class DeletePlan:
    """What ``delete`` would remove: the threads matched by glob, the checkpoints of the runs."""

    thread_ids: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    checkpoints: int = 0
    writes: int = 0
    bytes: int = 0
    keys: list[CheckpointKey] = field(default_factory=list)
    """The checkpoints of the runs (threads deleted whole are not listed)."""
    shard: Shard | None = None
    """``--shard K/N``: the plan holds only that shard's threads and takes only its lock."""

    def as_json(self) -> dict[str, Any]:
        return {
            "thread_ids": self.thread_ids,
            "run_ids": self.run_ids,
            "checkpoints": self.checkpoints,
            "writes": self.writes,
            "bytes": self.bytes,
            "run_checkpoints": [[k.thread_id, k.checkpoint_ns, k.checkpoint_id] for k in self.keys],
            **({"shard": self.shard.as_json()} if self.shard is not None else {}),
        }


@dataclass(slots=True)
class DeleteReport:
    plan: DeletePlan
    dry_run: bool
    deleted_checkpoints: int = 0
    residue: dict[str, int] = field(default_factory=dict)
    """What the residue scan still found after the delete, by kind (rows, keys, blobs, index
    entries, latest pointers); all zero when the delete is proven."""
    late_writes: list[str] = field(default_factory=list)
    """Writes that appeared for a deleted thread while the delete ran (a racing writer)."""

    @property
    def clean(self) -> bool:
        return not any(self.residue.values()) and not self.late_writes

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            **self.plan.as_json(),
            "deleted_checkpoints": self.deleted_checkpoints,
            "residue": self.residue,
            "residue_total": sum(self.residue.values()),
            "late_writes": self.late_writes,
            "clean": self.clean,
        }


def copy_thread(
    source: Store,
    thread_id: str,
    new_thread_id: str,
    *,
    target: Store | None = None,
    overwrite: bool = False,
) -> ThreadCopyReport:
    """The whole thread (every namespace, the parent chain, pending writes) under ``new_thread_id``,
    in ``target`` (default: the same store), with ``BaseCheckpointSaver.copy_thread`` semantics.
    ``ThreadNotFoundError`` for an unknown thread; ``UsageError`` when ``new_thread_id`` exists
    and not ``overwrite``."""
    dest = _check_target(source, target, thread_id, new_thread_id)
    if _first(source, thread_id) is None:
        raise ThreadNotFoundError(f"no thread {thread_id!r} in this store")
    report = ThreadCopyReport(thread_id, new_thread_id)
    _copy(source, dest, Selection(thread_id=thread_id), None, report, overwrite)
    return report


def fork(
    store: Store,
    thread_id: str,
    checkpoint_id: str,
    new_thread_id: str,
    *,
    overwrite: bool = False,
    checkpoint_ns: str = "",
    target: Store | None = None,
) -> ThreadCopyReport:
    """A new thread whose history ends at ``checkpoint_id`` of ``thread_id`` (its ancestors and it,
    with its pending writes), so the app resumes or replays from there.

    ``checkpoint_id`` may be a unique prefix (as ``ckpt list`` shows ids). Subgraph checkpoints go
    along when their ``parents`` metadata names a checkpoint of that history (what a paused
    subgraph resumes from). ``CheckpointNotFoundError``/``ThreadNotFoundError`` (exit 3) when the
    checkpoint is not in the thread."""
    from ckpt.backends.core.base import find_record

    dest = _check_target(store, target, thread_id, new_thread_id)
    if _first(store, thread_id) is None:
        raise ThreadNotFoundError(f"no thread {thread_id!r} in this store")
    at = find_record(store, thread_id, checkpoint_ns, checkpoint_id).key
    headers = list(store.headers(Selection(thread_id=thread_id)))
    parent = {h.key.checkpoint_id: h.parent_checkpoint_id for h in headers if h.key.checkpoint_ns == checkpoint_ns}
    chain: set[str] = set()
    cursor: str | None = at.checkpoint_id
    while cursor is not None and cursor in parent and cursor not in chain:
        chain.add(cursor)
        cursor = parent[cursor]
    keep = {(checkpoint_ns, c) for c in chain}
    below = checkpoint_ns + "|" if checkpoint_ns else ""
    for header in headers:
        ns = header.key.checkpoint_ns
        if ns == checkpoint_ns or not ns.startswith(below):
            continue
        parents = (header.metadata or {}).get("parents")
        if isinstance(parents, dict) and parents.get(checkpoint_ns) in chain:
            keep.add((ns, header.key.checkpoint_id))
    report = ThreadCopyReport(thread_id, new_thread_id, at_checkpoint=at.checkpoint_id)
    _copy(store, dest, Selection(thread_id=thread_id), keep, report, overwrite)
    return report


def _check_target(source: Store, target: Store | None, thread_id: str, new_thread_id: str) -> Store:
    dest = source if target is None else target
    if not thread_id or not new_thread_id:
        raise UsageError("thread ids must not be empty")
    if dest is source and thread_id == new_thread_id:
        raise UsageError(f"the new thread id is the source's own ({thread_id!r})")
    if Capability.WRITE not in dest.capabilities:
        raise UsageError(f"{dest.kind} stores cannot take a thread (copy into another store with --to)")
    return dest


def _first(store: Store, thread_id: str) -> CheckpointHeader | None:
    return next(iter(store.headers(Selection(thread_id=thread_id))), None)


def _lock(store: Store) -> AbstractContextManager[None]:
    return store.lock(LOCK) if Capability.DELETE in store.capabilities else nullcontext()


def _copy(
    source: Store,
    dest: Store,
    selection: Selection,
    keep: set[tuple[str, str]] | None,
    report: ThreadCopyReport,
    overwrite: bool,
) -> None:
    from ckpt.backends.ops.sends import for_target

    new = report.new_thread
    with _lock(dest):
        if _first(dest, new) is not None:
            if not overwrite:
                raise UsageError(f"thread {new!r} already exists in the target (--overwrite replaces it)")
            dest.delete_threads([new])
            left = dest.residue([new])
            if any(left.values()):
                from ckpt.backends.core.errors import IntegrityError

                raise IntegrityError(f"thread {new!r} could not be cleared for --overwrite: {_words(left)} remain")
        records: Iterable[CheckpointRecord] = for_target(source.records(selection), source, dest)
        if keep is not None:
            records = (r for r in records if (r.key.checkpoint_ns, r.key.checkpoint_id) in keep)
        renamed: Iterator[CheckpointRecord] = (replace(r, key=replace(r.key, thread_id=new)) for r in records)
        with _spooled(renamed) if dest is source else nullcontext(renamed) as stream:
            namespaces: set[str] = set()
            for batch in batched(stream, BATCH):
                dest.write(batch)
                report.checkpoints += len(batch)
                report.writes += sum(len(r.writes) for r in batch)
                namespaces.update(r.key.checkpoint_ns for r in batch)
            report.namespaces = len(namespaces)


@contextmanager
def _spooled(records: Iterable[CheckpointRecord]) -> Iterator[Iterator[CheckpointRecord]]:
    """The records read through once into a temporary JSON Lines file, then streamed back from it:
    a copy within one store must finish reading before its connection writes, and a thread of a
    million checkpoints must not be held in memory for that (``ckpt upgrade`` spools the same way)."""
    import tempfile
    from pathlib import Path

    from ckpt.backends.jsonl.store import JsonlStore

    with tempfile.TemporaryDirectory(prefix="ckpt-copy-") as tmp:
        spool = str(Path(tmp) / "thread.jsonl")
        with JsonlStore.open(spool, write=True) as out:
            out.write(records)
        with JsonlStore.open(spool) as spooled:
            yield spooled.records()


def _words(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)


def plan_delete(
    store: Store, *, thread_globs: Sequence[str] = (), run_ids: Sequence[str] = (), shard: Shard | None = None
) -> DeletePlan:
    """Which threads/checkpoints ``delete`` would remove (``delete_thread`` / ``delete_for_runs``).

    A run is the checkpoints whose ``run_id`` is one of ``run_ids``: the metadata key SqliteSaver,
    PostgresSaver and MongoDBSaver copy in from ``config``, or the document field RedisSaver files
    it in (``CheckpointHeader.run_id``). A glob that
    matches no thread, or a run with no checkpoint, is ``NotFoundError`` (exit 3): nothing is planned.
    With ``shard``, only that shard's threads are planned, and a shard with none of them is no error."""
    if not thread_globs and not run_ids:
        raise UsageError("name what to delete: --thread GLOB or --run RUN_ID")
    plan = DeletePlan(run_ids=list(run_ids), shard=shard)
    threads: set[str] = set()
    for glob in thread_globs:
        found = [s.thread_id for s in store.threads(Selection(thread_glob=glob, shard=shard), details=False)]
        if not found and shard is None:
            raise ThreadNotFoundError(f"no thread matches {glob!r} in this store")
        threads.update(found)
    plan.thread_ids = sorted(threads)
    for thread_id in plan.thread_ids:
        for header in store.headers(Selection(thread_id=thread_id)):
            _tally(plan, header)
    if run_ids:
        wanted, seen = set(run_ids), set()
        for header in store.headers(Selection(shard=shard)):
            run = header.run_id
            if run is not None and run in wanted:
                seen.add(run)
                if header.key.thread_id not in threads:
                    plan.keys.append(header.key)
                    _tally(plan, header)
        missing = [r for r in run_ids if r not in seen]
        if missing and shard is None:
            raise NotFoundError(f"no checkpoint of run {missing[0]!r} in this store")
    return plan


def _tally(plan: DeletePlan, header: CheckpointHeader) -> None:
    plan.checkpoints += 1
    plan.writes += header.writes_count
    plan.bytes += header.size


def delete(
    store: Store,
    plan: DeletePlan,
    *,
    dry_run: bool = False,
    confirm: Callable[[DeletePlan], bool] | None = None,
) -> DeleteReport:
    """Delete what ``plan`` names, locked and in transactions, then scan for residue.

    Threads go whole, as their saver's ``delete_thread`` removes them (orphans included), a batch
    of threads per call; run checkpoints go by key with their writes, blobs, registries and
    pointers, behind the store's integrity guard (as ``prune`` deletes). Then, still under the
    lock, :meth:`Store.residue` counts what is left and each deleted thread is read again: a
    checkpoint found there was written while the delete ran (``late_writes``). The report's
    ``clean`` says whether the delete is proven; the CLI exits 7 when it is not. Raises
    ``LockedError`` when another run holds the lock, ``Aborted`` when ``confirm`` says no."""
    from ckpt.backends.ops.prune import Aborted

    report = DeleteReport(plan, dry_run)
    if dry_run or (not plan.thread_ids and not plan.keys):
        return report
    if Capability.DELETE not in store.capabilities:
        raise UsageError(f"{store.kind} stores do not support delete (try --dry-run)")
    with store.lock(shard_lock_name(LOCK, plan.shard)):
        if confirm is not None and not confirm(plan):
            raise Aborted("nothing deleted: the delete was not confirmed")
        for start in range(0, len(plan.thread_ids), THREAD_BATCH):
            report.deleted_checkpoints += store.delete_threads(plan.thread_ids[start : start + THREAD_BATCH])
        for start in range(0, len(plan.keys), BATCH):
            report.deleted_checkpoints += store.delete(plan.keys[start : start + BATCH])
        if _after_delete is not None:
            _after_delete(store, plan)
        report.residue = store.residue(plan.thread_ids, plan.keys)
        for thread_id in plan.thread_ids:
            for header in store.headers(Selection(thread_id=thread_id)):
                key = header.key
                report.late_writes.append(
                    f"thread {key.thread_id!r} ns {key.checkpoint_ns!r}: checkpoint {key.checkpoint_id} "
                    f"({header.writes_count} writes) written while the delete ran"
                )
    return report


def residue_message(report: DeleteReport) -> str:
    """The one line the CLI exits 7 with when a delete is not proven."""
    parts = []
    if any(report.residue.values()):
        parts.append(f"residue scan found {_words(report.residue)} of what was deleted")
    if report.late_writes:
        parts.append(
            f"{len(report.late_writes)} checkpoint(s) were written to deleted threads meanwhile (run it again)"
        )
    return "delete not proven: " + "; ".join(parts)
