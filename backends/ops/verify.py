"""``migrate --verify``: do two stores hold the same checkpoints, as the official savers see them?

Two stores whose keys both stream in code-point order are merge-joined (flat memory); otherwise
pairs are found thread by thread (:mod:`ckpt.backends.ops.pairing`). Between two byte-exact
stores the exact payload bytes are compared; otherwise the semantic form
(``ckpt.formats.semantic``): what the savers would load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ckpt.backends.core.base import Capability, CheckpointRecord, Selection, Store
from ckpt.backends.core.sends import has_materialized_sends
from ckpt.backends.ops.pairing import (
    OutOfOrder,
    by_thread,
    can_merge,
    checked,
    code_point_order,
    one_thread,
    threads_only_in,
)
from ckpt.backends.ops.sends import LANGGRAPH, finds, saver_view
from ckpt.formats.semantic import byte_digest, semantic_digest

MAX_EXAMPLES = 20


@dataclass
class VerifyReport:
    mode: str
    threads: int = 0
    checkpoints: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    threads_with_differences: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def note(self, thread_id: str, message: str) -> None:
        self.threads_with_differences.add(thread_id)
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(message)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "threads": self.threads,
            "checkpoints": self.checkpoints,
            "missing_in_target": self.missing,
            "extra_in_target": self.extra,
            "different": self.different,
            "threads_with_differences": sorted(self.threads_with_differences),
            "examples": self.examples,
        }


def _exact_unless_materialized(record: CheckpointRecord) -> Any:
    """Bytes, except for a v<4 checkpoint whose Sends a saver view put in the tasks channel: its
    versions may be of either store's form there (integers converted after, or strings before),
    so it is compared as the savers load it."""
    return semantic_digest(record) if has_materialized_sends(record) else byte_digest(record)


Pair = tuple[CheckpointRecord | None, CheckpointRecord | None]
View = Callable[[Selection], Iterable[CheckpointRecord]]


def verify(source: Store, target: Store, selection: Selection = Selection()) -> VerifyReport:
    """Compare ``selection`` in both stores checkpoint by checkpoint."""
    exact = Capability.BYTE_EXACT in source.capabilities and Capability.BYTE_EXACT in target.capabilities
    digest = _exact_unless_materialized if exact else semantic_digest
    report = VerifyReport(mode="bytes" if exact else "semantic")

    # The source as LangGraph means it (v<4 Sends found in the parent wherever they are kept);
    # the target as its own saver will show it: a Send it cannot see counts as a difference.
    def source_view(chosen: Selection) -> Iterable[CheckpointRecord]:
        return saver_view(source.records(chosen), source, LANGGRAPH)

    def target_view(chosen: Selection) -> Iterable[CheckpointRecord]:
        return saver_view(target.records(chosen), target, finds(target))

    if can_merge(source, target):
        try:
            merged = _merged(checked(source_view(selection)), checked(target_view(selection)))
            return _tally(VerifyReport(mode=report.mode), merged, target, digest)
        except OutOfOrder:
            pass  # a file in another order: counted again, thread by thread
    return _tally(report, _by_thread(source, target, selection, source_view, target_view), target, digest)


def _tally(report: VerifyReport, pairs: Iterable[Pair], target: Store, digest: Callable[[Any], Any]) -> VerifyReport:
    last_thread = None
    for a, b in pairs:
        if b is None:
            assert a is not None
            current = a
            report.missing += 1
            report.note(a.key.thread_id, f"missing in target: {a.key}")
        elif a is None:
            current = b
            report.extra += 1
            report.note(b.key.thread_id, f"only in target: {b.key}")
        else:
            current = a
            if digest(target.stored_form(a)) != digest(b):
                report.different += 1
                report.note(a.key.thread_id, f"different: {a.key}")
        report.checkpoints += 1
        if current.key.thread_id != last_thread:
            report.threads, last_thread = report.threads + 1, current.key.thread_id
    return report


def _key(record: CheckpointRecord) -> tuple[str, str, str]:
    return (record.key.thread_id, record.key.checkpoint_ns, record.key.checkpoint_id)


def _merged(left: Iterable[CheckpointRecord], right: Iterable[CheckpointRecord]) -> Iterator[Pair]:
    """Merge-join of two streams in code-point key order (flat memory)."""
    left, right = iter(left), iter(right)
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and _key(a) < _key(b)):
            yield a, None
            a = next(left, None)
        elif a is None or _key(b) < _key(a):
            yield None, b
            b = next(right, None)
        else:
            yield a, b
            a, b = next(left, None), next(right, None)


def _by_thread(
    source: Store, target: Store, selection: Selection, source_view: View, target_view: View
) -> Iterator[Pair]:
    """Pairs found thread by thread (:func:`ckpt.backends.ops.pairing.by_thread`): the store whose
    order Python cannot follow is streamed, the other looked up per thread; then the threads only
    the looked-up store holds, searched for only when it holds more checkpoints than were paired."""
    swap = code_point_order(source) and not code_point_order(target)
    outer, inner = (target, source) if swap else (source, target)
    outer_view, inner_view = (target_view, source_view) if swap else (source_view, target_view)
    found = 0
    for mine, theirs in by_thread(outer_view(selection), lambda t: inner_view(one_thread(selection, t))):
        found += theirs is not None
        yield (theirs, mine) if swap else (mine, theirs)
    if found >= _count(inner, selection):
        return
    for thread_id in threads_only_in(inner, outer, selection):
        for record in inner_view(one_thread(selection, thread_id)):
            yield (record, None) if swap else (None, record)


def _count(store: Store, selection: Selection) -> int:
    counted = store.count(selection)
    return counted if counted is not None else sum(t.checkpoints for t in store.threads(selection, details=False))
