"""Merge-join of two streams sorted by the same key: how drivers attach writes to checkpoints.

Both sides come from ordered, paged reads, so the join holds only one checkpoint's writes
in memory at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

P = TypeVar("P")
C = TypeVar("C")


class _Peekable(Generic[C]):
    def __init__(self, items: Iterable[C]) -> None:
        self._it = iter(items)
        self._head: list[C] = []

    def peek(self) -> C | None:
        if not self._head:
            try:
                self._head.append(next(self._it))
            except StopIteration:
                return None
        return self._head[0]

    def pop(self) -> C:
        item = self.peek()
        self._head.clear()
        return item  # type: ignore[return-value]


def attach(
    parents: Iterable[P],
    children: Iterable[C],
    parent_key: Callable[[P], Any],
    child_key: Callable[[C], Any],
) -> Iterator[tuple[P, list[C]]]:
    """Yield each parent with the children sharing its key; both inputs sorted ascending.

    Children whose key matches no parent (writes without their checkpoint) are skipped:
    ``compact`` and ``doctor`` count those orphans with their own queries."""
    pending = _Peekable(children)
    for parent in parents:
        key = parent_key(parent)
        group: list[C] = []
        while (child := pending.peek()) is not None:
            ckey = child_key(child)
            if ckey < key:
                pending.pop()
            elif ckey == key:
                group.append(pending.pop())
            else:
                break
        yield parent, group
