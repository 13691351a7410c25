"""Couchbase driver: langgraph-checkpointer-couchbase 2.0.x documents (spec §7) over the official SDK.

``couchbase://user:password@host/BUCKET?scope=S&collection=C&writes_collection=W`` (and
``couchbases://``). Reads page through the query service in key order (keyset paging), joining
each page's writes; writes insert documents with the KV ``insert_multi`` (an existing document is
left alone, so reruns are no-ops). ``?create_indexes=1`` creates the two indexes the saver's README
recommends. Unlike CouchbaseSaver, the store can delete checkpoints (and so prune and compact).

Verified here only against the official CouchbaseSaver's own documents through a recording
stand-in (no Couchbase Server can be run on this machine); the query paths run against a live
cluster only in the tests enabled by ``CKPT_TEST_COUCHBASE_URL``. See the README.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.exceptions import (
    CasMismatchException,
    CouchbaseException,
    DocumentExistsException,
    DocumentNotFoundException,
)
from couchbase.options import ClusterOptions, InsertOptions, QueryOptions, RemoveOptions, ReplaceOptions

from ckpt.backends.core.base import (
    Capability,
    CheckpointKey,
    CheckpointRecord,
    Selection,
    Store,
    WriteReport,
)
from ckpt.backends.core.errors import BackendUnavailableError, CorruptRecordError, LockedError
from ckpt.backends.core.locks import lock_ttl, new_token, renewed
from ckpt.backends.core.merge import attach
from ckpt.backends.core.urls import redact
from ckpt.backends.couchbase import SCHEMES
from ckpt.backends.couchbase.layout import checkpoint_document, checkpoint_id_of, record_from_documents, write_documents

_PAGE = 500
_TIMEOUT = timedelta(seconds=10)


class CouchbaseStore(Store):
    """A Couchbase bucket/scope written by CouchbaseSaver / AsyncCouchbaseSaver."""

    kind = "couchbase"
    writes_wait_on_server = True
    ranges_read_by_index = False  # every read pages through the whole collection (no range in its N1QL)
    schemes = SCHEMES
    capabilities = frozenset({Capability.WRITE, Capability.DELETE, Capability.INLINE_SENDS})

    def __init__(self, cluster: Any, bucket: str, scope: str, collection: str, writes: str, url: str = "") -> None:
        self._cluster = cluster
        self.url = url
        self._path = f"`{bucket}`.`{scope}`"
        scope_obj = cluster.bucket(bucket).scope(scope)
        self._names = (collection, writes)
        self._checkpoints = scope_obj.collection(collection)
        self._writes = scope_obj.collection(writes)
        self.problems: list[str] = []

    @classmethod
    def open(cls, url: str, *, write: bool = False) -> CouchbaseStore:
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        bucket = parts.path.strip("/")
        if not bucket:
            raise BackendUnavailableError(f"{redact(url)} names no bucket (couchbase://host/BUCKET)")
        host = parts.hostname or "localhost"
        conn = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        try:
            auth = PasswordAuthenticator(unquote(parts.username or ""), unquote(parts.password or ""))
            cluster = Cluster(conn, ClusterOptions(auth))
            cluster.wait_until_ready(_TIMEOUT)
        except CouchbaseException as exc:
            raise BackendUnavailableError(f"cannot connect to {redact(url)}: {exc.__class__.__name__}") from None
        store = cls(
            cluster,
            bucket,
            options.get("scope", "_default"),
            options.get("collection", "checkpoints"),
            options.get("writes_collection", "checkpoint_writes"),
            url,
        )
        if options.get("create_indexes") in ("1", "true", "yes"):
            store.create_indexes()
        return store

    def create_indexes(self) -> None:
        """The indexes CouchbaseSaver's README recommends (the saver itself creates none)."""
        names = ("idx_checkpoints_thread", "idx_checkpoint_writes_thread")
        for name, collection in zip(names, self._names):
            self._query(
                f"CREATE INDEX {name} IF NOT EXISTS ON {self._path}.`{collection}` "
                "(thread_id, checkpoint_ns, checkpoint_id)"
            )

    def layout(self) -> dict[str, Any]:
        return {"saver": "langgraph-checkpointer-couchbase", "version": "2.0.x", "collections": list(self._names)}

    def close(self) -> None:
        self._cluster.close()

    def _query(self, statement: str, *params: Any) -> list[dict[str, Any]]:
        try:
            result = self._cluster.query(statement, QueryOptions(positional_parameters=list(params)))
            return list(result.rows())
        except CouchbaseException as exc:
            raise BackendUnavailableError(f"query failed on {redact(self.url)}: {exc.__class__.__name__}") from None

    # -- reading -----------------------------------------------------------------

    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        last: tuple[str, str, str] = ("", "", "")
        first = True
        while True:
            after = "" if first else " AND [thread_id, checkpoint_ns, checkpoint_id] > [$1, $2, $3]"
            page = self._query(
                f"SELECT c.* FROM {self._path}.`{self._names[0]}` c WHERE c.thread_id IS VALUED{after} "
                f"ORDER BY c.thread_id, c.checkpoint_ns, c.checkpoint_id LIMIT {_PAGE}",
                *([] if first else last),
            )
            if not page:
                return
            writes = self._query(
                f"SELECT w.* FROM {self._path}.`{self._names[1]}` w "
                "WHERE [w.thread_id, w.checkpoint_ns, w.checkpoint_id] >= [$1, $2, $3] "
                "AND [w.thread_id, w.checkpoint_ns, w.checkpoint_id] <= [$4, $5, $6] "
                "ORDER BY w.thread_id, w.checkpoint_ns, w.checkpoint_id",
                *_key(page[0]), *_key(page[-1]),
            )  # fmt: skip
            for doc, group in attach(page, writes, _key, _key):
                try:
                    record = record_from_documents(doc, group)
                except CorruptRecordError as exc:
                    self.problems.append(f"{exc}; skipped")
                    continue
                if selection.matches(record.key):
                    yield record
            first, last = False, _key(page[-1])

    def read_problems(self) -> list[str]:
        return list(self.problems)

    # -- writing -----------------------------------------------------------------

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        batch = list(records)
        report = WriteReport()
        checkpoints = dict(checkpoint_document(r) for r in batch)
        writes = dict(doc for r in batch for doc in write_documents(r))
        report.checkpoints_written, report.checkpoints_skipped = _insert(self._checkpoints, checkpoints)
        report.writes_written, report.writes_skipped = _insert(self._writes, writes)
        return report

    def delete(self, keys: Iterable[CheckpointKey]) -> int:
        deleted = 0
        for key in keys:
            rows = self._query(
                f"DELETE FROM {self._path}.`{self._names[1]}` w WHERE w.thread_id = $1 AND w.checkpoint_ns = $2 "
                "AND w.checkpoint_id = $3",
                key.thread_id, key.checkpoint_ns, key.checkpoint_id,
            )  # fmt: skip
            del rows
            try:
                self._checkpoints.remove(checkpoint_id_of(key))
                deleted += 1
            except CouchbaseException:
                pass
        return deleted

    def delete_threads(self, thread_ids: Sequence[str]) -> int:  # issue #22: backends/couchbase/residue.py
        from ckpt.backends.couchbase import residue

        return residue.delete_threads(self._query, self._path, self._names, thread_ids)

    def residue(self, thread_ids: Sequence[str] = (), keys: Sequence[CheckpointKey] = ()) -> dict[str, int]:
        from ckpt.backends.couchbase import residue

        return residue.residue(self._query, self._path, self._names, thread_ids, keys)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """A document ``ckpt_lock::<name>`` ``{token, expires_at}`` in the checkpoints collection
        (no ``thread_id``: no reader sees it), inserted with a server-side expiry of the TTL so it
        lapses after a killed holder; renewed by token every TTL/3 (a replace under its CAS) and
        removed by token (a remove under its CAS)."""
        key, token, ttl = f"ckpt_lock::{name}", new_token(), lock_ttl()
        expiry = timedelta(seconds=max(1, math.ceil(ttl)))  # the server counts whole seconds
        where = f"{redact(self.url) or self._path} (document {key!r})"

        def content() -> dict[str, Any]:
            return {"token": token, "expires_at": int((time.time() + ttl) * 1000)}

        try:
            self._checkpoints.insert(key, content(), InsertOptions(expiry=expiry))
        except DocumentExistsException:
            raise LockedError(f"another ckpt {name} is running on {where}") from None
        except CouchbaseException as exc:
            raise BackendUnavailableError(f"cannot lock {where}: {exc.__class__.__name__}") from None

        def renew() -> bool:
            cas = self._lock_cas(key, token)
            if cas is None:
                return False
            try:
                self._checkpoints.replace(key, content(), ReplaceOptions(cas=cas, expiry=expiry))
            except (CasMismatchException, DocumentNotFoundException):
                return False
            return True

        try:
            with renewed(renew, ttl, f"the {name} lock on {where}"):
                yield
        finally:
            with suppress(CouchbaseException):  # unreachable: the lock lapses after the TTL instead
                cas = self._lock_cas(key, token)
                if cas is not None:
                    self._checkpoints.remove(key, RemoveOptions(cas=cas))

    def _lock_cas(self, key: str, token: str) -> int | None:
        """The CAS of the lock document if it still holds ``token``."""
        try:
            result = self._checkpoints.get(key)
        except DocumentNotFoundException:
            return None
        document = result.content_as[dict]
        return int(result.cas) if isinstance(document, dict) and document.get("token") == token else None


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return (str(doc.get("thread_id")), str(doc.get("checkpoint_ns")), str(doc.get("checkpoint_id")))


def _insert(collection: Any, docs: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Insert documents that do not exist yet; returns (inserted, already there)."""
    if not docs:
        return 0, 0
    result = collection.insert_multi(docs, return_exceptions=True)
    errors = getattr(result, "exceptions", {}) or {}
    existing = sum(1 for e in errors.values() if isinstance(e, DocumentExistsException))
    failed = [k for k, e in errors.items() if not isinstance(e, DocumentExistsException)]
    if failed:
        raise BackendUnavailableError(f"Couchbase refused {len(failed)} document(s), first {failed[0]!r}")
    return len(docs) - existing, existing
