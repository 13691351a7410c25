"""``ckpt upgrade``: bring a store written by an old saver release to the current saver, in place.

The driver names the layout generation it found and the steps that make it current
(:meth:`Store.layout_upgrade`); a store it does not recognise is never touched. Records are
rewritten only where the current saver would read them differently: a v<4 checkpoint whose
Sends live in its parent's writes gets them inline when the store's saver does not rebuild them
(:mod:`ckpt.backends.ops.sends`). Every step is idempotent and each batch is one transaction, so
a run killed at any point is finished by the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpt.backends.core.base import CheckpointRecord, Selection, Store
from ckpt.backends.core.errors import DataError, IntegrityError, UsageError
from ckpt.backends.core.shards import Shard, shard_lock_name, shard_path
from ckpt.backends.core.upgrade import LayoutUpgrade
from ckpt.backends.ops.prune import Aborted
from ckpt.backends.ops.sends import repaired

BATCH = 500


@dataclass
class UpgradeReport:
    """The plan (``dry_run``) or what a run changed; ``current`` says if the store is current now."""

    kind: str
    generation: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    checkpoints_to_rewrite: int = 0
    checkpoints_rewritten: int = 0
    dry_run: bool = False
    backup: str | None = None
    verified: dict[str, Any] | None = None
    current: bool = False
    shard: Shard | None = None

    @property
    def changes(self) -> bool:
        return bool(self.steps) or self.checkpoints_to_rewrite > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "generation": self.generation,
            "dry_run": self.dry_run,
            "steps": self.steps,
            "checkpoints_to_rewrite": self.checkpoints_to_rewrite,
            "checkpoints_rewritten": self.checkpoints_rewritten,
            "backup": self.backup,
            "verified": self.verified,
            "current": self.current,
            **({"shard": self.shard.as_json()} if self.shard is not None else {}),
        }


def upgrade(
    store: Store,
    *,
    dry_run: bool = False,
    backup: str | None = None,
    verify: bool = False,
    confirm: Callable[[UpgradeReport], bool] | None = None,
    batch_size: int = BATCH,
    shard: Shard | None = None,
) -> UpgradeReport:
    """Plan and (unless ``dry_run``) carry out the upgrade of ``store`` (opened for writing).

    ``backup`` exports the store to that JSONL file first (kept when it exists already: a
    rerun after a kill must not overwrite the true "before" with a half-upgraded store);
    ``verify`` then compares it with the upgraded store as the current saver will read it.
    Raises ``DataError`` for a layout the driver does not recognise (nothing changed),
    ``Aborted`` when ``confirm`` says no, ``IntegrityError`` when the verification differs.
    ``shard`` rewrites (and backs up, and verifies) that shard's threads only, under its own lock;
    an upgrade with store-wide steps (indexes, key families) is refused with a shard: those run once.
    """
    if type(store).layout_upgrade is Store.layout_upgrade:
        raise UsageError(
            f"{store.kind} stores have no in-place upgrade (their saver reads every layout ckpt knows as it "
            "is; ckpt migrate gives a target what its saver needs); nothing was changed"
        )
    found = store.layout_upgrade()
    if found is None:
        raise DataError(f"{store.kind} store: layout not recognised ({_named(store)}); nothing was changed")
    if shard is not None and (found.steps or found.after):
        names = ", ".join(step.name for step in (*found.steps, *found.after))
        raise UsageError(
            f"this {store.kind} upgrade has store-wide steps ({names}), which run once: "
            "run `ckpt upgrade` without --shard; nothing was changed"
        )
    selection = Selection(shard=shard)
    report = _plan(store, found, selection)
    report.dry_run = dry_run
    report.shard = shard
    if dry_run or not report.changes:
        report.current = found.current and not report.changes
        return report
    if confirm is not None and not confirm(report):
        raise Aborted("nothing changed: the upgrade was not confirmed")
    with store.lock(shard_lock_name("upgrade", shard)):
        if backup is not None or verify:
            report.backup = _backup(store, shard_path(backup, shard) if backup else None, selection)
        for step, planned in zip(found.steps, report.steps):
            planned["done"] = step.apply()
        report.checkpoints_rewritten = _rewrite(store, found.rewrite_all, batch_size, selection)
        for step, planned in zip(found.after, report.steps[len(found.steps) :]):
            planned["done"] = step.apply()
    after = store.layout_upgrade()
    report.current = after is not None and after.current and _count_rewrites(store, False, selection) == 0
    if verify and report.backup is not None:
        report.verified = _verify(report.backup, store, selection)
    return report


def _named(store: Store) -> str:
    layout = store.layout()
    return ", ".join(f"{k}={v}" for k, v in layout.items() if isinstance(v, (str, int)))


def _plan(store: Store, found: LayoutUpgrade, selection: Selection) -> UpgradeReport:
    report = UpgradeReport(store.kind, found.generation)
    steps = (*found.steps, *found.after)
    report.steps = [{"name": s.name, "description": s.description, "count": s.count} for s in steps]
    report.checkpoints_to_rewrite = _count_rewrites(store, found.rewrite_all, selection)
    return report


def _outdated(store: Store, rewrite_all: bool, selection: Selection) -> Iterator[CheckpointRecord]:
    """Records as they must be stored: every one (``rewrite_all``), else those whose current
    saver would miss their Sends."""
    return (record for record, changed in repaired(store, selection) if rewrite_all or changed)


def _count_rewrites(store: Store, rewrite_all: bool, selection: Selection) -> int:
    return sum(1 for _ in _outdated(store, rewrite_all, selection))


def _rewrite(store: Store, rewrite_all: bool, batch_size: int, selection: Selection) -> int:
    """Replace the outdated checkpoints, a batch per transaction. They are spooled to a JSONL file
    first: a store may not take writes while its own read is open (SQLite's read snapshot)."""
    import tempfile

    from ckpt.backends.core.iterate import batched
    from ckpt.backends.jsonl.store import JsonlStore

    with tempfile.TemporaryDirectory(prefix="ckpt-upgrade-") as tmp:
        spool = str(Path(tmp) / "rewrite.jsonl")
        with JsonlStore.open(spool, write=True) as out:
            for batch in batched(_outdated(store, rewrite_all, selection), batch_size):
                out.write(batch)
        with JsonlStore.open(spool) as spooled:
            return sum(store.replace(batch) for batch in batched(spooled.records(), batch_size))


def _backup(store: Store, file: str | None, selection: Selection) -> str:
    """Export the store before it changes; an existing backup (from a killed run) is kept."""
    import tempfile

    from ckpt.backends.jsonl.store import JsonlStore
    from ckpt.backends.ops.transfer import copy_records

    if file is None:
        file = str(Path(tempfile.mkdtemp(prefix="ckpt-upgrade-")) / "before.jsonl.gz")
    elif Path(file).exists():
        return file
    with JsonlStore.open(file, write=True) as target:
        target.shard = selection.shard
        copy_records(store, target, selection)
    return file


def _verify(backup: str, store: Store, selection: Selection) -> dict[str, Any]:
    """The backup as LangGraph means it against the store as its current saver reads it."""
    from ckpt.backends.jsonl.store import JsonlStore
    from ckpt.backends.ops.verify import verify

    with JsonlStore.open(backup) as before:
        result = verify(before, store, selection)
    if not result.ok:
        raise IntegrityError(f"upgrade verification failed: {result.examples[:3]} (backup kept at {backup})")
    return result.as_json()
