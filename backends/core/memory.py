"""The long-term memory contract (LangGraph's ``BaseStore``): items, their namespaces, and the
driver ABC every memory layout implements (``ckpt memory``, issue #21).

An item is what the official stores keep per ``(namespace, key)``: a JSON object, its creation
and update times, and its time to live. Values travel as the JSON text the store holds (``value``,
UTF-8 bytes), never as Python objects of the app: nothing in them is executed, and a SQLite store
copied to SQLite keeps its bytes. Vectors travel as stored (float32 lists) with the index
configuration that made them; re-embedding is not ckpt's job.

Reads are iterators over paged queries in ``(namespace, key)`` order; writes take one batch and
upsert it in one transaction where the store has them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import orjson

M = TypeVar("M", bound="MemoryStore")

Address = tuple[tuple[str, ...], str]
"""``(namespace, key)``: where an item lives."""

SEPARATOR = "."
"""How every official store joins a namespace tuple into its ``prefix`` (labels hold no ``.``)."""


def namespace_path(namespace: tuple[str, ...]) -> str:
    """``("users", "42", "prefs")`` → ``users/42/prefs``: how ckpt shows a namespace."""
    return "/".join(namespace)


def parse_namespace(text: str) -> tuple[str, ...]:
    """A namespace as users type it: ``users/42/prefs`` (or the stores' ``users.42.prefs``)."""
    sep = "/" if "/" in text or SEPARATOR not in text else SEPARATOR
    return tuple(part for part in text.split(sep) if part != "")


@dataclass(frozen=True, slots=True)
class Vector:
    """One stored embedding of an item: the indexed field (``$`` for the whole value) and its
    components as stored (float32 in every official layout)."""

    field: str
    embedding: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class VectorIndex:
    """A store's vector index configuration, as far as the store records it."""

    dims: int
    distance: str | None = None
    """``None`` where the store does not record it (SQLite keeps only the vectors)."""
    fields: tuple[str, ...] = ()
    """The field names vectors are stored under (``$`` for the whole value; ``text.0`` … for lists)."""

    def as_json(self) -> dict[str, Any]:
        return {"dims": self.dims, "distance": self.distance, "fields": list(self.fields)}

    def differences(self, other: VectorIndex) -> list[str]:
        """What differs from ``other`` (empty when vectors can be carried as stored)."""
        out = [f"dims {self.dims} != {other.dims}"] if self.dims != other.dims else []
        if None not in (self.distance, other.distance) and self.distance != other.distance:
            out.append(f"distance {self.distance!r} != {other.distance!r}")
        return out


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One item of a memory store, as the official store holds it."""

    namespace: tuple[str, ...]
    key: str
    value: bytes
    """The JSON object as UTF-8 text."""
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    ttl_minutes: float | None = None
    """The TTL the item was put with (refreshed reads push ``expires_at`` by this much)."""
    vectors: tuple[Vector, ...] = ()

    @property
    def address(self) -> Address:
        return self.namespace, self.key

    @property
    def size(self) -> int:
        return len(self.value) + sum(4 * len(v.embedding) for v in self.vectors)

    def value_json(self) -> Any:
        return orjson.loads(self.value)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at < now

    def where(self) -> str:
        """How an error names this item."""
        return f"namespace {namespace_path(self.namespace)!r}, key {self.key!r}"


@dataclass(frozen=True, slots=True)
class MemorySelection:
    """Which items a read takes: a namespace prefix (segment-wise), optionally only the exact namespace."""

    prefix: tuple[str, ...] = ()
    exact: bool = False

    def matches(self, namespace: tuple[str, ...]) -> bool:
        if self.exact:
            return namespace == self.prefix
        return namespace[: len(self.prefix)] == self.prefix


@dataclass(slots=True)
class NamespaceSummary:
    """One namespace (or, with a depth, a group of them) with its items."""

    namespace: tuple[str, ...]
    items: int = 0
    bytes: int = 0
    oldest_update: datetime | None = None
    newest_update: datetime | None = None
    expiring: int = 0

    def add(self, item: MemoryItem) -> None:
        self.items += 1
        self.bytes += item.size
        at = item.updated_at
        if self.oldest_update is None or at < self.oldest_update:
            self.oldest_update = at
        if self.newest_update is None or at > self.newest_update:
            self.newest_update = at
        self.expiring += item.expires_at is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": namespace_path(self.namespace),
            "items": self.items,
            "bytes": self.bytes,
            "oldest_update": iso(self.oldest_update),
            "newest_update": iso(self.newest_update),
            "expiring": self.expiring,
        }


@dataclass(slots=True)
class MemoryWriteReport:
    items: int = 0
    vectors: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: MemoryWriteReport) -> None:
        self.items += other.items
        self.vectors += other.vectors
        self.problems += other.problems


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(timezone.utc).isoformat()


def utc(at: datetime) -> datetime:
    """An aware UTC datetime (naive ones are UTC in every official store)."""
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


class MemoryStore(ABC):
    """A connection to one memory store (``BaseStore`` layout), opened from a URL."""

    kind: ClassVar[str]
    holds_vectors: ClassVar[bool] = True
    """Whether the layout can hold an item's vectors (a copy of vectors into one that cannot stops
    before anything is written)."""
    vectors_per_item: ClassVar[int | None] = None
    """How many vectors the layout keeps per item (``None``: one per indexed field); a copy of an
    item with more stops before anything is written."""

    @classmethod
    @abstractmethod
    def open(cls, url: str, *, write: bool = False) -> MemoryStore:
        """Open the memory store at ``url``; read-only unless ``write`` (then its tables, keys or
        indexes are created as the official store's ``setup()`` creates them)."""

    @abstractmethod
    def layout(self) -> dict[str, Any]:
        """The official store and layout version found (for export headers and ``doctor``)."""

    @abstractmethod
    def items(self, selection: MemorySelection = MemorySelection()) -> Iterator[MemoryItem]:
        """Items in ``(namespace, key)`` order, with their vectors; paged."""

    def namespaces(self, selection: MemorySelection = MemorySelection()) -> Iterator[NamespaceSummary]:
        """Per-namespace summaries in namespace order. Drivers override with an aggregate."""
        current: NamespaceSummary | None = None
        for item in self.items(selection):
            if current is None or current.namespace != item.namespace:
                if current is not None:
                    yield current
                current = NamespaceSummary(item.namespace)
            current.add(item)
        if current is not None:
            yield current

    def get_many(self, addresses: Iterable[Address]) -> dict[Address, MemoryItem]:
        """The items at these addresses that exist (a batch; drivers override with keyed reads)."""
        wanted = set(addresses)
        found: dict[Address, MemoryItem] = {}
        for namespace in sorted({ns for ns, _ in wanted}):
            for item in self.items(MemorySelection(namespace, exact=True)):
                if item.address in wanted:
                    found[item.address] = item
        return found

    def lock(self, name: str) -> AbstractContextManager[None]:
        """An exclusive, store-wide lock for destructive work (``LockedError`` at once when held)."""
        from ckpt.backends.core.errors import UsageError

        raise UsageError(f"{self.kind} memory stores cannot be locked for {name}")

    def stored_form(self, item: MemoryItem) -> MemoryItem:
        """What this store keeps of ``item`` when it writes it (a lossy layout drops what it cannot
        hold: MongoDBStore keeps no per-item TTL): what ``verify`` expects to read back."""
        return item

    def findings(self) -> list[str]:
        """What ``ckpt doctor`` should say about this memory store's layout (an old migration,
        orphan vectors, expired items still stored); read-only. Drivers add their own."""
        return []

    def index(self) -> VectorIndex | None:
        """The vector index the store holds vectors for, or ``None``."""
        return None

    def write(self, items: Iterable[MemoryItem]) -> MemoryWriteReport:
        """Upsert one batch (an item already there is replaced, as ``put`` replaces it)."""
        from ckpt.backends.core.errors import UsageError

        raise UsageError(f"{self.kind} memory stores cannot be written")

    def delete(self, addresses: Iterable[Address]) -> int:
        """Delete items (with their vectors) in one transaction where the store has them."""
        from ckpt.backends.core.errors import UsageError

        raise UsageError(f"{self.kind} memory stores cannot delete")

    def close(self) -> None:
        """Release connections; safe to call twice."""

    def __enter__(self: M) -> M:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
