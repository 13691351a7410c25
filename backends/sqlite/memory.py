"""Long-term memory in SQLite, in the layout of ``SqliteStore`` (langgraph-checkpoint-sqlite 3.1.2).

Tables (the store's ``setup()``; DDL verbatim below): ``store`` keyed by ``(prefix, key)`` where
``prefix`` is the namespace joined by ``.``; ``value`` holds ``orjson.dumps(value)`` (bytes, so a
BLOB in a TEXT column); ``created_at``/``updated_at`` are ``CURRENT_TIMESTAMP`` text (UTC, no
zone); ``expires_at`` is the Python adapter's ``str(datetime)`` (``… 12:00:00.123456+00:00``) or,
after a refreshing read, ``DATETIME(…)`` text; ``ttl_minutes`` a REAL. With an index configured,
``store_vectors`` holds one float32 BLOB per ``(prefix, key, field_name)``; the index's dimensions
and distance are not recorded anywhere in the file. ``store_migrations``/``vector_migrations``
hold the applied migration numbers.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from ckpt.backends.core.errors import DataError, NotAStoreError, StoreNotFoundError
from ckpt.backends.core.locks import file_lock
from ckpt.backends.core.memory import (
    SEPARATOR,
    Address,
    MemoryItem,
    MemorySelection,
    MemoryStore,
    MemoryWriteReport,
    NamespaceSummary,
    Vector,
    VectorIndex,
    utc,
)
from ckpt.backends.core.urls import sqlite_path
from ckpt.backends.sqlite.connect import connect_existing, connect_for_write, translated

MIGRATIONS = [
    """
CREATE TABLE IF NOT EXISTS store (
    -- 'prefix' represents the doc's 'namespace'
    prefix text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (prefix, key)
);
""",
    """
-- For faster lookups by prefix
CREATE INDEX IF NOT EXISTS store_prefix_idx ON store (prefix);
""",
    """
-- Add expires_at column to store table
ALTER TABLE store
ADD COLUMN expires_at TIMESTAMP;
""",
    """
-- Add ttl_minutes column to store table
ALTER TABLE store
ADD COLUMN ttl_minutes REAL;
""",
    """
-- Add index for efficient TTL sweeping
CREATE INDEX IF NOT EXISTS idx_store_expires_at ON store (expires_at)
WHERE expires_at IS NOT NULL;
""",
]
VECTOR_MIGRATIONS = [
    """
CREATE TABLE IF NOT EXISTS store_vectors (
    prefix text NOT NULL,
    key text NOT NULL,
    field_name text NOT NULL,
    embedding BLOB,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (prefix, key, field_name),
    FOREIGN KEY (prefix, key) REFERENCES store(prefix, key) ON DELETE CASCADE
);
""",
]
PAGE = 1000


def _prefix(namespace: tuple[str, ...]) -> str:
    return SEPARATOR.join(namespace)


def parse_time(text: Any) -> datetime | None:
    """A stored timestamp (any of the forms above) → aware UTC datetime; ``ValueError`` otherwise."""
    if text is None:
        return None
    if text.__class__ is not str:
        text = text.decode() if isinstance(text, bytes) else str(text)
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def store_time(at: datetime) -> str:
    """How ``CURRENT_TIMESTAMP`` writes a time (microseconds kept when the source had them)."""
    return utc(at).replace(tzinfo=None).isoformat(" ")


def expiry_time(at: datetime) -> str:
    """How ``SqliteStore.put`` writes ``expires_at`` (sqlite3's datetime adapter)."""
    return utc(at).isoformat(" ")


def pack_vector(embedding: tuple[float, ...]) -> bytes:
    """sqlite-vec's ``serialize_float32``."""
    return struct.pack(f"<{len(embedding)}f", *embedding)


def unpack_vector(blob: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(blob) // 4}f", blob)


class SqliteMemory(MemoryStore):
    kind = "sqlite"

    def __init__(self, conn: sqlite3.Connection, path: str, tables: set[str]) -> None:
        self._conn, self.path, self._tables = conn, path, tables

    @classmethod
    def open(cls, url: str, *, write: bool = False) -> SqliteMemory:
        path = sqlite_path(url)
        if write:
            conn, _ = connect_for_write(path)
        else:
            if not os.path.isfile(path):
                raise StoreNotFoundError(f"no such SQLite file: {path}")
            conn, _ = connect_existing(path, write=False)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if write:
                _setup(conn, tables)
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            elif "store" not in tables:
                raise NotAStoreError(f"{path} holds no SqliteStore memory (no 'store' table)")
            return cls(conn, path, tables)
        except BaseException as exc:
            conn.close()
            raise translated(exc, path) from exc

    def layout(self) -> dict[str, Any]:
        version = (
            self._conn.execute("SELECT max(v) FROM store_migrations").fetchone()[0] if self._has_migrations else None
        )
        return {
            "store": "langgraph-checkpoint-sqlite SqliteStore",
            "migration": version,
            "current_migration": len(MIGRATIONS) - 1,
            "vectors": "store_vectors" in self._tables,
        }

    @property
    def _has_migrations(self) -> bool:
        return "store_migrations" in self._tables

    def close(self) -> None:
        self._conn.close()

    # -- reading -----------------------------------------------------------------

    def _has_ttl(self) -> bool:
        """Stores set up before migration 2 have no ``expires_at``/``ttl_minutes``."""
        names = {r[1] for r in self._conn.execute("PRAGMA table_info(store)")}
        return {"expires_at", "ttl_minutes"} <= names

    def _columns(self) -> str:
        ttl = "expires_at, ttl_minutes" if self._has_ttl() else "NULL, NULL"
        return f"prefix, key, value, created_at, updated_at, {ttl}"

    def _where(self, selection: MemorySelection) -> tuple[str, list[Any]]:
        if not selection.prefix:
            return "1", []
        prefix = _prefix(selection.prefix)
        if selection.exact:
            return "prefix = ?", [prefix]
        # ``substr`` compares exactly (no GLOB/LIKE metacharacters in labels to escape)
        return "(prefix = ? OR substr(prefix, 1, ?) = ?)", [prefix, len(prefix) + 1, prefix + SEPARATOR]

    def items(self, selection: MemorySelection = MemorySelection()) -> Iterator[MemoryItem]:
        where, params = self._where(selection)
        base = f"SELECT {self._columns()} FROM store WHERE {where}"
        sql, args = f"{base} ORDER BY prefix, key LIMIT {PAGE}", params
        while rows := self._read(sql, args):
            vectors = self._vectors(rows) if "store_vectors" in self._tables else {}
            for row in rows:
                yield _item(row, vectors.get((row[0], row[1]), ()))
            if len(rows) < PAGE:
                return
            sql = f"{base} AND (prefix, key) > (?, ?) ORDER BY prefix, key LIMIT {PAGE}"
            args = [*params, rows[-1][0], rows[-1][1]]

    def _read(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"cannot read {self.path}: {exc}") from exc

    def _vectors(self, rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[Vector, ...]]:
        first, last = (rows[0][0], rows[0][1]), (rows[-1][0], rows[-1][1])
        found: dict[tuple[str, str], list[Vector]] = {}
        sql = (
            "SELECT prefix, key, field_name, embedding FROM store_vectors "
            "WHERE (prefix, key) >= (?, ?) AND (prefix, key) <= (?, ?) ORDER BY prefix, key, field_name"
        )
        for prefix, key, field_name, blob in self._read(sql, [*first, *last]):
            if blob is not None:
                found.setdefault((prefix, key), []).append(Vector(field_name, unpack_vector(blob)))
        return {k: tuple(v) for k, v in found.items()}

    def namespaces(self, selection: MemorySelection = MemorySelection()) -> Iterator[NamespaceSummary]:
        where, params = self._where(selection)
        ttl = "count(expires_at)" if self._has_ttl() else "0"
        # bytes as ``item.size`` counts them: the value, and the vectors of the namespace's items (not
        # orphans: SqliteStore.delete leaves those, and they are no item's)
        vectors = (
            " + coalesce((SELECT sum(length(v.embedding)) FROM store_vectors v WHERE v.prefix = store.prefix "
            "AND EXISTS (SELECT 1 FROM store s WHERE s.prefix = v.prefix AND s.key = v.key)), 0)"
            if "store_vectors" in self._tables
            else ""
        )
        sql = (
            f"SELECT prefix, count(*), sum(length(CAST(value AS BLOB))){vectors}, min(updated_at), max(updated_at), "
            f"{ttl} FROM store WHERE {where} GROUP BY prefix ORDER BY prefix"
        )
        for prefix, count, nbytes, oldest, newest, expiring in self._read(sql, params):
            yield NamespaceSummary(
                tuple(prefix.split(SEPARATOR)), count, nbytes or 0, parse_time(oldest), parse_time(newest), expiring
            )

    def index(self) -> VectorIndex | None:
        if "store_vectors" not in self._tables:
            return None
        row = self._conn.execute(
            "SELECT length(embedding) FROM store_vectors WHERE embedding IS NOT NULL LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        fields = tuple(r[0] for r in self._conn.execute("SELECT DISTINCT field_name FROM store_vectors ORDER BY 1"))
        return VectorIndex(dims=row[0] // 4, distance=None, fields=fields)

    def get_many(self, addresses: Iterable[Address]) -> dict[Address, MemoryItem]:
        found: dict[Address, MemoryItem] = {}
        keys = [(_prefix(ns), key) for ns, key in addresses]
        sql = f"SELECT {self._columns()} FROM store WHERE prefix = ? AND key = ?"
        for prefix, key in keys:
            row = self._conn.execute(sql, (prefix, key)).fetchone()
            if row is not None:
                item = _item(
                    row, self._vectors([row]).get((prefix, key), ()) if "store_vectors" in self._tables else ()
                )
                found[item.address] = item
        return found

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """``<file>.ckpt-memory-<name>.lock`` beside the database (as the checkpoint store's)."""
        with file_lock(f"{self.path}.ckpt-memory-{name}.lock", f"another ckpt memory {name} is running on {self.path}"):
            yield

    def findings(self) -> list[str]:
        found = []
        migration = self.layout()["migration"]
        if migration is None or migration < len(MIGRATIONS) - 1:
            found.append(
                f"memory layout at migration {migration}: SqliteStore.setup() (or any ckpt memory write) adds the rest"
            )
        if "store_vectors" in self._tables:
            orphans = self._conn.execute(
                "SELECT count(*) FROM store_vectors v WHERE NOT EXISTS "
                "(SELECT 1 FROM store s WHERE s.prefix = v.prefix AND s.key = v.key)"
            ).fetchone()[0]
            if orphans:
                found.append(f"{orphans} orphan vector(s): SqliteStore.delete leaves an item's vectors behind")
        if self._has_ttl():
            expired = self._conn.execute(
                # julianday: the adapter's text has microseconds and a zone, CURRENT_TIMESTAMP whole
                # seconds, so comparing the texts missed an item for up to a second after it expired
                "SELECT count(*) FROM store WHERE expires_at IS NOT NULL AND julianday(expires_at) < julianday('now')"
            ).fetchone()[0]
            if expired:
                found.append(
                    f"{expired} expired memory item(s) still stored, and SqliteStore returns them "
                    "(langgraph#8902): `ckpt memory prune --expired` removes them"
                )
        return found

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

    def write(self, items: Iterable[MemoryItem]) -> MemoryWriteReport:
        batch = list(items)
        report = MemoryWriteReport(items=len(batch))
        vectors = [(_prefix(i.namespace), i.key, v, i) for i in batch for v in i.vectors]
        if vectors and "store_vectors" not in self._tables:
            _setup_vectors(self._conn)
            self._tables.add("store_vectors")
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO store (prefix, key, value, created_at, updated_at, expires_at, ttl_minutes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [_row(i) for i in batch],
            )
            if "store_vectors" in self._tables:  # an item put again loses the vectors it no longer has
                conn.executemany(
                    "DELETE FROM store_vectors WHERE prefix = ? AND key = ?",
                    [(_prefix(i.namespace), i.key) for i in batch],
                )
            if vectors:
                conn.executemany(
                    "INSERT OR REPLACE INTO store_vectors (prefix, key, field_name, embedding, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (p, k, v.field, pack_vector(v.embedding), store_time(i.created_at), store_time(i.updated_at))
                        for p, k, v, i in vectors
                    ],
                )
        report.vectors = len(vectors)
        return report

    def delete(self, addresses: Iterable[Address]) -> int:
        keys = [(_prefix(ns), key) for ns, key in addresses]
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM store WHERE prefix = ? AND key = ?", keys)
            deleted = conn.total_changes - before
            if "store_vectors" in self._tables:  # the foreign key cascades only with PRAGMA foreign_keys
                conn.executemany("DELETE FROM store_vectors WHERE prefix = ? AND key = ?", keys)
        return deleted


_EPOCH = datetime.fromtimestamp(0, timezone.utc)


def _item(row: tuple[Any, ...], vectors: tuple[Vector, ...]) -> MemoryItem:
    prefix, key, value, created, updated, expires, ttl = row
    data = value if isinstance(value, bytes) else str(value).encode()
    try:
        created_at = parse_time(created) or _EPOCH
        updated_at = created_at if updated == created else parse_time(updated) or _EPOCH  # put sets both alike
        expires_at = parse_time(expires)
    except ValueError as exc:
        raise DataError(f"store row (prefix {prefix!r}, key {key!r}): a time that is not ISO 8601 ({exc})") from exc
    return MemoryItem(
        namespace=_namespace(prefix),
        key=key,
        value=data,
        created_at=created_at,
        updated_at=updated_at,
        expires_at=expires_at,
        ttl_minutes=ttl,
        vectors=vectors,
    )


@lru_cache(maxsize=4096)
def _namespace(prefix: str) -> tuple[str, ...]:
    """Items come grouped by namespace: one split per namespace, not per item (bounded)."""
    return tuple(prefix.split(SEPARATOR))


def _row(item: MemoryItem) -> tuple[Any, ...]:
    expires = None if item.expires_at is None else expiry_time(item.expires_at)
    return (
        _prefix(item.namespace),
        item.key,
        item.value,  # bytes, as orjson.dumps gives SqliteStore
        store_time(item.created_at),
        store_time(item.updated_at),
        expires,
        item.ttl_minutes,
    )


def _setup(conn: sqlite3.Connection, tables: set[str]) -> None:
    """What ``SqliteStore.setup()`` runs: the migrations not yet applied, each recorded."""
    conn.executescript("CREATE TABLE IF NOT EXISTS store_migrations (\n    v INTEGER PRIMARY KEY\n)")
    row = conn.execute("SELECT v FROM store_migrations ORDER BY v DESC LIMIT 1").fetchone()
    version = -1 if row is None else row[0]
    for v, sql in enumerate(MIGRATIONS[version + 1 :], start=version + 1):
        conn.executescript(sql)
        conn.execute("INSERT INTO store_migrations (v) VALUES (?)", (v,))


def _setup_vectors(conn: sqlite3.Connection) -> None:
    """What ``setup()`` runs with an index configured (the table holds plain BLOBs: sqlite-vec is
    needed to search them, not to store them)."""
    conn.executescript("CREATE TABLE IF NOT EXISTS vector_migrations (\n    v INTEGER PRIMARY KEY\n)")
    row = conn.execute("SELECT v FROM vector_migrations ORDER BY v DESC LIMIT 1").fetchone()
    version = -1 if row is None else row[0]
    for v, sql in enumerate(VECTOR_MIGRATIONS[version + 1 :], start=version + 1):
        conn.executescript(sql)
        conn.execute("INSERT INTO vector_migrations (v) VALUES (?)", (v,))
