"""The store contract: immutable records carrying raw payloads, and the driver ABC.

Drivers move bytes; they never decode checkpoint payloads (that is ``ckpt.formats``'
job). Every method that returns many rows is an iterator over a paged read, so a store of
ten million checkpoints is walked in constant memory.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import orjson

from ckpt.backends.core.ids import checkpoint_time
from ckpt.backends.core.shards import Shard

if TYPE_CHECKING:
    from ckpt.backends.core.policy import Policy, ServerPrune
    from ckpt.backends.core.upgrade import LayoutUpgrade

S = TypeVar("S", bound="Store")


class Capability(str, Enum):
    """Optional operations a driver declares beyond reading."""

    WRITE = "write"
    DELETE = "delete"
    TTL = "ttl"
    BYTE_EXACT = "byte-exact"
    """Payloads are stored verbatim: what is written reads back byte for byte."""
    PARENT_SENDS = "parent-sends"
    """The store's saver finds a v<4 checkpoint's pending Sends in its parent's
    ``__pregel_tasks`` writes (``PostgresSaver``; a JSONL file carries them for whoever imports
    it). See ``ckpt.backends.core.sends``."""
    INLINE_SENDS = "inline-sends"
    """The store's saver returns a v<4 checkpoint's own ``pending_sends`` (SQLite, MongoDB,
    Couchbase, JSONL; not Redis, whose saver replaces them, nor PostgreSQL, whose JSONB drops them)."""


# The value objects below are built for every checkpoint and write a command reads, up to
# millions of times: ``frozen=True``'s ``object.__setattr__`` per field made their construction
# 3.4x slower (issue #24: ~1 s of every 100k copied). They are never mutated; ``unsafe_hash``
# keeps them hashable by value, as frozen ones are.
@dataclass(slots=True, unsafe_hash=True)
class Payload:
    """A serialized value exactly as the saver stored it: ``(type tag, bytes)``.

    Tags are the serializer's (``msgpack``, ``null``, ``bytes``, ``json``, ``pickle``,
    ``msgpack+aes`` ...). Metadata payloads use ``json`` for UTF-8 JSON text.

    ``decoded``: what ``data`` decodes to, where a reader made ``data`` by packing it
    (``msgpack_raw.packed``): a writer may take it instead of decoding ``data`` again. It is
    not part of the value (not compared, not hashed, not shown) and never outlives its
    ``data``: it is not an init field, so ``dataclasses.replace`` and every new ``Payload`` start
    without it. Read-only for everyone but ``packed``.
    """

    type: str
    data: bytes
    decoded: Any = field(default=None, init=False, compare=False, hash=False, repr=False)


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see Payload
class PendingWrite:
    """One row of a checkpoint's pending writes (spec §1.6)."""

    task_id: str
    task_path: str
    idx: int
    channel: str
    value: Payload


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see Payload
class CheckpointKey:
    """Address of a checkpoint: ``(thread_id, checkpoint_ns, checkpoint_id)``."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str

    def __str__(self) -> str:
        return f"thread {self.thread_id!r}, ns {self.checkpoint_ns!r}, checkpoint {self.checkpoint_id}"


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see Payload
class CheckpointHeader:
    """What a cheap scan yields: identity, parent, metadata and sizes, no blob decoding.

    ``metadata`` is the parsed metadata dict, or ``None`` when the stored metadata could not
    be parsed (``metadata_error`` then says why).
    """

    key: CheckpointKey
    parent_checkpoint_id: str | None
    metadata: dict[str, Any] | None
    checkpoint_bytes: int
    writes_bytes: int = 0
    writes_count: int = 0
    metadata_error: str | None = None
    filed_run_id: str | None = None
    """The run as the store files it beside the metadata (RedisSaver: the document's indexed
    ``run_id`` field; a record's ``run_id`` extra), when not in the metadata."""

    @property
    def run_id(self) -> str | None:
        """The run that wrote the checkpoint: metadata's ``run_id`` (SqliteSaver, PostgresSaver and
        MongoDBSaver copy it there from ``config``), else :attr:`filed_run_id`."""
        run = (self.metadata or {}).get("run_id")
        return run if isinstance(run, str) and run else self.filed_run_id

    @property
    def size(self) -> int:
        return self.checkpoint_bytes + self.writes_bytes

    @property
    def key_tuple(self) -> tuple[str, str, str]:
        return (self.key.thread_id, self.key.checkpoint_ns, self.key.checkpoint_id)


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see Payload
class SizedCheckpoint:
    """What ``size`` needs of a checkpoint: its key, its checkpoint payload (split by channel) and
    its :attr:`CheckpointRecord.size` (checkpoint, metadata and pending-write bytes)."""

    key: CheckpointKey
    checkpoint: Payload
    size: int


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see Payload
class CheckpointRecord:
    """One checkpoint with everything the saver stores for it, all raw."""

    key: CheckpointKey
    parent_checkpoint_id: str | None
    checkpoint: Payload
    metadata: Payload
    writes: tuple[PendingWrite, ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()
    """Store-specific facts that have no place in the common model but must survive a
    round trip through an export, as sorted ``(name, JSON value)`` pairs, e.g.
    ``("redis.has_writes", False)``. Stores that do not know a name ignore it."""

    def extra_value(self, name: str, default: Any = None) -> Any:
        return dict(self.extra).get(name, default)

    @property
    def size(self) -> int:
        total = len(self.checkpoint.data) + len(self.metadata.data)
        for write in self.writes:  # a loop, not sum() over a generator: called for every record copied
            total += len(write.value.data)
        return total


@dataclass(frozen=True, slots=True)
class Selection:
    """Which checkpoints an operation covers. Empty selection = everything.

    ``since``/``until`` bound the checkpoint time (decoded from the uuid6 id) as epoch
    seconds; ``until`` is exclusive.
    """

    thread_glob: str | None = None
    since: float | None = None
    until: float | None = None
    checkpoint_ns: str | None = None
    thread_id: str | None = None
    """One exact thread (no glob interpretation)."""
    thread_from: str | None = None
    thread_to: str | None = None
    """A half-open range of thread ids, ``thread_from <= thread_id < thread_to`` in the order of
    the store it is applied to: code points (= UTF-8 bytes), except PostgreSQL, which compares
    in its columns' collation (the order of its index); how ``migrate --jobs`` hands each worker
    its share of the threads, the bounds coming from that store (``parallel.thread_ranges``)."""
    shard: Shard | None = None
    """``--shard K/N``: only the threads whose id hashes to shard K (``core.shards``); drivers
    push it into their query where they can and re-check every id they yield."""
    threads: frozenset[str] | None = None
    """Only these threads: how ``migrate --jobs`` hands each worker its share of a store whose
    driver reads a set of threads without a pass over the store and lists them cheaply
    (``thread_counts``: Redis), listed once by the parent (``parallel.listed_parts``). Every
    driver re-checks the ids it yields."""

    def matches_thread(self, thread_id: str) -> bool:
        if self.thread_id is not None and thread_id != self.thread_id:
            return False
        if self.threads is not None and thread_id not in self.threads:
            return False
        if self.thread_from is not None and thread_id < self.thread_from:
            return False
        if self.thread_to is not None and thread_id >= self.thread_to:
            return False
        if self.shard is not None and not self.shard.holds(thread_id):
            return False
        return self.thread_glob is None or fnmatch.fnmatchcase(thread_id, self.thread_glob)

    def matches(self, key: CheckpointKey) -> bool:
        if not self.matches_thread(key.thread_id):
            return False
        if self.checkpoint_ns is not None and key.checkpoint_ns != self.checkpoint_ns:
            return False
        if self.since is None and self.until is None:
            return True
        at = checkpoint_time(key.checkpoint_id)
        if at is None:
            return False
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


@dataclass(slots=True)
class ThreadSummary:
    """One row of ``ckpt list``: a thread and what it holds."""

    thread_id: str
    namespaces: int | None = 0
    checkpoints: int = 0
    first_checkpoint_id: str | None = None
    last_checkpoint_id: str | None = None
    bytes: int | None = 0
    """``namespaces`` and ``bytes`` are ``None`` when the summary was asked for without details."""
    keys_without_ttl: int | None = None
    """Checkpoints stored without an expiry (stores with TTLs only; ``None`` elsewhere)."""


@dataclass(slots=True)
class WriteReport:
    """What a ``write`` call did: new rows versus rows the target already had."""

    checkpoints_written: int = 0
    checkpoints_skipped: int = 0
    writes_written: int = 0
    writes_skipped: int = 0

    def add(self, other: WriteReport) -> None:
        self.checkpoints_written += other.checkpoints_written
        self.checkpoints_skipped += other.checkpoints_skipped
        self.writes_written += other.writes_written
        self.writes_skipped += other.writes_skipped


@dataclass
class CopiedRows(WriteReport):
    """One transaction of :meth:`Store.rows_from`: rows read from the source and what was new."""

    checkpoints_read: int = 0
    bytes_read: int = 0
    left: tuple[CheckpointKey, ...] = ()
    """Checkpoints of the batch not copied as rows, which the caller copies through ``records``
    (rows that need a repair only a decoded record can have: PostgresSaver 1.0's inline Sends)."""
    left_threads: tuple[str, ...] = ()
    """Threads of the batch not copied as rows at all: the caller copies the selection's
    checkpoints of each through ``records`` (a Redis thread with a document in an older form)."""


class Store(ABC):
    """A connection to one checkpoint store, opened from a URL.

    Subclasses implement the abstract core; optional operations are declared in
    ``capabilities`` and raise ``UsageError`` when missing.
    """

    kind: ClassVar[str]
    """Short store kind, e.g. ``sqlite``; shown in reports and export headers."""
    schemes: ClassVar[tuple[str, ...]] = ()
    """URL schemes this driver accepts."""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    """Optional operations beyond reading."""

    @classmethod
    @abstractmethod
    def open(cls, url: str, *, write: bool = False) -> Store:
        """Open the store at ``url``; read-only unless ``write`` (then it may be created)."""

    @classmethod
    def reopen(cls, url: str, *, write: bool = False) -> Store:
        """Open a store that this process's parent has just opened and checked (a ``--jobs``
        worker's own connection to it): a driver may skip the checks of the whole store that the
        parent's open made. This default opens as ``open`` does."""
        return cls.open(url, write=write)

    @classmethod
    def open_existing(cls, url: str) -> Store:
        """Open for destructive work (prune, compact): the store must already be there in a layout
        this driver knows, and no table, index or setting of it is created or changed.

        Drivers override this with a mode of their own (SQLite does). This default first opens
        read-only, which refuses a place holding no store, then opens for writing; that second
        open may still run what the saver's ``setup()`` runs on a known but older layout.
        """
        cls.open(url).close()
        return cls.open(url, write=True)

    @abstractmethod
    def layout(self) -> dict[str, Any]:
        """The detected saver and layout version, for export headers and ``doctor``."""

    def headers(self, selection: Selection = Selection()) -> Iterator[CheckpointHeader]:
        """Cheap scan in ``(thread_id, checkpoint_ns, checkpoint_id)`` order; no blob decoding.

        This default derives headers from full records; drivers whose layout allows a cheaper
        scan (SQLite, PostgreSQL) override it.
        """
        for record in self.records(selection):
            yield header_of(record)

    def sized(self, selection: Selection = Selection()) -> Iterator[SizedCheckpoint]:
        """The checkpoints of ``selection`` in key order with their sizes, for ``ckpt size``.

        This default reads full records; a driver that can sum the pending writes in the store
        (SQLite) overrides it and never reads a write's value."""
        for record in self.records(selection):
            yield SizedCheckpoint(record.key, record.checkpoint, record.size)

    @abstractmethod
    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        """Full records in ``(thread_id, checkpoint_ns, checkpoint_id)`` order."""

    def get(self, key: CheckpointKey) -> CheckpointRecord | None:
        """One full record, or ``None``. Drivers override with a keyed lookup."""
        selection = Selection(thread_id=key.thread_id, checkpoint_ns=key.checkpoint_ns)
        return next((r for r in self.records(selection) if r.key == key), None)

    def latest(self, thread_id: str, checkpoint_ns: str = "") -> CheckpointHeader | None:
        """Header of the newest checkpoint (max id) of a thread and namespace."""
        selection = Selection(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
        last = None
        for header in self.headers(selection):
            last = header
        return last

    def threads(self, selection: Selection = Selection(), *, details: bool = True) -> Iterator[ThreadSummary]:
        """Per-thread summaries, in thread order. Drivers override with an aggregate query.

        Without ``details`` a driver may skip namespace counts and byte sums when those cost a
        read of every row (SQLite: counting from the primary-key index alone is ~10x cheaper).
        """
        current: ThreadSummary | None = None
        namespaces: set[str] = set()
        for header in self.headers(selection):
            if current is None or current.thread_id != header.key.thread_id:
                if current is not None:
                    yield current
                current, namespaces = ThreadSummary(header.key.thread_id), set()
            _add_to_summary(current, header, namespaces)
        if current is not None:
            yield current

    def count(self, selection: Selection = Selection()) -> int | None:
        """Number of checkpoints selected, if the store can tell cheaply (for progress bars)."""
        return None

    def server_prune(self, policy: Policy, now: float, jobs: int | None = None) -> ServerPrune | None:
        """A capability: the store plans and carries out this prune itself (PostgreSQL: in SQL), or
        ``None`` when it cannot do so exactly for this policy (then the general planner of
        :mod:`ckpt.backends.ops.retention` plans from headers and :meth:`delete` deletes). ``jobs``
        connections may share the work (``None``: the store decides). Close the result when done."""
        return None

    def layout_upgrade(self) -> LayoutUpgrade | None:
        """A capability: the layout generation found and the steps that bring it to the current
        saver's (``ckpt upgrade``), or ``None`` when the driver does not recognise the layout
        (then nothing is changed)."""
        return None

    def replace(self, records: Iterable[CheckpointRecord]) -> int:
        """Overwrite existing checkpoints' payloads in place (same keys, one transaction where the
        store has them); writes are left as they are. Returns how many were replaced."""
        raise _missing(self, Capability.WRITE)

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        """Write one batch idempotently: rows already present are left alone and counted."""
        raise _missing(self, Capability.WRITE)

    def prepared_write(self, records: list[CheckpointRecord]) -> Callable[[], WriteReport]:
        """``write`` in two steps: everything that needs no server (building rows or documents,
        raising ``CorruptRecordError`` for a record this store cannot hold, nothing sent) is done
        now, and the call returned sends it. ``write(r)`` is ``prepared_write(r)()``. A copy builds
        the next batch while the one before is sent (``writes_wait_on_server``). Default: nothing
        is prepared; the call writes."""
        return lambda: self.write(records)

    def rows_from(self, source: Store, selection: Selection, batch_size: int) -> Iterator[CopiedRows] | None:
        """``selection`` of ``source`` copied in as stored rows, one transaction per ``batch_size``
        checkpoints, without decoding a payload; ``None`` (the default) when this driver cannot.

        A driver offers it for a source in its own layout (same saver, same layout version) and a
        selection it applies exactly (PostgreSQL in SQL, Redis on each fetched document), where the
        rows it copies are what its saver reads; a copy then goes through ``records`` and ``write``
        only where it returns ``None``, and for what a batch hands back (``CopiedRows.left``,
        ``left_threads``). Idempotent as ``write``: rows already present are left alone and counted."""
        return None

    def delete(self, keys: Iterable[CheckpointKey]) -> int:
        """Delete checkpoints with their writes; returns how many were deleted."""
        raise _missing(self, Capability.DELETE)

    def delete_threads(self, thread_ids: Sequence[str]) -> int:
        """``delete_thread`` for each of ``thread_ids``: every row, key, document, blob, index entry
        and latest pointer of those threads, orphans included; returns how many checkpoints went.

        This default deletes the checkpoints the headers name (with their writes) through
        :meth:`delete`; drivers delete by thread id (``backends/<kind>/residue.py``)."""
        keys = [h.key for t in thread_ids for h in self.headers(Selection(thread_id=t))]
        return self.delete(keys) if keys else 0

    def residue(self, thread_ids: Sequence[str] = (), keys: Sequence[CheckpointKey] = ()) -> dict[str, int]:
        """What the store still holds of ``thread_ids`` (anything filed under those threads) and of
        the checkpoints ``keys`` (their rows, writes, registries, pointers, blobs only they used),
        by kind; all zero proves a delete. Reads only.

        This default counts what :meth:`headers` shows; drivers count every place their saver files
        data (``backends/<kind>/residue.py``)."""
        found = {"checkpoints": 0, "writes": 0}
        for thread_id in thread_ids:
            for header in self.headers(Selection(thread_id=thread_id)):
                found["checkpoints"] += 1
                found["writes"] += header.writes_count
        for key in keys:
            if key.thread_id in thread_ids:
                continue
            record = self.get(key)
            if record is not None:
                found["checkpoints"] += 1
                found["writes"] += len(record.writes)
        return found

    def stored_form(self, record: CheckpointRecord) -> CheckpointRecord:
        """The record as this store reads it back after writing it.

        Identity for lossless stores; a store whose layout cannot hold every value (Redis'
        JSON turns a datetime into a string) returns the record with those losses applied,
        so that ``--verify`` and the contract tests compare like with like.
        """
        return record

    def read_problems(self) -> list[str]:
        """Rows a read skipped because they could not be read (each named by its key).

        Stores whose documents can be individually malformed (MongoDB) skip such rows,
        keep going, and list them here; commands print them and exit non-zero.
        """
        return []

    def conversion_losses(self) -> dict[str, int]:
        """What writes into this store could not keep, by kind (lossy layouts only)."""
        return {}

    def validate(self) -> int | None:
        """Read everything once to prove it is readable before anything is written.

        Stores whose reads can fail midway on bad input (JSONL files) implement this so that
        ``import`` writes nothing when line 9,000 is broken. Returns the record count.
        """
        return None

    @classmethod
    def new_at(cls, url: str) -> bool:
        """Whether a write open of ``url`` would make a new store that a failed ``with`` block
        removes whole (a SQLite file that does not exist yet): ``import`` then writes while it
        reads its files, without reading them through first (issue #24). Default: no."""
        return False

    ranges_read_by_index: ClassVar[bool] = True
    """A thread range (``Selection.thread_from``/``thread_to``, a ``--jobs`` worker's share) is
    read from an ordered index and costs about its share. ``False`` where every range costs a
    pass over the whole store (no ordered index to range over): a parallel copy then gives each
    worker one hash shard of the threads instead of several ranges (``parallel.worker_parts``)."""

    one_writer: ClassVar[bool] = False
    """The server applies writes one at a time (Redis): a second ``--jobs`` worker writing only
    queues behind the first, so a copy into it keeps one worker unless told otherwise."""
    writes_wait_on_server: ClassVar[bool] = False
    """``write`` spends much of its time waiting for a server process (PostgreSQL, Redis,
    MongoDB): a copy then writes each batch in a thread while it reads and decodes the next. An
    in-process store (SQLite, a JSONL file) keeps the one thread: its writes hold the GIL."""

    @property
    def removed_on_failure(self) -> bool:
        """This open made the store, and a failure inside its ``with`` block removes it again."""
        return False

    def begin_copy(self, source_kind: str, source_layout: dict[str, Any], source_url: str) -> None:
        """Told what is about to be copied in (the JSONL store puts it in its header)."""

    def lock(self, name: str) -> AbstractContextManager[None]:
        """An exclusive, store-wide lock for destructive work (two cron runs never both delete).

        Raises ``LockedError`` at once when another holder has it. Stores that cannot lock do
        not support destructive commands.
        """
        raise _missing(self, Capability.DELETE)

    def compact(self, idle_before: str, *, dry_run: bool = False) -> dict[str, int]:
        """Remove orphans (writes without a checkpoint, unreferenced blobs, stale keys) of data
        older than the checkpoint id ``idle_before``, then reclaim space the store's own way.

        Returns counts by kind of what was (``dry_run``: would be) removed. Nothing newer than ``idle_before`` is
        touched: a running graph may have written writes before their checkpoint (spec §8 rule 8).
        """
        raise _missing(self, Capability.DELETE)

    def storage_bytes(self) -> int | None:
        """Bytes the store occupies on disk or in memory, when it can tell."""
        return None

    def reclaimable_bytes(self, idle_before: str | None = None) -> int | None:
        """An estimate of the bytes :meth:`compact` would free (``storage_bytes`` less what it
        leaves), counting the orphans older than the checkpoint id ``idle_before`` when given;
        negative when compacting grows the store (PostgreSQL's VACUUM adds maps); ``None`` when
        the store cannot estimate it. Reads only."""
        return None

    def close(self) -> None:
        """Release connections; safe to call twice."""

    def __enter__(self: S) -> S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _add_to_summary(summary: ThreadSummary, header: CheckpointHeader, namespaces: set[str]) -> None:
    namespaces.add(header.key.checkpoint_ns)
    summary.namespaces = len(namespaces)
    summary.checkpoints += 1
    cid = header.key.checkpoint_id
    if summary.first_checkpoint_id is None or cid < summary.first_checkpoint_id:
        summary.first_checkpoint_id = cid
    if summary.last_checkpoint_id is None or cid > summary.last_checkpoint_id:
        summary.last_checkpoint_id = cid
    summary.bytes = (summary.bytes or 0) + header.size


def _missing(store: Store, capability: Capability) -> Exception:
    from ckpt.backends.core.errors import UsageError

    return UsageError(f"{store.kind} stores do not support {capability.value}")


def parse_metadata(data: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """JSON metadata bytes → ``(dict, None)``, or ``(None, why)`` when they are not a JSON object."""
    if not data:
        return {}, None
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return None, f"metadata is not JSON ({exc})"
    if not isinstance(parsed, dict):
        return None, "metadata is not a JSON object"
    return parsed, None


def header_of(record: CheckpointRecord) -> CheckpointHeader:
    """The header of a full record (metadata parsed when it is JSON)."""
    metadata, error = parse_metadata(record.metadata.data) if record.metadata.type == "json" else (None, None)
    filed = record.extra_value("run_id")
    return CheckpointHeader(
        key=record.key,
        parent_checkpoint_id=record.parent_checkpoint_id,
        metadata=metadata,
        checkpoint_bytes=len(record.checkpoint.data) + len(record.metadata.data),
        writes_bytes=sum(len(w.value.data) for w in record.writes),
        writes_count=len(record.writes),
        metadata_error=error,
        filed_run_id=filed if isinstance(filed, str) and filed else None,
    )


def find_record(
    store: Store, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
) -> CheckpointRecord:
    """The named checkpoint, or the newest of the thread and namespace; raises when absent."""
    from ckpt.backends.core.errors import ThreadNotFoundError

    if checkpoint_id is None:
        header = store.latest(thread_id, checkpoint_ns)
        if header is None:
            where = f" in namespace {checkpoint_ns!r}" if checkpoint_ns else ""
            raise ThreadNotFoundError(f"no thread {thread_id!r}{where} in this store")
        checkpoint_id = header.key.checkpoint_id
    record = store.get(CheckpointKey(thread_id, checkpoint_ns, checkpoint_id))
    if record is None:
        # ``ckpt list`` shows ids by their shortest unique prefix (as git does): take one here too
        record = _by_prefix(store, thread_id, checkpoint_ns, checkpoint_id)
    return record


def _by_prefix(store: Store, thread_id: str, checkpoint_ns: str, prefix: str) -> CheckpointRecord:
    from ckpt.backends.core.errors import CheckpointNotFoundError, UsageError

    where = f"in thread {thread_id!r}, ns {checkpoint_ns!r}"
    matches = [
        h.key
        for h in store.headers(Selection(thread_id=thread_id, checkpoint_ns=checkpoint_ns))
        if prefix and h.key.checkpoint_id.startswith(prefix)
    ]
    if len(matches) > 1:
        shown = ", ".join(k.checkpoint_id for k in matches[:3])
        raise UsageError(
            f"checkpoint prefix {prefix!r} is ambiguous {where}: {shown}{', ...' if len(matches) > 3 else ''}"
        )
    record = store.get(matches[0]) if matches else None
    if record is None:
        raise CheckpointNotFoundError(f"no checkpoint {prefix} {where}")
    return record
