"""Pairing the checkpoints of two stores whose key orders may differ (``verify``, ``--dry-run``).

Every store streams ``(thread_id, checkpoint_ns, checkpoint_id)`` in ascending order, but not
every store in the same order: PostgreSQL reads in its index's collation (issue #24: forcing
code points there costs a sort of the table per page), where ``"B" < "a"`` or ``"a_b" < "a-b"``
may not hold. Two streams both in code-point order merge-join in Python (flat memory). Otherwise
a merge would mis-pair, so one store is streamed thread by thread in its own order (each thread's
rows come together in any order) and the other is asked for that thread alone: pairs are found
by key equality, never by comparing keys, and memory holds one thread of the looked-up store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from itertools import groupby
from typing import Protocol, TypeVar

from ckpt.backends.core.base import CheckpointKey, Selection, Store


class _Keyed(Protocol):
    @property
    def key(self) -> CheckpointKey: ...


K = TypeVar("K", bound=_Keyed)


def code_point_order(store: Store) -> bool:
    """Whether ``store`` streams keys in code-point order (every driver but PostgreSQL under a
    collation other than ``C`` does)."""
    return bool(getattr(store, "code_point_order", True))


def can_merge(a: Store, b: Store) -> bool:
    """Two streams merge-join by Python comparison only when both are in code-point order."""
    return code_point_order(a) and code_point_order(b)


class OutOfOrder(Exception):
    """A stream taken to be in code-point order is not (e.g. a JSON Lines file exported from a
    PostgreSQL store with a collation): the caller pairs again, thread by thread."""


def checked(items: Iterable[K]) -> Iterator[K]:
    """``items``, raising :class:`OutOfOrder` at the first key below the one before it."""
    last: tuple[str, str, str] | None = None
    for item in items:
        key = item.key
        current = (key.thread_id, key.checkpoint_ns, key.checkpoint_id)
        if last is not None and current < last:
            raise OutOfOrder(f"{key} after {last}")
        last = current
        yield item


def one_thread(selection: Selection, thread_id: str) -> Selection:
    """``selection`` narrowed to one thread (a thread range is the streamed store's, so dropped)."""
    return replace(selection, thread_id=thread_id, thread_from=None, thread_to=None)


def by_thread(items: Iterable[K], lookup: Callable[[str], Iterable[K]]) -> Iterator[tuple[K | None, K | None]]:
    """``(mine, theirs)`` pairs of equal keys: ``mine`` streamed from ``items`` (each thread's
    contiguous), ``theirs`` from ``lookup(thread_id)`` once per thread; ``None`` on the side that
    lacks the key. Holds one thread of ``theirs``."""
    for thread_id, group in groupby(items, key=lambda item: item.key.thread_id):
        theirs = {item.key: item for item in lookup(thread_id)}
        for mine in group:
            yield mine, theirs.pop(mine.key, None)
        for other in theirs.values():
            yield None, other


def threads_only_in(store: Store, other: Store, selection: Selection) -> Iterator[str]:
    """Threads of ``selection`` that ``store`` holds and ``other`` does not (one lookup each)."""
    for summary in store.threads(selection, details=False):
        if next(iter(other.headers(one_thread(selection, summary.thread_id))), None) is None:
            yield summary.thread_id
