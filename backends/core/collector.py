"""The cyclic garbage collector during bulk streams (issue #24).

A copy or a scan allocates a few dozen short-lived objects per checkpoint (rows, records,
payloads, JSON dicts). With CPython's default first-generation threshold of 700 allocations the
collector runs every few checkpoints and walks the batch that is alive at that moment: ~10% of an
export's time on SQLite (bench/results/doctor-size.md). The records hold no reference cycles, so
collecting less often frees the same memory; cycles anywhere else are still collected, only later.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLD = 50_000
"""First-generation threshold while a bulk stream runs: 10,000 kept about half of the gain,
200,000 no more than 50,000; peak RSS unchanged at all three (100k-checkpoint export)."""


@contextmanager
def fewer_collections(threshold: int = BULK_THRESHOLD) -> Iterator[None]:
    """The collector's first generation at ``threshold`` allocations inside the block, restored
    after it. A block inside another, or a process that already set a higher threshold (or
    turned automatic collection off with 0), keeps what it has."""
    before = gc.get_threshold()
    if before[0] == 0 or before[0] >= threshold:
        yield
        return
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
