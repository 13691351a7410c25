"""Long-term memory in PostgreSQL, in the layout of ``PostgresStore`` (langgraph-checkpoint-postgres 3.2.0).

Tables (the store's ``setup()``; DDL verbatim below, so the package is not needed at run time):
``store`` keyed by ``(prefix, key)``, ``prefix`` the namespace joined by ``.``; ``value`` is
**jsonb** (keys reordered, duplicates dropped: ``value::text`` is what ckpt reads); the times are
``timestamptz`` (µs); ``ttl_minutes`` is an **INT** (migration 2). ``put(ttl=0.5)`` binds the
float and PostgreSQL's assignment cast rounds it half-to-even (0.5 → 0, 0.01 → 0, 2.5 → 2) while
``expires_at`` gets the exact ``NOW() + 30 seconds``. ckpt writes a float TTL the same way and
says so: each rounded TTL is a ``problems`` entry of the batch's report, and ``--verify`` shows the
item's ``ttl_minutes`` as different (nothing maps the source's TTL to the stored one, so the loss
cannot pass unseen). With an index, ``store_vectors`` holds ``vector(dims)`` rows (pgvector); the
dimensions are in the column's type and the distance only in the ANN index's operator class.

Connections, URLs and ``?schema=`` are the checkpoint driver's (:mod:`.connect`); tables are
found through ``search_path``, as the official store (unqualified names) finds them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from ckpt.backends.core.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    DataError,
    LockedError,
    NotAStoreError,
    StoreNotFoundError,
)
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
from ckpt.backends.core.urls import redact
from ckpt.backends.postgres.connect import Handle, connect
from ckpt.backends.postgres.memory_layout import (
    MIGRATIONS,
    ROUNDED_TTL,
    VECTOR_MIGRATIONS,
    parse_vector,
    stored_ttl,
    vector_text,
)

PAGE = 1000
_SETUP_WAIT = 300.0
_OPS = {"cosine_ops": "cosine", "l2_ops": "l2", "ip_ops": "inner_product"}
_DIMS = re.compile(r'^(?:(?:"[^"]+"|\w+)\.)?(?:vector|halfvec)\((\d+)\)$')
"""``format_type`` of the embedding column: schema-qualified when pgvector's schema is not on ckpt's
``search_path`` (ckpt's is the store's schema alone; the extension is usually in ``public``)."""


def _prefix(namespace: tuple[str, ...]) -> str:
    return SEPARATOR.join(namespace)


def _like(prefix: str) -> str:
    """``prefix.%`` with LIKE's metacharacters escaped (labels such as ``a_b%c`` are legal)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + SEPARATOR + "%"


_BATCH = "ckpt_memory_batch"
_BATCH_TABLE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_BATCH} (prefix text, key text, value text, created_at timestamptz, "
    "updated_at timestamptz, expires_at timestamptz, ttl_minutes float8) ON COMMIT DELETE ROWS"
)
"""Where a batch is copied before its upsert (this session's, emptied at each commit)."""


def _copy_rows(cur: psycopg.Cursor[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(
        f"COPY {table} (prefix, key, value, created_at, updated_at, expires_at, ttl_minutes) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def _insert_vectors(cur: psycopg.Cursor[Any], vectors: list[tuple[str, str, Vector, MemoryItem]]) -> None:
    cur.executemany(
        "INSERT INTO store_vectors (prefix, key, field_name, embedding, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [(p, k, v.field, vector_text(v.embedding), i.created_at, i.updated_at) for p, k, v, i in vectors],
    )


class PostgresMemory(MemoryStore):
    kind = "postgres"

    def __init__(self, handle: Handle, url: str, schema: str, *, writable: bool) -> None:
        self._handle, self._conn, self.url, self.schema, self.writable = handle, handle.conn, url, schema, writable
        self._tables: set[str] = set()
        self._ttl = False
        self._fresh: bool | None = None
        """The store table was empty at the first write: batches are COPYed straight in (no upsert)
        until a row is already there (a rerun, or an address repeated in a file)."""

    @classmethod
    def open(cls, url: str, *, write: bool = False) -> PostgresMemory:
        schema, handle = connect(url, read_only=not write)
        try:
            store = cls(handle, url, schema, writable=write)
            store._detect()
            return store
        except psycopg.Error as exc:
            handle.close()
            raise _translated(exc, url) from exc
        except BaseException:
            handle.close()
            raise

    def _detect(self) -> None:
        """Read-only opens change nothing (the connection is ``default_transaction_read_only``);
        write opens run the migrations ``setup()`` would."""
        if self._conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone() is None:
            raise StoreNotFoundError(f"schema {self.schema!r} does not exist in {redact(self.url)}")
        self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        self._refresh()
        if "store" in self._tables:  # checked before any migration touches another app's 'store' table
            if not {"prefix", "key", "value", "created_at", "updated_at"} <= self._columns("store"):
                raise NotAStoreError(f"schema {self.schema!r} has a 'store' table that is not PostgresStore's")
        elif not self.writable:
            raise NotAStoreError(f"schema {self.schema!r} holds no PostgresStore memory (no 'store' table)")
        if self.writable:
            self._migrate("store_migrations", MIGRATIONS)
        self._ttl = {"expires_at", "ttl_minutes"} <= self._columns("store")

    def _refresh(self) -> None:
        rows = self._conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (self.schema,)
        ).fetchall()
        self._tables = {r[0] for r in rows}

    def _columns(self, table: str) -> set[str]:
        rows = self._conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (self.schema, table),
        ).fetchall()
        return {r[0] for r in rows}

    def _version(self, table: str) -> int | None:
        if table not in self._tables:
            return None
        row = self._conn.execute(sql.SQL("SELECT max(v) FROM {}").format(sql.Identifier(table))).fetchone()
        return None if row is None else row[0]

    def _migrate(self, table: str, migrations: list[str], params: dict[str, Any] | None = None) -> None:
        """``setup()``'s loop: each migration after the last one recorded in ``table``, recorded, in
        autocommit (``CREATE INDEX CONCURRENTLY`` refuses a transaction). Under a session advisory
        lock, polled, as the checkpoint driver's setup: N first runs at once must not race on
        ``CREATE TABLE IF NOT EXISTS``, and a waiting statement would stall ``CONCURRENTLY``."""
        if self._version(table) == len(migrations) - 1:
            return
        key = f"ckpt:{self.schema}:memory-setup"
        deadline = time.monotonic() + _SETUP_WAIT
        while not _scalar(self._conn, "SELECT pg_try_advisory_lock(hashtext(%s))", key):
            if time.monotonic() > deadline:
                raise LockedError(f"another run has been setting up schema {self.schema!r} for {_SETUP_WAIT:.0f} s")
            time.sleep(0.05)
        try:
            self._conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (\n    v INTEGER PRIMARY KEY\n)").format(sql.Identifier(table))
            )
            self._refresh()
            done = self._version(table)
            for v in range(0 if done is None else done + 1, len(migrations)):
                self._conn.execute(migrations[v] if params is None else migrations[v] % params)
                self._conn.execute(sql.SQL("INSERT INTO {} (v) VALUES (%s)").format(sql.Identifier(table)), (v,))
        finally:
            self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        self._refresh()

    def _setup_vectors(self, dims: int, consequence: str) -> None:
        """``setup()`` with an index of ``dims`` (vector migrations 0 and 1); ``DataError`` where
        the server has no pgvector: vectors are carried as stored or not at all."""
        if "store_vectors" in self._tables:
            return
        if not _scalar(self._conn, "SELECT count(*) FROM pg_available_extensions WHERE name = %s", "vector"):
            raise DataError(
                f"the source holds vectors ({dims} dims) but {redact(self.url)} has no pgvector extension, which "
                f"PostgresStore's store_vectors table needs; {consequence} (install pgvector, or copy to another "
                "store kind)"
            )
        try:
            self._migrate(
                "vector_migrations", VECTOR_MIGRATIONS, {"vector_type": self._vector_type(), "dims": int(dims)}
            )
        except psycopg.Error as exc:
            raise _translated(exc, self.url, consequence) from exc

    def _vector_type(self) -> str:
        """pgvector's ``vector`` type, qualified by the schema the extension is (or migration 0 puts it)
        in: ckpt's ``search_path`` is the store's schema alone, so an extension created in ``public``
        (by the app's ``setup()`` under its own search_path, or by a DBA) has a type ckpt's unqualified
        ``vector(dims)`` would not find. The table is the same as the official store's."""
        found = _scalar(
            self._conn,
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = %s",
            "vector",
        )
        return sql.SQL("{}.vector").format(sql.Identifier(found or self.schema)).as_string(self._conn)

    def begin_copy(
        self, source_kind: str, source_layout: dict[str, Any], source_url: str, index: VectorIndex | None
    ) -> None:
        """Before the first batch: a source with vectors needs pgvector here (else nothing is written)."""
        if index is not None and index.fields:
            self._setup_vectors(index.dims, "nothing was written")

    def layout(self) -> dict[str, Any]:
        index = self.index()
        return {
            "store": "langgraph-checkpoint-postgres PostgresStore",
            "schema": self.schema,
            "migration": self._version("store_migrations"),
            "current_migration": len(MIGRATIONS) - 1,
            "vectors": "store_vectors" in self._tables,
            "vector_migration": self._version("vector_migrations"),
            "index": None if index is None else index.as_json(),
        }

    def close(self) -> None:
        self._handle.close()

    def findings(self) -> list[str]:
        """For ``doctor``: an old migration, expired items still stored (reads return them unless
        ``omit_expired``), and TTLs the INT column turned to 0 (a refreshing read expires them)."""
        found = []
        migration = self._version("store_migrations")
        if migration is None or migration < len(MIGRATIONS) - 1:
            found.append(
                f"memory layout at migration {migration}: PostgresStore.setup() (or a ckpt memory write) adds the rest"
            )
        if self._ttl:
            expired, zero = _scalar(
                self._conn,
                "SELECT ARRAY[count(*) FILTER (WHERE expires_at < NOW()), count(*) FILTER (WHERE ttl_minutes = 0)] "
                "FROM store",
            )
            if expired:
                found.append(
                    f"{expired} expired memory item(s) still stored: `ckpt memory prune --expired` removes them"
                )
            if zero:
                found.append(
                    f"{zero} item(s) with ttl_minutes 0 (a TTL under 30 s, rounded by the INT column): "
                    "a refreshing read expires them at once"
                )
        return found

    # -- reading -----------------------------------------------------------------

    def _select(self) -> str:
        """One statement per page: the page's vectors come with it (as a JSON array of pairs)."""
        ttl = "s.expires_at, s.ttl_minutes" if self._ttl else "NULL::timestamptz, NULL::int"
        vectors = (
            "(SELECT json_agg(json_build_array(v.field_name, v.embedding::text) ORDER BY v.field_name) "
            "FROM store_vectors v WHERE v.prefix = s.prefix AND v.key = s.key AND v.embedding IS NOT NULL)"
            if "store_vectors" in self._tables
            else "NULL::json"
        )
        return f"SELECT s.prefix, s.key, s.value::text, s.created_at, s.updated_at, {ttl}, {vectors} FROM store s"

    def _where(self, selection: MemorySelection) -> tuple[str, list[Any]]:
        if not selection.prefix:
            return "TRUE", []
        prefix = _prefix(selection.prefix)
        if selection.exact:
            return "s.prefix = %s", [prefix]
        return "(s.prefix = %s OR s.prefix LIKE %s)", [prefix, _like(prefix)]

    def _read(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise _translated(exc, self.url) from exc

    def items(self, selection: MemorySelection = MemorySelection()) -> Iterator[MemoryItem]:
        """Keyset pages in the primary key's order, each page its own statement: no transaction is
        held between pages, so prune may delete on this connection while it iterates."""
        where, params = self._where(selection)
        base = f"{self._select()} WHERE {where}"
        query, args = f"{base} ORDER BY s.prefix, s.key LIMIT {PAGE}", params
        while rows := self._read(query, args):
            yield from (_item(row) for row in rows)
            if len(rows) < PAGE:
                return
            query = f"{base} AND (s.prefix, s.key) > (%s, %s) ORDER BY s.prefix, s.key LIMIT {PAGE}"
            args = [*params, rows[-1][0], rows[-1][1]]

    def namespaces(self, selection: MemorySelection = MemorySelection()) -> Iterator[NamespaceSummary]:
        """One server-side ``GROUP BY prefix``; bytes as ``item.size`` counts them (the JSON text and
        4 bytes per vector component)."""
        where, params = self._where(selection)
        ttl = "count(s.expires_at)" if self._ttl else "0"
        index = self.index()
        vectors = (
            f"+ (SELECT count(embedding) FROM store_vectors v WHERE v.prefix = s.prefix) * {4 * index.dims}"
            if index is not None
            else ""
        )
        query = (
            f"SELECT s.prefix, count(*), sum(octet_length(s.value::text)) {vectors}, min(s.updated_at), "
            f"max(s.updated_at), {ttl} FROM store s WHERE {where} GROUP BY s.prefix ORDER BY s.prefix"
        )
        for prefix, count, nbytes, oldest, newest, expiring in self._read(query, params):
            first, last = (None if at is None else utc(at) for at in (oldest, newest))
            yield NamespaceSummary(
                tuple(prefix.split(SEPARATOR)), int(count), int(nbytes or 0), first, last, int(expiring)
            )

    def index(self) -> VectorIndex | None:
        """From the catalog: dims from ``store_vectors.embedding``'s type, the distance from the ANN
        index's operator class (``None`` for a flat store), fields from the rows."""
        if "store_vectors" not in self._tables:
            return None
        row = self._conn.execute(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = 'store_vectors'::regclass AND a.attname = 'embedding'"
        ).fetchone()
        match = _DIMS.match(row[0]) if row else None
        if match is None:
            raise NotAStoreError(f"store_vectors.embedding in schema {self.schema!r} is not a pgvector vector")
        found = self._conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'store_vectors' "
            "AND indexname = 'store_vectors_embedding_idx'",
            (self.schema,),
        ).fetchone()
        distance = next((name for ops, name in _OPS.items() if found and ops in found[0]), None)
        fields = tuple(r[0] for r in self._conn.execute("SELECT DISTINCT field_name FROM store_vectors ORDER BY 1"))
        return VectorIndex(dims=int(match.group(1)), distance=distance, fields=fields)

    def get_many(self, addresses: Iterable[Address]) -> dict[Address, MemoryItem]:
        """One query for the batch (an ``unnest`` of the addresses joined on the primary key)."""
        keys = sorted({(_prefix(ns), key) for ns, key in addresses})
        if not keys:
            return {}
        query = f"{self._select()} JOIN unnest(%s::text[], %s::text[]) AS k(p, k) ON s.prefix = k.p AND s.key = k.k"
        rows = self._read(query, [[p for p, _ in keys], [k for _, k in keys]])
        return {item.address: item for item in map(_item, rows)}

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """A session advisory lock keyed by schema and name, taken without waiting (as the
        checkpoint store's, under its own ``memory-`` name)."""
        key = f"ckpt:{self.schema}:memory-{name}"
        row = self._conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        if not row or not row[0]:
            raise LockedError(
                f"another ckpt memory {name} is running on schema {self.schema!r} (advisory lock {key!r})"
            )
        try:
            yield
        finally:
            self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    # -- writing -----------------------------------------------------------------

    def stored_form(self, item: MemoryItem) -> MemoryItem:
        """The INT column's ``ttl_minutes``; everything else is kept (times to the microsecond)."""
        if item.ttl_minutes is None or stored_ttl(item.ttl_minutes) == item.ttl_minutes:
            return item
        return replace(item, ttl_minutes=float(stored_ttl(item.ttl_minutes)))

    def write(self, items: Iterable[MemoryItem]) -> MemoryWriteReport:
        """One transaction per batch. ``put``'s upsert, except that the item's own times are
        written (``put`` keeps ``created_at`` on overwrite and stamps ``CURRENT_TIMESTAMP``: a copy
        keeps the source's). Vectors replace the item's old ones (``put`` leaves rows of fields the
        new value lacks; a copy must hold exactly the source's)."""
        batch = list({i.address: i for i in items}.values())  # one row per address (a file may repeat one)
        report = MemoryWriteReport(items=len(batch))
        rows = []
        for item in batch:
            ttl = None if item.ttl_minutes is None else stored_ttl(item.ttl_minutes)
            if ttl is not None and ttl != item.ttl_minutes and ROUNDED_TTL not in report.problems:
                report.problems.append(ROUNDED_TTL)
            rows.append(
                (_prefix(item.namespace), item.key, item.value.decode(), item.created_at, item.updated_at)
                + (item.expires_at, ttl)  # rounded as the INT column's own cast rounds a float
            )
        vectors = [(_prefix(i.namespace), i.key, v, i) for i in batch for v in i.vectors]
        if vectors and "store_vectors" not in self._tables:
            self._setup_vectors(len(vectors[0][2].embedding), "nothing of this batch was written")
        try:  # a write open ran every migration: the TTL columns are there
            if self._fresh is None:
                self._fresh = self._conn.execute("SELECT NOT EXISTS (SELECT 1 FROM store)").fetchone()[0]  # type: ignore[index]
            if self._fresh:
                try:
                    with self._conn.transaction(), self._conn.cursor() as cur:
                        _copy_rows(cur, "store", rows)
                        _insert_vectors(cur, vectors)
                    report.vectors = len(vectors)
                    return report
                except psycopg.errors.UniqueViolation:
                    self._fresh = False  # an address written before (a repeat in a file): upserts from now on
            with self._conn.transaction(), self._conn.cursor() as cur:
                # COPY into a session table, then one upsert: a statement per row (executemany)
                # or arrays as parameters (escaped value by value) cost most of a migrate's time.
                cur.execute(_BATCH_TABLE)
                _copy_rows(cur, _BATCH, rows)
                cur.execute(
                    "INSERT INTO store (prefix, key, value, created_at, updated_at, expires_at, ttl_minutes) "
                    f"SELECT prefix, key, value::jsonb, created_at, updated_at, expires_at, ttl_minutes FROM {_BATCH} "
                    "ON CONFLICT (prefix, key) DO UPDATE SET "
                    "value = EXCLUDED.value, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, "
                    "expires_at = EXCLUDED.expires_at, ttl_minutes = EXCLUDED.ttl_minutes"
                )
                if "store_vectors" in self._tables:
                    cur.execute(
                        "DELETE FROM store_vectors v USING unnest(%s::text[], %s::text[]) AS k(p, k) "
                        "WHERE v.prefix = k.p AND v.key = k.k",
                        [[r[0] for r in rows], [r[1] for r in rows]],
                    )
                _insert_vectors(cur, vectors)
        except psycopg.Error as exc:
            first = f" (batch from {batch[0].where()})" if batch else ""
            raise _translated(exc, self.url, f"nothing of this batch was written{first}") from exc
        report.vectors = len(vectors)
        return report

    def delete(self, addresses: Iterable[Address]) -> int:
        """One transaction; the foreign key's ``ON DELETE CASCADE`` takes the vectors."""
        keys = sorted({(_prefix(ns), key) for ns, key in addresses})
        if not keys:
            return 0
        try:
            with self._conn.transaction():
                cur = self._conn.execute(
                    "DELETE FROM store s USING unnest(%s::text[], %s::text[]) AS k(p, k) "
                    "WHERE s.prefix = k.p AND s.key = k.k",
                    [[p for p, _ in keys], [k for _, k in keys]],
                )
                return cur.rowcount
        except psycopg.Error as exc:
            raise _translated(exc, self.url, "nothing was deleted") from exc


def _item(row: tuple[Any, ...]) -> MemoryItem:
    prefix, key, value, created, updated, expires, ttl, vectors = row
    return MemoryItem(
        namespace=tuple(prefix.split(SEPARATOR)),
        key=key,
        value=value.encode(),
        created_at=utc(created),
        updated_at=utc(updated),
        expires_at=None if expires is None else utc(expires),
        ttl_minutes=None if ttl is None else float(ttl),
        vectors=tuple(Vector(name, parse_vector(text)) for name, text in vectors or ()),
    )


def _scalar(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _translated(exc: psycopg.Error, url: str, consequence: str = "") -> Exception:
    """A psycopg error as ckpt's: privileges, a lost server, or the data (the first line only)."""
    reason = redact((str(exc).strip().splitlines() or [type(exc).__name__])[0])
    tail = f"; {consequence}" if consequence else ""
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return AccessDeniedError(f"{redact(url)}: {reason}{tail}")
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.QueryCanceled):
        return BackendUnavailableError(f"{redact(url)}: {reason}{tail}")
    return DataError(f"{redact(url)}: {reason}{tail}")
