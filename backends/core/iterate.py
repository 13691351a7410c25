"""Batching for streams: every read is paged and every write batched (constant memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` items, in order (``itertools.batched`` from Python 3.12, as lists)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def behind(work: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``work(item)`` for each item, in order, in one background thread, while the caller's
    ``items`` produces the next one: the results in order.

    At most one item is at work while the next is produced (two in memory with the one the
    caller holds). An item's failure is raised before the next is handed over, so nothing
    after a failed item is worked on; a failure producing items waits for the work in hand."""
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ckpt-behind") as pool:
        pending: Future[R] | None = None
        for item in items:  # produced while the previous item is at work
            if pending is not None:
                yield pending.result()
            pending = pool.submit(work, item)
        if pending is not None:
            yield pending.result()


def called(call: Callable[[], R]) -> R:
    """``call()``: the work of ``behind`` (or ``map``) over calls prepared in advance."""
    return call()
