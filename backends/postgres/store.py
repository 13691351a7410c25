"""PostgreSQL driver: the layout of langgraph-checkpoint-postgres (spec §4).

Reads every layout of the full saver (inline primitives + shared versioned blobs, the older
all-blob layouts, ``empty`` blob rows, writes with and without ``task_path``), assembling each
checkpoint the way ``SELECT_SQL`` does; refuses the shallow saver's tables. Writes exactly
the 3.2.0 layout: an empty target gets the saver's migrations 0..9 (so ``setup()`` is a
no-op), channel values are split inline/blob as ``put`` does, one blob row per (channel,
version). Everything goes through psycopg 3: keyset paging in one REPEATABLE READ snapshot for
reads, ``COPY`` into staging tables plus ``INSERT … ON CONFLICT DO NOTHING`` for writes, one
transaction per batch.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ckpt.backends.core.base import (
    Capability,
    CheckpointHeader,
    CheckpointKey,
    CheckpointRecord,
    CopiedRows,
    Selection,
    Store,
    ThreadSummary,
    WriteReport,
)
from ckpt.backends.core.errors import (
    AccessDeniedError,
    LockedError,
    NotAStoreError,
    StoreNotFoundError,
)
from ckpt.backends.core.urls import redact
from ckpt.backends.postgres import SCHEMES
from ckpt.backends.postgres import guard as pg_guard
from ckpt.backends.postgres import ranges as pg_ranges
from ckpt.backends.postgres import reads as pg_reads
from ckpt.backends.postgres import rowcopy as pg_rowcopy
from ckpt.backends.postgres import schema as pg_schema
from ckpt.backends.postgres.connect import Handle as _Handle
from ckpt.backends.postgres.connect import connect as _connect
from ckpt.backends.postgres.rows import residual as _residual
from ckpt.backends.postgres.rows import rows_for as _rows_for
from ckpt.backends.postgres.rows import version_text as _version_text
from ckpt.backends.postgres.rows import where as _where
from ckpt.backends.postgres.writes import CopyMode, insert_blobs, insert_rows

if TYPE_CHECKING:
    from ckpt.backends.core.policy import Policy, ServerPrune
    from ckpt.backends.core.upgrade import LayoutUpgrade

_SETUP_WAIT = 300.0
"""Seconds a first write open waits for another run creating the same schema's tables."""
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_KEYS = "unnest(%s::text[], %s::text[], %s::text[]) AS k(t, n, i)"
_KEYS4 = "unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS k(t, n, c, v)"


def _current(layout: dict[str, Any]) -> bool:
    return layout.get("migration") == pg_schema.LATEST_VERSION and bool(layout.get("task_path"))


class PostgresStore(Store):
    """A PostgreSQL database written by PostgresSaver / AsyncPostgresSaver."""

    kind = "postgres"
    writes_wait_on_server = True
    schemes = SCHEMES
    capabilities = frozenset({Capability.WRITE, Capability.DELETE, Capability.PARENT_SENDS})

    def __init__(self, handle: _Handle, url: str, schema: str, *, writable: bool, setup: bool = True) -> None:
        self._handle = handle  # keeps the psycopg connection alive
        self._conn = handle.conn
        self.url = url
        self.schema = schema
        self.writable = writable
        self._setup = setup
        self._code_point_order: bool | None = None
        self._copy_mode = CopyMode()
        self._layout = self._detect()

    @classmethod
    def open(cls, url: str, *, write: bool = False, setup: bool = True) -> PostgresStore:
        schema, handle = _connect(url, read_only=not write)
        try:
            return cls(handle, url, schema, writable=write, setup=setup)
        except BaseException:
            handle.close()
            raise

    @classmethod
    def open_existing(cls, url: str) -> PostgresStore:
        """For prune and compact: the saver's tables must be there; no migration runs."""
        return cls.open(url, write=True, setup=False)

    @classmethod
    def from_connection(cls, conn: psycopg.Connection[Any], schema: str | None = None) -> PostgresStore:
        """A store on an open connection someone else owns (a ``PostgresSaver``'s), as
        ``open_existing``: the saver's tables must be there; no migration runs. ``conn`` must be in
        autocommit mode with tuple rows (the store's own transactions and ``row[0]``s); the store sets
        its ``search_path`` to ``schema`` (default: the connection's ``current_schema()``).
        ``close()`` closes ``conn``: a borrower does not call it."""
        if schema is None:
            row = conn.execute("SELECT current_schema()").fetchone()
            schema = str(row[0]) if row is not None and row[0] is not None else "public"
        info = conn.info
        url = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}?schema={schema}"  # for messages
        return cls(_Handle(conn), url, schema, writable=True, setup=False)

    # -- layout ------------------------------------------------------------------

    def _detect(self) -> dict[str, Any]:
        cur = self._conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,))
        if cur.fetchone() is None:
            raise StoreNotFoundError(f"schema {self.schema!r} does not exist in {redact(self.url)}")
        self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        columns = self._columns()
        if pg_schema.is_shallow(columns):
            raise NotAStoreError(
                f"schema {self.schema!r} holds ShallowPostgresSaver tables (no checkpoint_id column); "
                "ckpt reads and writes the full PostgresSaver layout only"
            )
        if "checkpoints" not in columns and not (self.writable and self._setup):
            raise NotAStoreError(f"schema {self.schema!r} has no LangGraph checkpoint tables")
        missing = [t for t in pg_schema.TABLES if t != "checkpoint_migrations" and t not in columns]
        if self.writable and not self._setup and missing:
            raise NotAStoreError(f"schema {self.schema!r} lacks the saver's table(s) {', '.join(missing)}")
        if self.writable:
            self._check_privileges(columns)
        if self.writable and self._setup:
            self._migrate(columns)
            columns = self._columns()
        migration = self._migration()
        return pg_schema.describe(columns, migration)

    def _check_privileges(self, columns: dict[str, set[str]]) -> None:
        """Refuse a write open up front when this role may not change the saver's tables."""
        needed = [
            (t, p)
            for t in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
            if t in columns
            for p in ("INSERT", "DELETE")
        ]
        if not needed:
            needed_schema = self._conn.execute("SELECT has_schema_privilege(%s, 'CREATE')", (self.schema,)).fetchone()
            if needed_schema and not needed_schema[0]:
                raise AccessDeniedError(
                    f"this role may not create tables in schema {self.schema!r} of {redact(self.url)}"
                )
            return
        for table, privilege in needed:
            row = self._conn.execute("SELECT has_table_privilege(%s, %s)", (table, privilege)).fetchone()
            if row and not row[0]:
                raise AccessDeniedError(
                    f"this role may not {privilege} on {self.schema}.{table} in {redact(self.url)}; nothing was changed"
                )

    def _columns(self) -> dict[str, set[str]]:
        rows = self._conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = ANY(%s)",
            (self.schema, list(pg_schema.TABLES)),
        ).fetchall()
        columns: dict[str, set[str]] = {}
        for table, column in rows:
            columns.setdefault(table, set()).add(column)
        return columns

    def _migration(self) -> int | None:
        try:
            row = self._conn.execute("SELECT max(v) FROM checkpoint_migrations").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return None if row is None else row[0]

    def _migrate(self, columns: dict[str, set[str]]) -> None:
        """What the saver's ``setup()`` does: run every migration not yet recorded.

        Runs under a session advisory lock on the schema, so N first runs at once (``migrate
        --jobs``, three cron jobs) do not race on ``CREATE TABLE IF NOT EXISTS`` (which fails with
        ``UniqueViolation`` on ``pg_type`` when two create one table at once): one creates, the
        others wait, then find every migration recorded. The lock is polled with
        ``pg_try_advisory_lock``, never waited on inside a statement: a waiting statement's snapshot
        would stall the holder's ``CREATE INDEX CONCURRENTLY`` (a deadlock)."""
        if self._migration() == len(pg_schema.MIGRATIONS) - 1:
            return  # the usual case: the schema is current, no lock needed
        key = f"ckpt:{self.schema}:setup"
        deadline = time.monotonic() + _SETUP_WAIT
        while True:
            row = self._conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
            if row and row[0]:
                break
            if time.monotonic() > deadline:
                raise LockedError(
                    f"another run has been creating the saver's tables in schema {self.schema!r} for over "
                    f"{_SETUP_WAIT:.0f} s (advisory lock {key!r}); nothing was written"
                )
            time.sleep(0.05)
        try:
            self._conn.execute(pg_schema.MIGRATIONS[0])
            done = self._migration()
            start = 0 if done is None else done + 1
            for version in range(start, len(pg_schema.MIGRATIONS)):
                self._conn.execute(pg_schema.MIGRATIONS[version])  # autocommit: CONCURRENTLY needs it
                self._conn.execute(
                    "INSERT INTO checkpoint_migrations (v) VALUES (%s) ON CONFLICT DO NOTHING", (version,)
                )
        finally:
            self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def layout(self) -> dict[str, Any]:
        return {**self._layout, "schema": self.schema}

    def layout_upgrade(self) -> LayoutUpgrade | None:
        from ckpt.backends.postgres.upgrade import layout_upgrade

        def migrate() -> None:
            self._migrate({})
            self._layout = self._detect()

        return layout_upgrade(self._migration(), migrate)

    def close(self) -> None:
        self._handle.close()

    # -- reading -----------------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[psycopg.Cursor[Any]]:
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield self._conn.cursor()  # already inside a snapshot (nested generator)
            return
        with self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if self._conn.info.server_version >= 130000:
                # Else a keyset page may come from the thread_id index plus an incremental sort,
                # which re-reads a long thread for every page of it; the primary key seeks.
                self._conn.execute("SET LOCAL enable_incremental_sort = off")
            yield self._conn.cursor()

    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        """In the primary-key index's order (the columns' collation): see :mod:`.reads`."""
        with self._snapshot() as cur:
            yield from pg_reads.records(cur, selection, bool(self._layout["task_path"]))

    def headers(self, selection: Selection = Selection()) -> Iterator[CheckpointHeader]:
        with self._snapshot() as cur:
            yield from pg_reads.headers(cur, selection)

    def get(self, key: CheckpointKey) -> CheckpointRecord | None:
        selection = Selection(thread_id=key.thread_id, checkpoint_ns=key.checkpoint_ns)
        where, params = _where(selection)
        with self._snapshot() as cur:
            cur.execute(
                f"{pg_reads.SELECT_CHECKPOINTS} WHERE {where} AND checkpoint_id = %s", [*params, key.checkpoint_id]
            )
            page = cur.fetchall()
            if not page:
                return None
            return next(pg_reads.page_records(pg_reads.fetch_page(cur, page, bool(self._layout["task_path"]))))

    @property
    def code_point_order(self) -> bool:
        """Whether reads come in code-point order (a ``C`` collation), so that a merge-join with
        another store's stream may compare keys in Python (:mod:`ckpt.backends.ops.pairing`)."""
        if self._code_point_order is None:
            self._code_point_order = pg_reads.code_point_order(self._conn)
        return self._code_point_order

    def thread_bounds(self, selection: Selection, parts: int) -> list[str]:
        """Bounds of ``parts`` thread ranges for ``migrate --jobs``, from a sample (:mod:`.ranges`)."""
        return pg_ranges.thread_bounds(self._conn, selection, parts)

    def latest(self, thread_id: str, checkpoint_ns: str = "") -> CheckpointHeader | None:
        row = self._conn.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s "
            "ORDER BY checkpoint_id DESC LIMIT 1",
            (thread_id, checkpoint_ns),
        ).fetchone()
        if row is None:
            return None
        selection = Selection(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
        return next((h for h in self.headers(selection) if h.key.checkpoint_id == row[0]), None)

    def threads(self, selection: Selection = Selection(), *, details: bool = True) -> Iterator[ThreadSummary]:
        """In the index's order; without ``details`` from the primary key alone (``ckpt list``)."""
        if selection.since is not None or selection.until is not None:
            yield from super().threads(selection)
            return
        check = _residual(selection)
        with self._snapshot() as cur:
            for row in pg_reads.thread_rows(cur, selection, details):
                if check.matches_thread(row[0]):
                    size = None if row[5] is None else int(row[5])
                    yield ThreadSummary(row[0], row[1], int(row[2]), row[3], row[4], size)

    def count(self, selection: Selection = Selection()) -> int | None:
        where, params = _where(selection)
        if selection.thread_glob is not None:  # LIKE is a superset of the glob: count per thread, then fnmatch
            rows = self._conn.execute(f"SELECT thread_id, count(*) FROM checkpoints WHERE {where} GROUP BY 1", params)
            return sum(int(n) for thread_id, n in rows if selection.matches_thread(thread_id))
        row = self._conn.execute(f"SELECT count(*) FROM checkpoints WHERE {where}", params).fetchone()
        return int(row[0]) if row else 0

    # -- writing -----------------------------------------------------------------

    def server_prune(self, policy: Policy, now: float, jobs: int | None = None) -> ServerPrune | None:
        """The retention rules evaluated in SQL, batch by batch (:mod:`ckpt.backends.postgres.prune`)."""
        from ckpt.backends.postgres.prune.jobs import in_server

        return in_server(self, policy, now, jobs)

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        return self.prepared_write(list(records))()

    def prepared_write(self, records: list[CheckpointRecord]) -> Callable[[], WriteReport]:
        rows = _rows_for(records)  # the split into the saver's rows, before anything is sent
        return lambda: self._insert(*rows)

    def _insert(
        self, ckpt_rows: list[tuple[Any, ...]], blob_rows: list[tuple[Any, ...]], write_rows: list[tuple[Any, ...]]
    ) -> WriteReport:
        report = WriteReport()
        with self._conn.transaction():
            insert_blobs(self._conn, blob_rows, ckpt_rows[0][0] if ckpt_rows else None, self._copy_mode)
            report.checkpoints_written = insert_rows(self._conn, "checkpoints", ckpt_rows, self._copy_mode)
            report.writes_written = insert_rows(self._conn, "checkpoint_writes", write_rows, self._copy_mode)
        report.checkpoints_skipped = len(ckpt_rows) - report.checkpoints_written
        report.writes_skipped = len(write_rows) - report.writes_written
        return report

    def rows_from(self, source: Store, selection: Selection, batch_size: int) -> Iterator[CopiedRows] | None:
        """Another PostgreSQL store in the current layout, as rows (:mod:`.rowcopy`)."""
        if not (isinstance(source, PostgresStore) and self.writable and pg_rowcopy.exact_in_sql(selection)):
            return None
        if not (_current(source._layout) and _current(self._layout)):
            return None  # an older layout is read and written through records (its repairs)
        return self._rows_from(source, selection, batch_size)

    def _rows_from(self, source: PostgresStore, selection: Selection, batch_size: int) -> Iterator[CopiedRows]:
        with source._snapshot() as cur:
            pg_reads.jit_off(cur)  # compiling each chunk's plan took ~35 ms
            yield from pg_rowcopy.copy_rows(cur, self._conn, selection, batch_size)

    def compact(self, idle_before: str, *, dry_run: bool = False) -> dict[str, int]:
        orphan_writes = (
            "checkpoint_writes w WHERE w.checkpoint_id < %s AND NOT EXISTS (SELECT 1 FROM checkpoints c "
            "WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns "
            "AND c.checkpoint_id = w.checkpoint_id)"
        )
        idle = (
            "(SELECT thread_id, checkpoint_ns FROM checkpoints GROUP BY 1, 2 "
            'HAVING max(checkpoint_id COLLATE "C") < %s) idle'
        )
        orphan_blobs = (
            "b.thread_id = idle.thread_id AND b.checkpoint_ns = idle.checkpoint_ns AND (b.type = 'empty' "
            "OR NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id "
            "AND c.checkpoint_ns = b.checkpoint_ns AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version))"
        )
        if dry_run:
            writes = self._conn.execute(f"SELECT count(*) FROM {orphan_writes}", (idle_before,)).fetchone()
            blobs = self._conn.execute(
                f"SELECT count(*) FROM checkpoint_blobs b, {idle} WHERE {orphan_blobs}", (idle_before,)
            ).fetchone()
            return {"orphan_writes": int(writes[0]) if writes else 0, "orphan_blobs": int(blobs[0]) if blobs else 0}
        with self._conn.transaction():
            writes = self._conn.execute(
                f"DELETE FROM {orphan_writes} RETURNING w.thread_id, w.checkpoint_ns, w.checkpoint_id", (idle_before,)
            ).fetchall()
            blobs = self._conn.execute(
                f"DELETE FROM checkpoint_blobs b USING {idle} WHERE {orphan_blobs} "
                "RETURNING b.thread_id, b.checkpoint_ns, b.channel, b.version, b.type",
                (idle_before,),
            ).fetchall()
            # 'empty' rows hold no value (readers skip them), so a checkpoint naming one loses nothing
            pg_guard.check(self._conn, [b[:4] for b in blobs if b[4] != "empty"], writes)
            deleted_writes, deleted_blobs = len(writes), len(blobs)
        for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
            self._conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))  # autocommit: allowed
        return {"orphan_writes": deleted_writes, "orphan_blobs": deleted_blobs}

    def storage_bytes(self) -> int | None:
        row = self._conn.execute(
            "SELECT sum(pg_total_relation_size(format('%%I.%%I', %s::text, t)::regclass)) "
            "FROM unnest(ARRAY['checkpoints', 'checkpoint_blobs', 'checkpoint_writes']) t",
            (self.schema,),
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def reclaimable_bytes(self, idle_before: str | None = None) -> int | None:
        """What ``VACUUM (ANALYZE)`` gives back to the file system: not the dead rows (plain VACUUM
        keeps their space in the files, for reuse), only the empty pages at the end of each table
        and of its TOAST table, which it truncates when they are at least 1,000 pages or 1/16 of
        the table. Found by TID range scans from the end (``ctid >= (page, 0)``) that read only
        those pages; rows are counted as this snapshot sees them, the orphans ``compact`` would
        delete as staying (so the estimate is low by at most their pages). Indexes keep their
        size; the visibility and free-space maps VACUUM creates where missing are subtracted, so
        the figure can be negative. ``None`` when a table cannot be read so (PostgreSQL < 14, a
        TOAST table the role may not read)."""
        block = int(self._conn.execute("SELECT current_setting('block_size')").fetchone()[0])  # type: ignore[index]
        relations = self._conn.execute(
            "SELECT c.oid::regclass::text, t.oid::regclass::text FROM pg_class c "
            "LEFT JOIN pg_class t ON t.oid = c.reltoastrelid "
            "WHERE c.relnamespace = to_regnamespace(%s) "
            "AND c.relname IN ('checkpoints', 'checkpoint_blobs', 'checkpoint_writes')",
            (self.schema,),
        ).fetchall()
        freed = 0
        try:
            with self._conn.transaction():  # a savepoint inside a read transaction: a refusal ends here
                for heap, toast in relations:
                    for relation in (heap, toast):
                        if relation is not None:
                            freed += self._truncatable_pages(relation) * block - self._new_forks(relation, block)
        except psycopg.Error:
            return None
        return freed

    def _new_forks(self, relation: str, block: int) -> int:
        """Bytes of the maps VACUUM creates for a table that has pages but not yet the map: the
        visibility map (a page per ~32,000 pages) and the free-space map (three pages at least)."""
        row = self._conn.execute(
            "SELECT pg_relation_size(%s::regclass), pg_relation_size(%s::regclass, 'vm'), "
            "pg_relation_size(%s::regclass, 'fsm')",
            (relation, relation, relation),
        ).fetchone()
        if row is None or not row[0]:
            return 0
        pages = int(row[0]) // block
        visibility = 0 if row[1] else -(-pages // ((block - 24) * 4)) * block
        free_space = 0 if row[2] else 3 * block
        return int(visibility + free_space)

    def _truncatable_pages(self, relation: str) -> int:
        """Empty pages at the end of ``relation`` that VACUUM would cut off (its rule: at least
        1,000 of them or 1/16 of the table)."""
        name = sql.SQL(relation)  # a regclass rendering from pg_class: quoted as needed

        def live_from(page: int) -> bool:
            query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE ctid >= %s::tid)").format(name)
            row = self._conn.execute(query, (f"({page},0)",)).fetchone()
            return bool(row and row[0])

        row = self._conn.execute(
            "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", (relation,)
        ).fetchone()
        pages = int(row[0]) if row else 0
        least = min(1000, -(-pages // 16))
        if pages == 0 or live_from(pages - least):
            return 0
        low, high = 0, pages - least  # the first empty page of the tail is in (low, high]
        if live_from(0):
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if live_from(middle) else (low, middle)
        else:
            high = 0
        return pages - high

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """A session advisory lock keyed by schema and name, taken without waiting."""
        key = f"ckpt:{self.schema}:{name}"
        row = self._conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        if not row or not row[0]:
            raise LockedError(f"another ckpt {name} is running on schema {self.schema!r} (advisory lock {key!r})")
        try:
            yield
        finally:
            self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def delete_threads(self, thread_ids: Sequence[str]) -> int:  # issue #22: backends/postgres/residue.py
        from ckpt.backends.postgres import residue

        return residue.delete_threads(self._conn, thread_ids)

    def residue(self, thread_ids: Sequence[str] = (), keys: Sequence[CheckpointKey] = ()) -> dict[str, int]:
        from ckpt.backends.postgres import residue

        return residue.residue(self._conn, thread_ids, keys)

    def delete(self, keys: Iterable[CheckpointKey]) -> int:
        return self.delete_counted(keys)[0]

    def delete_counted(self, keys: Iterable[CheckpointKey]) -> tuple[int, int]:
        """:meth:`delete`, and how many blobs went with the checkpoints: ``(checkpoints, blobs)``."""
        rows = [(k.thread_id, k.checkpoint_ns, k.checkpoint_id) for k in keys]
        if not rows:
            return 0, 0
        arrays = [list(c) for c in zip(*rows)]
        match = "x.thread_id = k.t AND x.checkpoint_ns = k.n AND x.checkpoint_id = k.i"
        with self._conn.transaction():
            writes = self._conn.execute(
                f"DELETE FROM checkpoint_writes x USING {_KEYS} WHERE {match} "
                "RETURNING x.thread_id, x.checkpoint_ns, x.checkpoint_id",
                arrays,
            ).fetchall()
            freed = self._conn.execute(
                f"DELETE FROM checkpoints x USING {_KEYS} WHERE {match} "
                "RETURNING x.thread_id, x.checkpoint_ns, x.checkpoint -> 'channel_versions'",
                arrays,
            ).fetchall()
            blobs = self._drop_unreferenced_blobs(freed)
            pg_guard.check(self._conn, blobs, writes)
        return len(freed), len(blobs)

    def _drop_unreferenced_blobs(self, freed: Sequence[tuple[Any, ...]]) -> list[tuple[str, str, str, str]]:
        """Blobs of deleted checkpoints that no remaining checkpoint of the (thread, ns) references."""
        keys = {(t, n, c, _version_text(v)) for t, n, versions in freed for c, v in (versions or {}).items()}
        if not keys:
            return []
        arrays = [list(c) for c in zip(*sorted(keys))]
        rows = self._conn.execute(
            f"DELETE FROM checkpoint_blobs b USING {_KEYS4} "
            "WHERE b.thread_id = k.t AND b.checkpoint_ns = k.n AND b.channel = k.c AND b.version = k.v "
            "AND NOT EXISTS (SELECT 1 FROM checkpoints r WHERE r.thread_id = k.t AND r.checkpoint_ns = k.n "
            "AND r.checkpoint -> 'channel_versions' ->> k.c = k.v) "
            "RETURNING b.thread_id, b.checkpoint_ns, b.channel, b.version",
            arrays,
        ).fetchall()
        return [(str(t), str(n), str(c), str(v)) for t, n, c, v in rows]
