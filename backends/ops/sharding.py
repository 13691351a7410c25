"""What ``--shard K/N`` adds around an operation: the shard's own lock on the store it changes.

Which threads a shard takes is decided by ``Selection.shard`` (``core.shards``), applied by every
driver; this module holds what the operations share around it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ckpt.backends import open_store, store_class
from ckpt.backends.core.base import Capability
from ckpt.backends.core.errors import UsageError
from ckpt.backends.core.shards import Shard, shard_lock_name


@contextmanager
def shard_lock(url: str, name: str, shard: Shard | None) -> Iterator[None]:
    """For a shard run, the store at ``url`` (opened for writing: a new target is created) locked
    under ``<name>.shard-K-of-N`` while the block runs: two runs of one shard are refused
    (``LockedError``), other shards run beside it. Unsharded runs and stores without locks
    (an export file, which its writer locks itself) take none."""
    if shard is None or Capability.DELETE not in store_class(url).capabilities:
        yield  # asked of the class: opening an export file for writing would write it on close
        return
    with open_store(url, write=True) as store, store.lock(shard_lock_name(name, shard)):
        yield


def check_shard_files(files: Sequence[str]) -> list[int]:
    """Refuse export files that do not belong together: shards of different splits (another N),
    the same shard twice, or a whole export beside shards of one. Returns the shards of the split
    the files do not hold (empty when complete, or when they are not shards at all)."""
    from ckpt.backends.jsonl.store import JsonlStore

    shards: dict[int, str] = {}
    counts: set[int] = set()
    whole: list[str] = []
    for path in files:
        with JsonlStore.open(path) as export:
            shard = export.shard
        if shard is None:
            whole.append(path)
            continue
        if shard.index in shards:
            raise UsageError(f"{path} and {shards[shard.index]} are both shard {shard}: give each shard once")
        shards[shard.index] = path
        counts.add(shard.count)
    if len(counts) > 1:
        raise UsageError(f"these files are shards of different splits (N = {sorted(counts)}); import one split")
    if shards and whole:
        raise UsageError(f"{whole[0]} is a whole export, {next(iter(shards.values()))} a shard: import them apart")
    if not counts:
        return []
    return [index for index in range(counts.pop()) if index not in shards]
