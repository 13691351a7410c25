"""SQLite driver: the layout of langgraph-checkpoint-sqlite (spec §3).

Reads every layout in the wild (3.1.2 with ``writes.task_path``, older files without it,
old JSON metadata with LangChain envelopes) and writes exactly the 3.1.2 layout. Read-only
opens use ``mode=ro``: no ``setup()``, no journal-mode switch, a missing file is an error.
Destructive opens (prune, compact: ``create=False``) use ``mode=rw`` and change rows only: a file
that is not a known layout is refused, and an older one is not upgraded. Thread globs mean
``fnmatch.fnmatchcase`` (:mod:`.sqlite_glob`); deletes are guarded (:mod:`.sqlite_delete`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ckpt.backends.core.base import (
    Capability,
    CheckpointHeader,
    CheckpointKey,
    CheckpointRecord,
    Payload,
    Selection,
    SizedCheckpoint,
    Store,
    ThreadSummary,
    WriteReport,
    header_of,
)
from ckpt.backends.core.errors import (
    AccessDeniedError,
    DataError,
    StoreNotFoundError,
)
from ckpt.backends.core.ids import lowest_id_at
from ckpt.backends.core.locks import file_lock
from ckpt.backends.core.merge import attach
from ckpt.backends.core.shards import Shard

if TYPE_CHECKING:
    from ckpt.backends.core.upgrade import LayoutUpgrade
from ckpt.backends.core.urls import sqlite_path
from ckpt.backends.sqlite import SCHEMES
from ckpt.backends.sqlite.connect import IMMUTABLE_NOTE, flush_wal, relax_sync
from ckpt.backends.sqlite.connect import connect_existing as _connect_existing
from ckpt.backends.sqlite.connect import connect_for_write as _connect_for_write
from ckpt.backends.sqlite.connect import remove_database as _remove_database
from ckpt.backends.sqlite.connect import translated as _translated
from ckpt.backends.sqlite.delete import DeleteBatch, delete_batch, orphan_write_keys
from ckpt.backends.sqlite.glob import glob_filter
from ckpt.backends.sqlite.layout import ADD_TASK_PATH, SCHEMA_3_1_2, check_layout, table_columns
from ckpt.backends.sqlite.rows import (
    blob,
    checkpoint_row,
    header_from_row,
    records_from_rows,
    saver_versions,
    write_rows,
)
from ckpt.backends.sqlite.space import PackedTree as _PackedTree

__all__ = ["SCHEMA_3_1_2", "SqliteStore", "before_delete"]


_KEY = "thread_id, checkpoint_ns, checkpoint_id"
_EVERYTHING = Selection()

before_delete: Callable[[DeleteBatch], None] | None = None
"""TEST ONLY. Called with each delete batch (prune's, compact's orphans) inside its transaction,
before anything is deleted; it may add keys to ``batch.checkpoints`` or ``batch.writes`` (plant a
kept checkpoint's writes, say) so a test can prove the integrity guard rolls such a batch back.
Production code never sets it; tests set it with ``monkeypatch.setattr``."""


class SqliteStore(Store):
    """A SQLite file written by SqliteSaver / AsyncSqliteSaver."""

    kind = "sqlite"
    schemes = SCHEMES
    capabilities = frozenset({Capability.WRITE, Capability.DELETE, Capability.BYTE_EXACT, Capability.INLINE_SENDS})

    def __init__(
        self, conn: sqlite3.Connection, path: str, *, writable: bool, create: bool = True, created: bool = False
    ) -> None:
        self._conn = conn
        self.path = path
        self.writable = writable
        self._created = created
        """This open made the file (a new import or migrate target): a failed run removes it again,
        unless another writer's checkpoints are in it (``_others_wrote``)."""
        self._own_checkpoints = 0
        """Checkpoints this open's committed writes added."""
        self.immutable = False
        """Opened with ``immutable=1``: a WAL file on read-only media without its ``-wal`` file."""
        self._create = writable and create
        """May set the file up as the saver's ``setup()`` would (import and migrate targets only)."""
        self._snapshot_depth = 0
        self._shards: set[Shard] = set()
        """Shards whose thread ids this connection's temporary tables hold (``_where``)."""
        self._task_path = self._detect_layout()
        self._relaxed: bool | None = None
        """``connect.relax_sync`` was asked (``write``): ``True`` when the WAL is to be flushed at close."""

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, write: bool = False, create: bool = True) -> SqliteStore:
        """``write`` with ``create`` (import, migrate) may make the file a store as the saver's
        ``setup()`` does; without ``create`` (prune, compact) the file must already be a known
        layout, and its schema and journal mode are never touched."""
        path = sqlite_path(url)
        if not path:
            raise DataError(f"no file path in SQLite URL {url!r}")
        created = immutable = False
        if write and create:
            conn, created = _connect_for_write(path)
        else:
            if not os.path.isfile(path):
                raise StoreNotFoundError(f"no such SQLite file: {path}")
            conn, immutable = _connect_existing(path, write=write)
        try:
            store = cls(conn, path, writable=write, create=create, created=created)
            store.immutable = immutable
            return store
        except BaseException as exc:
            conn.close()
            if created:
                _remove_database(path)
            if isinstance(exc, sqlite3.Error):
                raise _translated(exc, path) from exc
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close; a driver error raised in the block becomes one ``CkptError`` naming the file
        (corrupt pages: ``DataError``; full disk, I/O error: ``StorageError``), and a file this
        open created is removed again (with its ``-wal``/``-shm``/``-journal``) when the block failed."""
        remove = self._created and isinstance(exc, Exception) and not self._others_wrote()
        with suppress(sqlite3.Error):
            self.close()
        if exc is None:
            return
        if remove:
            _remove_database(self.path)
        if isinstance(exc, sqlite3.Error) or isinstance(exc.__context__, sqlite3.Error):
            error = _translated(exc, self.path)
            if error is not exc:
                raise error from exc

    def _others_wrote(self) -> bool:
        """The file holds checkpoints this open did not write: other shards of an import or migrate
        into the same new file, whose rows a failure here must not take with it. An unreadable
        file counts as this open's alone (removed, as before)."""
        try:
            row = self._conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        except sqlite3.Error:
            return False
        return row is not None and int(row[0]) > self._own_checkpoints

    @classmethod
    def new_at(cls, url: str) -> bool:
        path = sqlite_path(url)
        return bool(path) and not os.path.exists(path)

    @property
    def removed_on_failure(self) -> bool:
        return self._created

    @classmethod
    def open_existing(cls, url: str) -> SqliteStore:
        return cls.open(url, write=True, create=False)

    @classmethod
    def from_connection(cls, conn: sqlite3.Connection) -> SqliteStore:
        """A store on an open connection someone else owns (a ``SqliteSaver``'s), for rows only, as
        ``open_existing``: the saver's tables must be there and schema and journal mode are never
        touched. The file's path (``PRAGMA database_list``) names it in messages and places its lock
        file; an in-memory database has none (``path`` is ``":memory:"``: lock it yourself).
        ``close()`` closes ``conn``: a borrower does not call it."""
        row = conn.execute("PRAGMA database_list").fetchone()  # (seq, "main", file): file is "" in memory
        path = str(row[2]) if row is not None and row[2] else ""
        store = cls(conn, path or ":memory:", writable=bool(path), create=False)
        store._relaxed = False  # the owner's connection keeps its own synchronous setting
        return store

    def _detect_layout(self) -> bool:
        columns = table_columns(self._conn, self.path)
        if self._create and not columns.get("checkpoints"):
            self._create_schema(fresh=not columns)
            columns = table_columns(self._conn, self.path)
        task_path = check_layout(self.path, columns)
        if self.writable and not os.access(self.path, os.W_OK):
            raise AccessDeniedError(f"{self.path} is read-only for this user; nothing was changed")
        if not task_path and self._create:
            self._conn.execute(ADD_TASK_PATH)  # what the saver's own setup() does
            return True
        return task_path

    def _create_schema(self, *, fresh: bool) -> None:
        if fresh:
            # setup() switches new stores to WAL; an existing file keeps its journal mode.
            self._conn.execute("PRAGMA journal_mode=WAL")
        # Both tables in one transaction: a shard opening the same new file at that moment sees
        # none or both (autocommit, it saw `checkpoints` without `writes` and refused the file).
        self._conn.executescript(f"BEGIN IMMEDIATE;{SCHEMA_3_1_2}COMMIT;")

    def layout(self) -> dict[str, Any]:
        journal = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
        drift = [] if self._task_path else ["writes has no task_path column; SqliteSaver 3.1.2 setup() adds it"]
        return {
            "saver": "langgraph-checkpoint-sqlite",
            "version": ">=3.1.2" if self._task_path else "<3.1.2 (no writes.task_path)",
            "task_path": self._task_path,
            "journal_mode": journal,
            "drift": drift,
            **({"opened": IMMUTABLE_NOTE} if self.immutable else {}),
        }

    def close(self) -> None:
        if self._relaxed:
            flush_wal(self.path)
        self._conn.close()

    # -- reading -----------------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction, so checkpoints and their writes come from one state."""
        self._conn.execute("SAVEPOINT ckpt_read")
        try:
            yield
        except sqlite3.DatabaseError as exc:  # a damaged page met midway through the rows
            raise DataError(f"cannot read {self.path}: {exc}") from exc
        finally:
            with suppress(sqlite3.ProgrammingError):  # the reader left early and the store is closed
                self._conn.execute("RELEASE ckpt_read")

    def _where(self, selection: Selection) -> tuple[str, list[Any]]:
        """``selection`` as a WHERE clause. A ``--shard``'s thread ids are hashed once per thread,
        from the primary-key index (``SELECT DISTINCT``, no table page read), into a temporary table
        of this connection (the file is not written, even opened read-only); the reads then take
        their rows by that table instead of calling the hash per row (3-4 s of CPU at 1M rows).
        The shard is the threads there when this store first reads it."""
        shard = selection.shard
        if shard is not None and shard.count > 1 and selection.thread_id is None and shard not in self._shards:
            table = shard_table(shard)
            self._conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (thread_id TEXT PRIMARY KEY)")
            self._conn.execute(
                f"INSERT OR IGNORE INTO temp.{table} SELECT t FROM (SELECT DISTINCT thread_id AS t FROM checkpoints) "
                "WHERE ckpt_shard(t, ?) = ?",
                (shard.count, shard.index),
            )
            self._shards.add(shard)
        return _where(selection)

    def headers(self, selection: Selection = Selection()) -> Iterator[CheckpointHeader]:
        where, params = self._where(selection)
        ckpt_sql = (
            f"SELECT {_KEY}, parent_checkpoint_id, metadata, "
            f"ifnull(length(checkpoint), 0) + ifnull(length(metadata), 0) "
            f"FROM checkpoints {where} ORDER BY {_KEY}"
        )
        writes_sql = (
            f"SELECT {_KEY}, count(*), sum(ifnull(length(value), 0)) "
            f"FROM writes {where} GROUP BY {_KEY} ORDER BY {_KEY}"
        )
        with self._snapshot():
            rows = self._rows(ckpt_sql, params)
            sizes = self._rows(writes_sql, params)
            for row, group in attach(rows, sizes, lambda r: r[:3], lambda r: r[:3]):
                header = header_from_row(row, group[0] if group else None)
                if selection.matches(header.key):
                    yield header

    def sized(self, selection: Selection = Selection()) -> Iterator[SizedCheckpoint]:
        """Checkpoints with their sizes; the writes' bytes summed by SQLite (``ckpt size`` never
        reads a write's value, nor builds a write)."""
        where, params = self._where(selection)
        ckpt_sql = f"SELECT {_KEY}, type, checkpoint, {_bytes('metadata')} FROM checkpoints {where} ORDER BY {_KEY}"
        writes_sql = f"SELECT {_KEY}, sum({_bytes('value')}) FROM writes {where} GROUP BY {_KEY} ORDER BY {_KEY}"
        with self._snapshot():
            rows = self._rows(ckpt_sql, params)
            sums = self._rows(writes_sql, params)
            for row, group in attach(rows, sums, lambda r: r[:3], lambda r: r[:3]):
                key = CheckpointKey(row[0], row[1], row[2])
                if selection.matches(key):
                    data = row[4] if type(row[4]) is bytes else blob(row[4])
                    written = int(group[0][3] or 0) if group else 0
                    yield SizedCheckpoint(key, Payload(row[3] or "", data), len(data) + int(row[5]) + written)

    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        where, params = self._where(selection)
        yield from self._records(where, params, selection)

    def _records(self, where: str, params: Sequence[Any], selection: Selection) -> Iterator[CheckpointRecord]:
        task_path = "task_path" if self._task_path else "''"
        ckpt_sql = (
            f"SELECT {_KEY}, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints {where} ORDER BY {_KEY}"
        )
        writes_sql = (
            f"SELECT {_KEY}, task_id, {task_path}, idx, channel, type, value "
            f"FROM writes {where} ORDER BY {_KEY}, task_id, idx"
        )
        with self._snapshot():
            rows = self._rows(ckpt_sql, params)
            writes = self._rows(writes_sql, params)
            records = records_from_rows(rows, writes)
            if selection == _EVERYTHING:  # the SQL already selects it all: no Python step per record
                yield from records
                return
            for record in records:
                if selection.matches(record.key):
                    yield record

    def get(self, key: CheckpointKey) -> CheckpointRecord | None:
        where = "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
        params = (key.thread_id, key.checkpoint_ns, key.checkpoint_id)
        return next(self._records(where, params, Selection()), None)

    def latest(self, thread_id: str, checkpoint_ns: str = "") -> CheckpointHeader | None:
        row = self._conn.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
            "ORDER BY checkpoint_id DESC LIMIT 1",
            (thread_id, checkpoint_ns),
        ).fetchone()
        if row is None:
            return None
        record = self.get(CheckpointKey(thread_id, checkpoint_ns, row[0]))
        return header_of(record) if record is not None else None

    def threads(self, selection: Selection = Selection(), *, details: bool = True) -> Iterator[ThreadSummary]:
        if selection.since is not None or selection.until is not None:
            yield from super().threads(selection)
            return
        if not details:
            yield from self._thread_counts(selection)
            return
        where, params = self._where(selection)
        # Byte sums read every row's page (the blob is stored in it): ask for them only with details.
        ckpt_sql = (
            "SELECT thread_id, count(DISTINCT checkpoint_ns), count(*), min(checkpoint_id), max(checkpoint_id), "
            "sum(ifnull(length(checkpoint), 0) + ifnull(length(metadata), 0)) "
            f"FROM checkpoints {where} GROUP BY thread_id ORDER BY thread_id"
        )
        writes_sql = (
            f"SELECT thread_id, sum(ifnull(length(value), 0)) FROM writes {where} GROUP BY thread_id ORDER BY thread_id"
        )
        with self._snapshot():
            rows = self._rows(ckpt_sql, params)
            sizes = self._rows(writes_sql, params)
            for row, group in attach(rows, sizes, lambda r: r[0], lambda r: r[0]):
                if selection.matches_thread(row[0]):
                    extra = group[0][1] if group else 0
                    yield ThreadSummary(row[0], row[1], row[2], row[3], row[4], (row[5] or 0) + (extra or 0))

    def _thread_counts(self, selection: Selection) -> Iterator[ThreadSummary]:
        """Counts and first/last ids from the primary-key index alone: no table page is read."""
        where, params = self._where(selection)
        sql = (
            "SELECT thread_id, count(*), min(checkpoint_id), max(checkpoint_id) "
            f"FROM checkpoints {where} GROUP BY thread_id ORDER BY thread_id"
        )
        with self._snapshot():
            for thread_id, count, first, last in self._rows(sql, params):
                if selection.matches_thread(thread_id):  # the glob's SQL form is checked again
                    yield ThreadSummary(thread_id, None, count, first, last, None)

    def count(self, selection: Selection = Selection()) -> int | None:
        if selection.thread_glob is not None:  # counted per thread, so fnmatch decides as everywhere
            return sum(t.checkpoints for t in self._thread_counts(selection))
        where, params = self._where(selection)
        return int(self._conn.execute(f"SELECT count(*) FROM checkpoints {where}", params).fetchone()[0])

    def _rows(self, sql: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """The cursor itself, iterated in C (a Python generator per row over ``fetchmany`` pages was
        ~10% of an export, issue #24). Inside ``_snapshot``, which names a read error as ``DataError``."""
        try:
            return self._conn.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"cannot read {self.path}: {exc}") from exc

    # -- writing -----------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        if self._relaxed is None:
            self._relaxed = relax_sync(self._conn)
        batch = list(records)
        report = WriteReport()
        ckpt_rows = [checkpoint_row(r) for r in batch]
        writes = write_rows(batch)
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, "
                "type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                ckpt_rows,
            )
            report.checkpoints_written = conn.total_changes - before
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, "
                "channel, type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                writes,
            )
            report.writes_written = conn.total_changes - before
        self._own_checkpoints += report.checkpoints_written  # committed
        report.checkpoints_skipped = len(ckpt_rows) - report.checkpoints_written
        report.writes_skipped = len(writes) - report.writes_written
        return report

    def layout_upgrade(self) -> LayoutUpgrade:
        from ckpt.backends.sqlite.upgrade import layout_upgrade

        return layout_upgrade(self._conn, self._task_path, self._upgrading)

    @contextmanager
    def _upgrading(self) -> Iterator[sqlite3.Connection]:
        with self._transaction() as conn:
            yield conn
        self._task_path = any(row[1] == "task_path" for row in self._conn.execute("PRAGMA table_info(writes)"))

    def replace(self, records: Iterable[CheckpointRecord]) -> int:
        from ckpt.backends.sqlite.upgrade import replace_checkpoints

        return replace_checkpoints(self._transaction, records)

    def stored_form(self, record: CheckpointRecord) -> CheckpointRecord:
        converted = saver_versions(record.checkpoint)
        if converted is record.checkpoint.data:
            return record
        return replace(record, checkpoint=Payload(record.checkpoint.type, converted))

    def compact(self, idle_before: str, *, dry_run: bool = False) -> dict[str, int]:
        orphan = (
            "NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = writes.thread_id "
            "AND c.checkpoint_ns = writes.checkpoint_ns AND c.checkpoint_id = writes.checkpoint_id)"
        )
        if dry_run:
            count = self._conn.execute(
                f"SELECT count(*) FROM writes WHERE checkpoint_id < ? AND {orphan}", (idle_before,)
            )
            return {"orphan_writes": int(count.fetchone()[0])}
        with self._transaction() as conn:
            # Orphans by key, deleted as a batch of no checkpoints: the guard proves each had none.
            batch = DeleteBatch(checkpoints=[], writes=orphan_write_keys(conn, idle_before))
            removed = self._delete_batch(conn, batch)[1]
        self._conn.execute("VACUUM")  # rewrites the file without the free pages
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"orphan_writes": removed}

    def storage_bytes(self) -> int | None:
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))

    def reclaimable_bytes(self, idle_before: str | None = None) -> int | None:
        """What ``VACUUM`` frees: the file and its WAL less the pages the tables and their indexes
        take when rebuilt in key order (each row's record size from the column lengths, packed
        into pages as SQLite does, overflow pages for large values), leaving out the orphan
        writes older than ``idle_before``. Reads every row's lengths (not its values)."""
        before = self.storage_bytes()
        if before is None:
            return None
        page = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        pages = 1  # page 1: the schema
        tables = [
            r[0]
            for r in self._conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for table in tables:
            info = list(self._conn.execute(f'PRAGMA table_info("{table}")'))
            columns = [f'length("{c[1]}")' for c in info]
            primary = sorted((c for c in info if c[5]), key=lambda c: c[5])
            key = [f'length("{c[1]}")' for c in primary]
            # a primary key other than one INTEGER column (the rowid itself) is an index of its own
            indexed = len(primary) > 1 or (len(primary) == 1 and str(primary[0][2]).upper() != "INTEGER")
            query = f'SELECT {" + ".join(columns) or "0"}, {" + ".join(key) or "0"} FROM "{table}"'
            args: tuple[str, ...] = ()
            if table == "writes" and idle_before is not None:
                query += (
                    " WHERE NOT (checkpoint_id < ? AND NOT EXISTS (SELECT 1 FROM checkpoints c "
                    "WHERE c.thread_id = writes.thread_id AND c.checkpoint_ns = writes.checkpoint_ns "
                    "AND c.checkpoint_id = writes.checkpoint_id))"
                )
                args = (idle_before,)
            table_tree, index_tree = _PackedTree(page, index=False), _PackedTree(page, index=True)
            for row_bytes, key_bytes in self._conn.execute(query, args):
                table_tree.add(int(row_bytes or 0) + len(columns) + 1)
                if indexed:
                    index_tree.add(int(key_bytes or 0) + len(key) + 2 + 9)  # + the rowid
            pages += table_tree.pages() + (index_tree.pages() if indexed else 0)
        return max(0, before - pages * page)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """``<file>.ckpt-<name>.lock`` beside the database, locked (``locks.file_lock``) while the
        block runs and removed when it ends."""
        with file_lock(f"{self.path}.ckpt-{name}.lock", f"another ckpt {name} is running on {self.path}"):
            yield

    def delete(self, keys: Iterable[CheckpointKey]) -> int:
        rows = [(k.thread_id, k.checkpoint_ns, k.checkpoint_id) for k in keys]
        with self._transaction() as conn:
            return self._delete_batch(conn, DeleteBatch(checkpoints=rows, writes=list(rows)))[0]

    def delete_threads(self, thread_ids: Sequence[str]) -> int:  # issue #22: backends/sqlite/residue.py
        from ckpt.backends.sqlite import residue

        return residue.delete_threads(self._transaction, thread_ids)

    def residue(self, thread_ids: Sequence[str] = (), keys: Sequence[CheckpointKey] = ()) -> dict[str, int]:
        from ckpt.backends.sqlite import residue

        return residue.residue(self._conn, thread_ids, keys)

    def _delete_batch(self, conn: sqlite3.Connection, batch: DeleteBatch) -> tuple[int, int]:
        """Checkpoints and writes deleted, inside the caller's transaction (sqlite_delete.py)."""
        if before_delete is not None:  # tests only: plant rows the guard must catch
            before_delete(batch)
        return delete_batch(conn, batch)


def _bytes(column: str) -> str:
    """The stored bytes of ``column`` as ckpt reads them (TEXT as UTF-8), 0 for NULL; a BLOB's
    length comes from its header, without reading its overflow pages."""
    return (
        f"ifnull(CASE WHEN typeof({column}) = 'text' THEN length(CAST({column} AS BLOB)) ELSE length({column}) END, 0)"
    )


def shard_table(shard: Shard) -> str:
    """The temporary table holding a shard's thread ids (``SqliteStore._where`` fills it)."""
    return f"ckpt_shard_{shard.index}_of_{shard.count}"


def _where(selection: Selection) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if selection.thread_id is not None:
        clauses.append("thread_id = ?")
        params.append(selection.thread_id)
    if selection.thread_glob is not None:
        # fnmatch's glob in GLOB's syntax; every caller re-checks ids with fnmatch (NUL, see sqlite_glob)
        glob = glob_filter(selection.thread_glob)
        clauses.append(glob.clause)
        params.extend(glob.params)
    if selection.thread_from is not None:
        clauses.append("thread_id >= ?")  # BINARY collation: the byte order matches_thread uses
        params.append(selection.thread_from)
    if selection.thread_to is not None:
        clauses.append("thread_id < ?")
        params.append(selection.thread_to)
    if selection.shard is not None and selection.shard.count > 1 and selection.thread_id is None:
        clauses.append(f"thread_id IN (SELECT thread_id FROM temp.{shard_table(selection.shard)})")
    if selection.checkpoint_ns is not None:
        clauses.append("checkpoint_ns = ?")
        params.append(selection.checkpoint_ns)
    if selection.since is not None:
        clauses.append("checkpoint_id >= ?")
        params.append(lowest_id_at(selection.since))
    if selection.until is not None:
        clauses.append("checkpoint_id < ?")
        params.append(lowest_id_at(selection.until))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
