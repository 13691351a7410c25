"""The library under the commands: every ``ckpt`` verb as one typed call (``import ckpt``).

Each command of the CLI parses its options, makes one of these calls and renders the report; a
cron job or a notebook makes the same call without the CLI::

    import ckpt

    with ckpt.open("sqlite:///agent.db", write=True) as store:
        plan = ckpt.prune(store, ckpt.Policy(keep_last=5), min_idle="0s", dry_run=True, reasons=True)
        report = ckpt.prune(store, ckpt.Policy(keep_last=5))
        ckpt.compact(store)
        print(ckpt.size(store).as_json(), ckpt.check(store, {"max_thread_bytes": 10_000_000}).ok)
    ckpt.export("sqlite:///agent.db", "backup.jsonl.gz")
    if __name__ == "__main__":  # jobs > 1 spawns worker processes, which import this module again
        ckpt.migrate("sqlite:///agent.db", "postgresql://app@db/app", verify=True)

Destructive calls take the store's lock and raise ``LockedError`` when another run holds it;
every error is a :class:`~ckpt.backends.core.errors.CkptError` with the exit code the CLI uses.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ckpt.backends import open_store
from ckpt.backends.core.base import Selection, Store
from ckpt.backends.core.errors import UsageError
from ckpt.backends.core.shards import Shard, shard_path
from ckpt.backends.core.urls import is_jsonl_path
from ckpt.backends.ops.sharding import shard_lock

if TYPE_CHECKING:
    from ckpt.backends.core.memory import MemoryStore
    from ckpt.backends.ops.budgets import CheckReport
    from ckpt.backends.ops.sizes import SizeReport
    from ckpt.backends.ops.transfer import CopyPlan, CopyReport
    from ckpt.backends.ops.verify import VerifyReport
    from ckpt.formats.payloads import PayloadDecoder
    from ckpt.formats.state import CheckpointView


def open(url: str, *, write: bool = False, create: bool = True) -> Store:  # noqa: A001 - the public name
    """A store by URL (``sqlite:///agent.db``, ``postgresql://…``, ``redis://…``, ``mongodb://…``,
    ``couchbase://…``, or an export ``.jsonl[.gz]``). Read-only unless ``write``; ``create=False``
    (prune, compact) refuses a place without a store and never creates or migrates its schema."""
    return open_store(url, write=write, create=create)


def show(
    store: Store,
    thread_id: str,
    checkpoint_ns: str = "",
    checkpoint_id: str | None = None,
    *,
    decoder: PayloadDecoder | None = None,
) -> CheckpointView:
    """One checkpoint (the latest when ``checkpoint_id`` is ``None``; a unique id prefix will do) as
    its saver shows it: values, next nodes, pending writes and interrupts. A v<4 checkpoint's
    Sends are found in its parent's writes when they are not inline, as LangGraph reads them,
    and a LangGraph 0.2 node that never ran in the thread is found from other threads."""
    from ckpt.backends.core.base import find_record
    from ckpt.backends.ops.sends import one_record
    from ckpt.backends.ops.triggers import learn_triggers
    from ckpt.formats.payloads import PayloadDecoder
    from ckpt.formats.state import unexplained_channels, view_record

    decoder = decoder or PayloadDecoder()
    record = one_record(store, find_record(store, thread_id, checkpoint_ns, checkpoint_id))
    view = view_record(record, decoder)
    missing = unexplained_channels(view.checkpoint) if "$opaque" not in view.checkpoint else set()
    if missing:  # LangGraph 0.2: a node that never ran in this thread (ckpt.backends.ops.triggers)
        view = view_record(record, decoder, learn_triggers(store, record.key, missing, decoder))
    return view


def size(store: Store, selection: Selection = Selection(), *, top: int = 20) -> SizeReport:
    """Bytes by thread, namespace kind, channel and day, largest first (``ckpt size``)."""
    from ckpt.backends.ops.sizes import measure

    return measure(store, selection, top=top)


def check(
    store: Store,
    budgets: dict[str, int] | None = None,
    *,
    config: str | None = None,
    baseline: dict[str, int] | None = None,
    memory: MemoryStore | None = None,
) -> CheckReport:
    """Size budgets (``ckpt check``): ``budgets`` as a dict, or read from ``config`` (a TOML file;
    default ``./ckpt.toml`` then ``./pyproject.toml``). ``report.ok`` is False on a breach. The
    memory budgets (``max_memory_bytes`` …) are checked against ``memory`` (``ckpt.open_memory``)."""
    from pathlib import Path

    from ckpt.backends.ops.budgets import check as check_budgets
    from ckpt.backends.ops.budgets import load_budgets

    source = "the caller"
    if budgets is None:
        budgets, source = load_budgets(Path(config) if config else None)
    return check_budgets(store, budgets, source, baseline, memory)


@dataclass
class MigrateReport:
    """What ``migrate`` copied, and what ``verify`` found when asked for."""

    copied: CopyReport
    verified: VerifyReport | None = None
    jobs: int = 1
    """Worker processes used: ``jobs`` as asked for, capped at the cores and free memory."""
    jobs_note: str | None = None
    """Why fewer workers were used than asked for (``None`` when they were not)."""
    shard: Shard | None = None
    """The ``--shard`` this run copied (``None``: every thread)."""

    @property
    def ok(self) -> bool:
        return not self.copied.skipped and (self.verified is None or self.verified.ok)

    def as_json(self) -> dict[str, Any]:
        body = self.copied.as_json()
        if self.verified is not None:
            body["verify"] = self.verified.as_json()
        if self.shard is not None:
            body["shard"] = self.shard.as_json()
        return body


def migrate(
    source: str,
    target: str,
    selection: Selection = Selection(),
    *,
    verify: bool = False,
    jobs: int | None = None,
    batch_size: int | None = None,
    skip_bad: bool = False,
    progress: Any = None,
) -> MigrateReport:
    """Copy checkpoints from one store to another, idempotently (``ckpt migrate``). ``jobs``
    worker processes (``None``: decided by size and target; capped at the cores and at what free
    memory allows, ``report.jobs_note`` says so) each copy a range of threads;
    with ``verify``, both stores are compared afterwards as the target's saver will see them."""
    from ckpt.backends.ops.parallel import auto_jobs, cap_jobs
    from ckpt.backends.ops.parallel import migrate as copy_between
    from ckpt.backends.ops.transfer import DEFAULT_BATCH

    target = shard_path(target, selection.shard)  # an export file per shard: 'part-{shard}.jsonl'
    note = None
    if jobs is None:
        with open_store(source) as src:
            jobs = auto_jobs(target, src.count(selection), source)
    else:
        jobs, note = cap_jobs(jobs)
    with shard_lock(target, "migrate", selection.shard):  # a shard holds only its own lock
        copied = copy_between(
            source, target, open_store, selection,
            jobs=jobs, batch_size=batch_size or DEFAULT_BATCH, progress=progress, skip_bad=skip_bad,
        )  # fmt: skip
        verified = verify_stores(source, target, selection) if verify else None
    return MigrateReport(copied, verified, jobs, note, selection.shard)


def plan_migration(source: str, target: str, selection: Selection = Selection()) -> CopyPlan:
    """What ``migrate`` would copy, and what the target already has (``migrate --dry-run``)."""
    from ckpt.backends.ops.transfer import plan_copy

    with open_store(source) as src:
        return plan_copy(src, target, open_store, selection)


def verify_stores(source: str, target: str, selection: Selection = Selection()) -> VerifyReport:
    """Both stores compared checkpoint by checkpoint (what ``migrate --verify`` runs)."""
    from ckpt.backends.ops.verify import verify

    with open_store(source) as src, open_store(target) as dst:
        return verify(src, dst, selection)


def export(
    source: str,
    file: str,
    selection: Selection = Selection(),
    *,
    decorate: Callable[[Any], Any] | None = None,
    progress: Any = None,
) -> CopyReport:
    """A lossless JSONL export (``ckpt export``) to ``file`` (``.jsonl``, ``.jsonl.gz`` or ``-``);
    the file appears under its name only when complete. ``decorate(record)`` adds a decoded view.
    With ``selection.shard``, ``{shard}`` in ``file`` becomes ``K-of-N`` and the header says which
    shard the file holds (``import`` takes the files together); its writer's lock is the shard's."""
    from ckpt.backends.jsonl.store import JsonlStore
    from ckpt.backends.ops.transfer import copy_records

    file = shard_path(file, selection.shard)
    if not is_jsonl_path(file):
        raise UsageError(f"export target must end in .jsonl or .jsonl.gz (or be -), got {file!r}")
    with open_store(source) as src, JsonlStore.open(file, write=True) as target:
        if decorate is not None:
            target.decorate = decorate
        target.shard = selection.shard
        report = copy_records(src, target, selection, source_url=source, progress=progress)
    report.decode_errors = list(target.decode_errors)
    report.shard = selection.shard
    return report


def import_(
    file: str | Sequence[str],
    target: str,
    selection: Selection = Selection(),
    *,
    batch_size: int | None = None,
    progress: Any = None,
    on_total: Callable[[int | None], None] | None = None,
    on_missing_shards: Callable[[list[int]], None] | None = None,
) -> CopyReport:
    """JSONL exports back into a store (``ckpt import``), idempotently. A bad line is reported (file
    and line number) before anything is written: every file is read whole once first, except into a
    new store that a failure removes whole (a SQLite file that does not exist yet: ``Store.new_at``),
    which is written as the files are read and is gone if one of them is bad. ``on_total`` learns how
    many records they hold (a count of lines where the files were not read first; ``None`` when
    compressed). Several files (the shards of one sharded export) go in together; files of different
    splits are refused, and ``on_missing_shards`` learns which shards of their split were not given.
    ``selection.shard`` imports that shard's threads only, under the target's lock for the shard."""
    from ckpt.backends import store_class
    from ckpt.backends.ops.sharding import check_shard_files
    from ckpt.backends.ops.transfer import CopyReport

    files = [file] if isinstance(file, str) else list(file)
    for path in files:
        if not is_jsonl_path(path) or path == "-":
            raise UsageError(f"import source must be a .jsonl or .jsonl.gz file, got {path!r}")
    missing = check_shard_files(files)
    if missing and on_missing_shards is not None:
        on_missing_shards(missing)
    staged = store_class(target).new_at(target)
    total = _line_count(files) if staged else _validated(files)
    if on_total is not None:
        on_total(total)
    report = CopyReport(shard=selection.shard)
    with shard_lock(target, "import", selection.shard), open_store(target, write=True) as dst:
        if staged and not dst.removed_on_failure:
            _validated(files)  # made by someone else since: read the files through first after all
        for path in files:
            report.merge(_import_file(path, dst, selection, batch_size, progress))
        report.losses = dst.conversion_losses()  # the target's count covers every file
    return report


def _validated(files: list[str]) -> int:
    """Every file read through once (``FormatError`` names the first bad line); their record count."""
    from ckpt.backends.jsonl.store import JsonlStore

    total = 0
    for path in files:
        with JsonlStore.open(path) as src:
            total += src.validate()
    return total


def _line_count(files: list[str]) -> int | None:
    """The records the files hold by their lines (a header each), for a progress bar; ``None`` for a
    compressed file (counting would mean decompressing it)."""
    total = 0
    for path in files:
        if path.endswith(".gz"):
            return None
        with builtins.open(path, "rb") as handle:  # this module defines ckpt.open
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        total += max(0, lines - 1)
    return total


def _import_file(path: str, dst: Store, selection: Selection, batch_size: int | None, progress: Any) -> CopyReport:
    from ckpt.backends.jsonl.store import JsonlStore
    from ckpt.backends.ops.transfer import DEFAULT_BATCH, copy_records

    with JsonlStore.open(path) as src:
        return copy_records(
            src, dst, selection, source_url=path, batch_size=batch_size or DEFAULT_BATCH,
            progress=progress, validated=True,
        )  # fmt: skip
