"""Store-independent operations on long-term memory stores (``ckpt memory``, issue #21): namespace
listings, copies between any two layouts (migrate, export, import) with a verify through the
target's own reads, and retention (expired items, namespaces, age).

Everything streams: items are read in pages and written in batches, and verify looks up each
batch of source items in the target by address, so no store is ever held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain
from typing import Any

import orjson

from ckpt.backends.core.errors import DataError, IntegrityError, UsageError
from ckpt.backends.core.iterate import batched
from ckpt.backends.core.memory import (
    Address,
    MemoryItem,
    MemorySelection,
    MemoryStore,
    MemoryWriteReport,
    NamespaceSummary,
    VectorIndex,
    iso,
    namespace_path,
)

BATCH = 2000
MAX_NAMESPACES = 1000
"""A prune report counts items per namespace for this many namespaces, the rest together."""
Progress = Callable[[int], None]


def namespaces(store: MemoryStore, prefix: tuple[str, ...] = (), depth: int | None = None) -> list[NamespaceSummary]:
    """Namespaces under ``prefix`` with their items; with ``depth``, namespaces are cut to their first
    ``depth`` labels and added up (``list_namespaces(max_depth=…)``)."""
    summaries = store.namespaces(MemorySelection(prefix))
    if depth is None:
        return list(summaries)
    grouped: dict[tuple[str, ...], NamespaceSummary] = {}
    for summary in summaries:  # one entry per namespace, not per item: small
        cut = summary.namespace[:depth]
        total = grouped.setdefault(cut, NamespaceSummary(cut))
        _merge(total, summary)
    return [grouped[k] for k in sorted(grouped)]


def _merge(total: NamespaceSummary, part: NamespaceSummary) -> None:
    total.items += part.items
    total.bytes += part.bytes
    total.expiring += part.expiring
    if part.oldest_update is not None and (total.oldest_update is None or part.oldest_update < total.oldest_update):
        total.oldest_update = part.oldest_update
    if part.newest_update is not None and (total.newest_update is None or part.newest_update > total.newest_update):
        total.newest_update = part.newest_update


def show(store: MemoryStore, namespace: tuple[str, ...], key: str | None = None) -> Iterator[MemoryItem]:
    """The items of one namespace (exactly it, streamed), or the one item ``key``; an unknown
    namespace or key is ``NotFoundError`` (raised before the first item)."""
    from ckpt.backends.core.errors import NotFoundError

    if key is not None:
        found = store.get_many([(namespace, key)]).get((namespace, key))
        items: Iterator[MemoryItem] = iter([found] if found is not None else [])
    else:
        items = store.items(MemorySelection(namespace, exact=True))
    first = next(items, None)
    if first is None:
        what = f"key {key!r} in namespace" if key is not None else "namespace"
        raise NotFoundError(f"no {what} {namespace_path(namespace)!r} in this memory store")
    return chain([first], items)


def item_json(item: MemoryItem) -> dict[str, Any]:
    """An item as ``show -o json`` prints it (the memory export's line, value parsed)."""
    out: dict[str, Any] = {
        "namespace": namespace_path(item.namespace),
        "key": item.key,
        "value": item.value_json(),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "expires_at": iso(item.expires_at),
        "ttl_minutes": item.ttl_minutes,
    }
    if item.vectors:
        out["vectors"] = {v.field: len(v.embedding) for v in item.vectors}
    return out


# -- copies ---------------------------------------------------------------------


@dataclass(slots=True)
class MemoryCopyReport:
    items: int = 0
    vectors: int = 0
    namespaces: int = 0
    verified: int | None = None
    differences: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    """What the target's layout could not keep (each said once), e.g. per-item TTLs."""

    def as_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "vectors": self.vectors,
            "namespaces": self.namespaces,
            "verified": self.verified,
            "differences": self.differences,
            "losses": self.losses,
        }


def check_vectors(
    source: MemoryStore, target: MemoryStore, selection: MemorySelection = MemorySelection()
) -> VectorIndex | None:
    """The source's vector index, after making sure the target can hold its vectors as stored:
    a target with another index configuration stops the copy before anything is written."""
    index = source.index()
    if index is not None and not target.holds_vectors:
        raise DataError(
            f"the source holds vectors ({index.dims} dims) and ckpt cannot write vectors into {target.kind} memory "
            "stores; nothing was written"
        )
    theirs = target.index()
    if index is not None and target.vectors_per_item is not None:
        _check_vector_counts(source, target, selection)
    if index is not None and theirs is not None:
        differences = index.differences(theirs)
        if differences:
            raise DataError(
                "the target's vector index differs from the source's ("
                + "; ".join(differences)
                + "): vectors cannot be carried as stored (re-embedding is not ckpt's job); nothing was written"
            )
    return index


def _check_vector_counts(source: MemoryStore, target: MemoryStore, selection: MemorySelection) -> None:
    """A first pass over the source (only when it holds vectors and the target keeps fewer per item
    than an item may have): an item the target cannot hold stops the copy before its first batch."""
    limit = target.vectors_per_item
    for item in source.items(selection):
        if limit is not None and len(item.vectors) > limit:
            raise DataError(
                f"{item.where()} has {len(item.vectors)} vectors and {target.kind} memory stores keep {limit} per "
                "item (their store writes every field's vector under one key); nothing was written"
            )


def copy(
    source: MemoryStore,
    target: MemoryStore,
    *,
    selection: MemorySelection = MemorySelection(),
    batch_size: int = BATCH,
    source_url: str = "",
    progress: Progress | None = None,
) -> MemoryCopyReport:
    """Copy items (upserts, so a rerun after a kill finishes the job) in batches of ``batch_size``."""
    index = check_vectors(source, target, selection)
    begin = getattr(target, "begin_copy", None)
    if begin is not None:
        begin(source.kind, source.layout(), source_url, index)
    report = MemoryCopyReport()
    seen: tuple[str, ...] | None = None
    for batch in batched(_checked(source.items(selection)), batch_size):
        written: MemoryWriteReport = target.write(batch)
        report.items += written.items
        report.vectors += written.vectors
        report.losses += [p for p in written.problems if p not in report.losses]
        for item in batch:
            if item.namespace != seen:
                seen = item.namespace
                report.namespaces += 1
        if progress is not None:
            progress(len(batch))
    return report


def migrate(
    source_url: str,
    target_url: str,
    *,
    selection: MemorySelection = MemorySelection(),
    batch_size: int = BATCH,
    verify_after: bool = False,
    progress: Progress | None = None,
) -> MemoryCopyReport:
    """Copy a memory store (or export file) into another, then optionally verify it: ``export``,
    ``import`` and ``migrate`` are this one call. A source file is read through once first, so a
    broken line 9,000 stops the import before the target is even created."""
    from ckpt.backends import open_memory

    with open_memory(source_url) as source:
        validate = getattr(source, "validate", None)
        if validate is not None:
            validate()
        with open_memory(target_url, write=True) as target:
            report = copy(
                source, target, selection=selection, batch_size=batch_size, source_url=source_url, progress=progress
            )
    if verify_after:
        with open_memory(source_url) as source, open_memory(target_url) as target:
            report.verified, report.differences = verify(source, target, selection=selection)
    return report


def _checked(items: Iterable[MemoryItem]) -> Iterator[MemoryItem]:
    """Every value must be a JSON object (as ``BaseStore.put`` requires), or the copy stops here."""
    for item in items:
        try:
            value = orjson.loads(item.value)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{item.where()}: the stored value is not JSON ({exc}); nothing of it was copied") from exc
        if not isinstance(value, dict):
            raise DataError(f"{item.where()}: the stored value is not a JSON object")
        yield item


def verify(
    source: MemoryStore, target: MemoryStore, *, selection: MemorySelection = MemorySelection()
) -> tuple[int, list[str]]:
    """Compare every selected source item with the target's, as the target reads it: value (as
    JSON), times (to the precision the target keeps), expiry and vectors. Returns the count
    compared and the first differences (each naming the item)."""
    differences: list[str] = []
    compared = 0
    for batch in batched(source.items(selection), BATCH):
        theirs = target.get_many([i.address for i in batch])
        for item in batch:
            compared += 1
            other = theirs.get(item.address)
            problem = "missing in the target" if other is None else same_item(target.stored_form(item), other)
            if problem and len(differences) < 20:
                differences.append(f"{item.where()}: {problem}")
    return compared, differences


def same_item(a: MemoryItem, b: MemoryItem) -> str | None:
    """What differs between two items as their stores show them, or ``None``."""
    if orjson.loads(a.value) != orjson.loads(b.value):
        return "value differs"
    for name in ("created_at", "updated_at", "expires_at"):
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and abs((x - y).total_seconds()) >= 1e-3):
            return f"{name} differs ({iso(x)} != {iso(y)})"
    if a.ttl_minutes != b.ttl_minutes:
        return f"ttl_minutes differs ({a.ttl_minutes} != {b.ttl_minutes})"
    if _vectors(a) != _vectors(b):
        return "vectors differ"
    return None


def _vectors(item: MemoryItem) -> dict[str, tuple[float, ...]]:
    return {v.field: tuple(round(x, 5) for x in v.embedding) for v in item.vectors}


# -- retention ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryPolicy:
    """Which items ``memory prune`` removes; exempt prefixes win over everything."""

    expired: bool = False
    namespaces: tuple[tuple[str, ...], ...] = ()
    older_than_seconds: float | None = None
    exempt: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not (self.expired or self.namespaces or self.older_than_seconds is not None):
            raise UsageError("say what to prune: --expired, --namespace PREFIX or --older-than AGE")

    def reason(self, item: MemoryItem, now: datetime) -> str | None:
        """Why ``item`` goes (``None``: it stays)."""
        if any(item.namespace[: len(p)] == p for p in self.exempt):
            return None
        if self.expired and item.expired(now):
            return "expired"
        if any(item.namespace[: len(p)] == p for p in self.namespaces):
            return "namespace"
        if self.older_than_seconds is not None and (now - item.updated_at).total_seconds() > self.older_than_seconds:
            return "older than"
        return None


@dataclass(slots=True)
class MemoryPruneReport:
    dry_run: bool
    examined: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    namespaces: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "examined": self.examined,
            "deleted": self.deleted,
            "bytes_freed": self.bytes_freed,
            "by_reason": self.by_reason,
            "namespaces": self.namespaces,
        }


def prune(
    store: MemoryStore,
    policy: MemoryPolicy,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    confirm: Callable[[MemoryPruneReport], bool] | None = None,
) -> MemoryPruneReport:
    """Plan (a first read), then, unless ``dry_run`` or ``confirm`` says no, delete the planned
    items in batches and prove it: each deleted address must be gone, and every item examined
    that was kept must still read as it did (read back from the store)."""
    now = now or datetime.now(timezone.utc)
    plan = _plan(store, policy, now, MemoryPruneReport(dry_run=dry_run))
    if dry_run or plan.deleted == 0 or (confirm is not None and not confirm(plan)):
        return plan
    doomed: list[Address] = []
    deleted = 0
    for item in store.items():  # the second pass deletes what the policy still selects now
        if policy.reason(item, now) is not None:
            doomed.append(item.address)
            if len(doomed) >= BATCH:
                deleted += _delete_proven(store, doomed)
                doomed = []
    if doomed:
        deleted += _delete_proven(store, doomed)
    plan.deleted = deleted
    return plan


def _plan(store: MemoryStore, policy: MemoryPolicy, now: datetime, report: MemoryPruneReport) -> MemoryPruneReport:
    for item in store.items():
        report.examined += 1
        reason = policy.reason(item, now)
        if reason is None:
            continue
        report.deleted += 1
        report.bytes_freed += item.size
        report.by_reason[reason] = report.by_reason.get(reason, 0) + 1
        path = namespace_path(item.namespace)
        if path not in report.namespaces and len(report.namespaces) >= MAX_NAMESPACES:
            path = "(other namespaces)"  # a bounded report, however many namespaces the store has
        report.namespaces[path] = report.namespaces.get(path, 0) + 1
    return report


def _delete_proven(store: MemoryStore, addresses: list[Address]) -> int:
    deleted = store.delete(addresses)
    left = store.get_many(addresses)
    if left:
        first = next(iter(left.values()))
        raise IntegrityError(f"{len(left)} item(s) still there after the delete, e.g. {first.where()}")
    return deleted


# The names ``import ckpt`` gives these (``ckpt.migrate_memory`` …): beside the checkpoint verbs.
memory_namespaces = namespaces
migrate_memory = migrate
verify_memory = verify
prune_memory = prune
