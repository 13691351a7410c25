"""Long-term memory in Redis, in the layout of ``RedisStore`` (langgraph-checkpoint-redis 0.5.2).

What RedisStore writes, and so ckpt (docs/memory-layouts.md §3): one JSON document per item at
``<store_prefix>:<ULID>`` — ``{"prefix", "key", "value", "created_at", "updated_at"}`` with the
namespace joined by ``.`` and escaped as redisvl's ``TokenEscaper`` does, the value as native JSON
and the times as integer microseconds (UTC); no TTL fields (RedisStore pops them): the TTL is the
key's own expiry. With an index configured, ``<vector_prefix>:<same ULID>`` holds one vector
document (``field_name``, ``embedding``, float-second times; JSON or a HASH with a float32 blob).
The search indexes are named after the prefixes (URL ``?store_prefix=…&vector_prefix=…``, default
``store``/``store_vectors``).

Keys are random ULIDs, so an item is found through the index, never derived: every read here uses
the index only for what it does exactly — loaded raw strings, sorted bytewise, and the ``key`` TAG
as a superset pre-filter — and compares namespaces and keys itself. RedisStore's own lookups go
through the ``prefix`` TEXT field (stemmed, case-folded, stopwords), which is why its ``get`` misses
nested namespaces and its ``put`` deletes other namespaces' items (§3, bugs 1-2); ckpt never does.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson
import redis

from ckpt.backends.core.errors import BackendUnavailableError, DataError, LockedError, NotAStoreError, UsageError
from ckpt.backends.core.iterate import batched
from ckpt.backends.core.locks import holder_of, lock_ttl, new_token, renewed
from ckpt.backends.core.memory import (
    Address,
    MemoryItem,
    MemorySelection,
    MemoryStore,
    MemoryWriteReport,
    NamespaceSummary,
    VectorIndex,
)
from ckpt.backends.core.urls import redact
from ckpt.backends.redis import is_cluster_url
from ckpt.backends.redis.memory_layout import (
    DISTANCES,
    EPOCH,
    PAGE,
    SIZES_SCRIPT,
    STORE_FIELDS,
    TAGS_PER_QUERY,
    escape,
    expiry_ms,
    float32_index,
    from_micros,
    micros,
    new_ulid,
    text_of,
    unescape,
    vector_of,
)
from ckpt.backends.redis.schema import missing_modules, tag_query
from ckpt.backends.redis.store import _DELETE_IF_HELD, _RENEW_IF_HELD


class RedisMemory(MemoryStore):
    kind = "redis"
    vectors_per_item = 1  # RedisStore writes every field's vector under one key: the last one wins

    def stored_form(self, item: MemoryItem) -> MemoryItem:
        """RedisStore keeps a TTL only as the key's expiry (``PEXPIREAT``: to the millisecond):
        ``expires_at`` is carried, ``ttl_minutes`` is not; times are integer microseconds."""
        expires = item.expires_at
        if expires is not None:
            expires = EPOCH + timedelta(milliseconds=expiry_ms(expires))
        return replace(item, ttl_minutes=None, expires_at=expires)

    def __init__(self, client: redis.Redis, url: str, store_prefix: str, vector_prefix: str, write: bool) -> None:
        self._r: Any = client
        self.url, self.sp, self.vp, self.writable = url, store_prefix, vector_prefix, write
        self._index_wanted: VectorIndex | None = None
        self._storage: tuple[str | None, bool] | None = None

    def _vectors(self) -> str | None:
        """``JSON``/``HASH``: how the vector index stores vectors (``None``: no vector index); cached."""
        if self._storage is None:
            info = self._info(self.vp) if self.vp in self._indexes() else None
            self._storage = (None, False) if info is None else (str(info.get("key_type", "JSON")), float32_index(info))
        return self._storage[0]

    @classmethod
    def open(cls, url: str, *, write: bool = False) -> RedisMemory:
        if is_cluster_url(url):  # RedisStore's search-driven reads need a coordinator (docs/research-23.md)
            raise UsageError("long-term memory (RedisStore) on a Redis Cluster is not supported by ckpt")
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        sp = query.pop("store_prefix", "store")
        vp = query.pop("vector_prefix", "store_vectors")
        plain = urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())))
        try:
            client = redis.Redis.from_url(plain, socket_connect_timeout=10, socket_timeout=120, protocol=2)
            client.ping()
            missing = missing_modules(client)
        except (redis.ConnectionError, redis.AuthenticationError, redis.ResponseError, redis.TimeoutError) as exc:
            raise BackendUnavailableError(f"cannot connect to {redact(url)}: {redact(str(exc))}") from None
        store = cls(client, url, sp, vp, write)
        try:
            if missing:
                raise BackendUnavailableError(f"{redact(url)} lacks the Redis module(s) {', '.join(missing)}")
            if sp not in store._indexes():
                if not write:
                    raise NotAStoreError(
                        f"{redact(url)} holds no RedisStore memory (no {sp!r} search index; "
                        "another store_prefix? writing to it with ckpt creates it)"
                    )
                store._create(sp, store._schema(sp, None))
            store._wait_indexed(sp)
            return store
        except BaseException:
            client.close()
            raise

    def layout(self) -> dict[str, Any]:
        storage = self._vectors()
        return {
            "store": "langgraph-checkpoint-redis RedisStore",
            **{"store_prefix": self.sp, "vector_prefix": self.vp, "vectors": storage is not None},
            **{"vector_storage": storage and storage.lower(), "ttl": "key expiry only (ttl_minutes is not stored)"},
        }

    def close(self) -> None:
        self._r.close()

    # -- indexes -------------------------------------------------------------------

    def _indexes(self) -> set[str]:
        return {text_of(i) for i in self._r.execute_command("FT._LIST")}

    def _info(self, index: str) -> dict[str, Any]:
        raw = self._r.execute_command("FT.INFO", index)
        info = {text_of(k): v for k, v in zip(raw[::2], raw[1::2])}
        definition = info.get("index_definition") or []
        info.update(
            {text_of(k): text_of(v) for k, v in zip(definition[::2], definition[1::2]) if not isinstance(v, list)}
        )
        return info

    def _schema(self, index: str, vectors: VectorIndex | None) -> list[Any]:
        """The FT.CREATE arguments redisvl sends for RedisStore.setup() (captured, verbatim)."""
        args: list[Any] = ["ON", "JSON", "PREFIX", 1, f"{index}:", "SCORE", 1.0, "SCHEMA"]
        args += ["$.prefix", "AS", "prefix", "TEXT", "WEIGHT", 1, "$.key", "AS", "key", "TAG", "SEPARATOR", ","]
        if vectors is not None:
            metric = {v: k for k, v in DISTANCES.items()}.get(vectors.distance or "cosine", "COSINE")
            args += ["$.field_name", "AS", "field_name", "TAG", "SEPARATOR", ",", "$.embedding", "AS", "embedding"]
            args += ["VECTOR", "FLAT", 6, "TYPE", "FLOAT32", "DIM", vectors.dims, "DISTANCE_METRIC", metric]
        for name in STORE_FIELDS[2:]:
            args += [f"$.{name}", "AS", name, "NUMERIC"]
        return args

    def _create(self, index: str, schema: list[Any]) -> None:
        with suppress(redis.ResponseError):  # overwrite=False: one created meanwhile is kept as it is
            self._r.execute_command("FT.CREATE", index, *schema)

    def _wait_indexed(self, index: str, timeout: float = 600.0) -> None:
        """An index created over existing documents fills in the background: reads wait for it."""
        deadline = time.monotonic() + timeout
        while text_of(self._info(index).get("indexing", 0)) != "0" and time.monotonic() < deadline:
            time.sleep(0.05)

    def index(self) -> VectorIndex | None:
        if self._vectors() is None:
            return None
        info = self._info(self.vp)
        for attribute in info.get("attributes") or []:
            attrs = {text_of(k): v for k, v in zip(attribute[::2], attribute[1::2])}
            if text_of(attrs.get("type")) == "VECTOR":
                metric = DISTANCES.get(text_of(attrs.get("distance_metric")).upper())
                load = ["@field_name"] if info.get("key_type") == "HASH" else ["$.field_name", "AS", "field_name"]
                query = ["FT.AGGREGATE", self.vp, "*", "TIMEOUT", 0, "LOAD", len(load), *load]
                rows = self._r.execute_command(*query, "GROUPBY", 1, "@field_name", "DIALECT", 2)[1:]
                fields = sorted(text_of(r[1]) for r in rows if len(r) > 1 and r[1] is not None)
                return VectorIndex(int(attrs.get("dim", 0)), metric, tuple(fields))
        return None

    # -- reading -------------------------------------------------------------------

    def _rows(self, query: str = "*", *, sort: bool = True) -> Iterator[tuple[bytes, str, str, bytes]]:
        """``(stored prefix, key, redis key, updated_at)`` of every document the query matches, in
        bytewise (prefix, key) order with ``sort``; a cursor page at a time. ``MAX`` is the count
        plus slack: without it RediSearch keeps 10 rows, and a sort cut at MAX would drop items."""
        total = int(self._r.execute_command("FT.SEARCH", self.sp, query, "LIMIT", 0, 0, "TIMEOUT", 0, "DIALECT", 2)[0])
        if total == 0:
            return
        cap = total + max(1000, total // 10)
        load = ["$.prefix", "AS", "p", "$.key", "AS", "k", "@__key", "$.updated_at", "AS", "u"]
        order = ["SORTBY", 4, "@p", "ASC", "@k", "ASC", "MAX", cap] if sort else []
        reply = self._r.execute_command(
            "FT.AGGREGATE", self.sp, query, "TIMEOUT", 0, "LOAD", len(load), *load, *order,
            "WITHCURSOR", "COUNT", PAGE, "DIALECT", 2,
        )  # fmt: skip
        cursor, seen, last = 0, 0, (b"", b"")
        try:
            while True:
                page, cursor = reply
                for raw in page[1:]:
                    row = dict(zip(raw[::2], raw[1::2]))
                    prefix, key = row.get(b"p"), row.get(b"k")
                    if not isinstance(prefix, bytes) or not isinstance(key, bytes):
                        continue  # not an item document (no prefix or key string)
                    if sort and (prefix, key) < last:
                        raise DataError(f"RediSearch returned {prefix!r} {key!r} out of order: cannot page this store")
                    seen, last = seen + 1, (prefix, key)
                    yield prefix, text_of(key), text_of(row[b"__key"]), row.get(b"u") or b"0"
                if not cursor:
                    break
                reply = self._r.execute_command("FT.CURSOR", "READ", self.sp, cursor)
        finally:
            if cursor:
                with suppress(redis.RedisError):
                    self._r.execute_command("FT.CURSOR", "DEL", self.sp, cursor)
        if sort and seen >= cap:
            raise DataError(f"{redact(self.url)} grew by over {cap - total} items while it was read: run again")

    def _selected(self, selection: MemorySelection) -> Iterator[tuple[tuple[str, ...], str, str, bytes]]:
        """Rows of the selection: the sort is bytewise on the escaped prefix, so a namespace prefix's
        namespaces are one run of rows; the read stops after it."""
        head = escape(selection.prefix).encode() if selection.prefix else b""
        for prefix, key, redis_key, updated in self._rows():
            if head and prefix < head:
                continue
            if head and not prefix.startswith(head):
                return
            namespace = unescape(text_of(prefix))
            if selection.matches(namespace):
                yield namespace, key, redis_key, updated

    def items(self, selection: MemorySelection = MemorySelection()) -> Iterator[MemoryItem]:
        for page in batched(self._selected(selection), PAGE):
            yield from self._fetch([redis_key for _ns, _key, redis_key, _u in page])

    def _vector_key(self, redis_key: str) -> str:
        return f"{self.vp}:{redis_key.rpartition(':')[2]}"

    def _fetch(self, keys: list[str]) -> Iterator[MemoryItem]:
        """The items at these document keys (one round trip: JSON.MGET, expiry times, vectors)."""
        storage = self._vectors()
        pipe = self._r.pipeline(transaction=False)
        pipe.execute_command("JSON.MGET", *keys, "$")
        for key in keys:
            pipe.execute_command("PEXPIRETIME", key)
        for key in keys if storage else ():
            if storage == "HASH":
                pipe.hgetall(self._vector_key(key))
            else:
                pipe.execute_command("JSON.GET", self._vector_key(key))
        replies = pipe.execute()
        docs, expiries, found = replies[0], replies[1 : 1 + len(keys)], replies[1 + len(keys) :]
        for i, raw in enumerate(docs):
            if raw is None:
                continue  # expired or deleted since the aggregate
            doc = orjson.loads(raw)[0]
            expiry = int(expiries[i])
            yield MemoryItem(
                namespace=unescape(doc["prefix"]),
                key=doc["key"],
                value=orjson.dumps(doc["value"]),
                created_at=from_micros(doc.get("created_at") or 0),
                updated_at=from_micros(doc.get("updated_at") or 0),
                expires_at=EPOCH + timedelta(milliseconds=expiry) if expiry > 0 else None,
                ttl_minutes=None,
                vectors=vector_of(found[i], self._storage is not None and self._storage[1]) if storage else (),
            )

    def namespaces(self, selection: MemorySelection = MemorySelection()) -> Iterator[NamespaceSummary]:
        """One sorted pass over the rows, no value leaving the server: counts and update times from
        the aggregate, value sizes, expiries and vectors from a script per page. (A GROUPBY gives
        counts and times alone: sizes and TTLs are in no document, so each key is visited anyway.)"""
        index = self.index()
        dims = index.dims if index is not None else 0
        current: NamespaceSummary | None = None
        for page in batched(self._selected(selection), PAGE):
            keys = [k for _ns, _k, key, _u in page for k in (key, self._vector_key(key))]
            flat = [int(x) for x in self._r.eval(SIZES_SCRIPT, len(keys), *keys)]
            for i, (namespace, _key, _rk, updated) in enumerate(page):
                size, expiring, vector = flat[3 * i : 3 * i + 3]
                if size < 0:
                    continue  # expired or deleted since the aggregate
                if current is None or current.namespace != namespace:
                    if current is not None:
                        yield current
                    current = NamespaceSummary(namespace)
                at = from_micros(updated)
                current.items += 1
                current.bytes += size + 4 * dims * vector
                current.expiring += expiring
                current.oldest_update = at if current.oldest_update is None else min(current.oldest_update, at)
                current.newest_update = at if current.newest_update is None else max(current.newest_update, at)
        if current is not None:
            yield current

    def _find(self, addresses: Iterable[Address]) -> dict[Address, list[str]]:
        """The document keys of these addresses: the ``key`` TAG narrows (it folds case and splits on
        ``,``, so one part of the key is asked for), the loaded raw strings decide exactly. A key
        with no taggable part falls back to reading every row."""
        wanted = set(addresses)
        tags: dict[str, None] = {}
        scan = False
        for _ns, key in wanted:
            part = next((p.strip() for p in key.split(",") if p.strip()), None)
            if part is None:
                scan = True
            else:
                tags[part] = None
        queries = ["|".join(tag_query("key", t)[6:-1] for t in chunk) for chunk in batched(tags, TAGS_PER_QUERY)]
        rows = [row for q in queries for row in self._rows("@key:{" + q + "}", sort=False)]
        if scan:
            rows += list(self._rows(sort=False))
        found: dict[Address, list[str]] = {}
        for prefix, key, redis_key, _u in rows:
            address = (unescape(text_of(prefix)), key)
            if address in wanted and redis_key not in found.get(address, []):
                found.setdefault(address, []).append(redis_key)
        return found

    def get_many(self, addresses: Iterable[Address]) -> dict[Address, MemoryItem]:
        keys = [k for ks in self._find(addresses).values() for k in ks]
        out: dict[Address, MemoryItem] = {}
        for chunk in batched(keys, PAGE):
            for item in self._fetch(chunk):  # of duplicates (a racing put), the newest
                if item.address not in out or out[item.address].updated_at <= item.updated_at:
                    out[item.address] = item
        return out

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """``SET ckpt_lock:<store_prefix>:memory-<name> <token> NX PX <ttl>``, renewed and released by
        token (as the checkpoint store's lock)."""
        key, token, ttl = f"ckpt_lock:{self.sp}:memory-{name}", new_token(), lock_ttl()
        ttl_ms = max(1, math.ceil(ttl * 1000))
        if not self._r.set(key, token, nx=True, px=ttl_ms):
            held_by = holder_of(self._r.get(key))
            raise LockedError(f"another ckpt memory {name} is running on {redact(self.url)} (key {key}, {held_by})")

        def renew() -> bool:
            return bool(self._r.eval(_RENEW_IF_HELD, 1, key, token, ttl_ms))

        try:
            with renewed(renew, ttl, f"the memory {name} lock (key {key})"):
                yield
        finally:
            with suppress(redis.RedisError):
                self._r.eval(_DELETE_IF_HELD, 1, key, token)

    def findings(self) -> list[str]:
        """RedisStore's verified bugs as they touch this store (docs/memory-layouts.md §3), from one
        GROUPBY over the stored prefixes: items its ``get`` cannot read, namespaces its puts collide in."""
        query = ["FT.AGGREGATE", self.sp, "*", "TIMEOUT", 0, "LOAD", 3, "$.prefix", "AS", "p", "GROUPBY", 1, "@p"]
        reply = self._r.execute_command(*query, "REDUCE", "COUNT", 0, "AS", "n", "WITHCURSOR", "COUNT", 1000)
        folded: dict[str, set[str]] = {}
        unreadable, cursor = 0, 1
        while cursor:
            page, cursor = reply
            for row in page[1:]:
                fields = dict(zip(row[::2], row[1::2]))
                prefix = text_of(fields.get(b"p") or b"")
                unreadable += int(fields.get(b"n") or 0) if "\\" in prefix else 0
                folded.setdefault(prefix.lower(), set()).add(prefix)
            reply = self._r.execute_command("FT.CURSOR", "READ", self.sp, cursor) if cursor else None
        found = []
        if unreadable:
            found.append(
                f"{unreadable} item(s) in nested or punctuated namespaces: RedisStore.get returns None for them "
                "(search and ckpt read them)"
            )
        clashes = len([names for names in folded.values() if len(names) > 1])
        if clashes:
            found.append(
                f"{clashes} group(s) of namespaces differing only in case: RedisStore.put in one deletes "
                "the same key in the others (ckpt writes never do)"
            )
        return found

    # -- writing -------------------------------------------------------------------

    def begin_copy(
        self, source_kind: str, source_layout: dict[str, Any], source_url: str, index: VectorIndex | None
    ) -> None:
        """The source's vector index: the one the vector index is created with, if needed."""
        self._index_wanted = index

    def _vector_storage(self, batch: list[MemoryItem]) -> str | None:
        """The vector index's storage (JSON or HASH), created when the batch brings the first vectors."""
        with_vectors = [i for i in batch if i.vectors]
        for item in with_vectors:
            if len(item.vectors) > 1:
                raise DataError(
                    f"{item.where()}: {len(item.vectors)} vectors, and RedisStore keeps one per item (its vector "
                    "document is keyed by the item's ULID; the last field's overwrites the others); "
                    "nothing of this batch was written"
                )
        if not with_vectors:
            return self._vectors()
        if self._vectors() is None:
            wanted = self._index_wanted or VectorIndex(len(with_vectors[0].vectors[0].embedding), None)
            self._create(self.vp, self._schema(self.vp, VectorIndex(wanted.dims, wanted.distance)))
            self._storage = None
        dims = self.index().dims  # type: ignore[union-attr]
        for item in (i for i in with_vectors if len(i.vectors[0].embedding) != dims):
            n = len(item.vectors[0].embedding)
            raise DataError(f"{item.where()}: a {n}-dim vector, the store's index has dims {dims}; nothing written")
        return self._vectors()

    def write(self, items: Iterable[MemoryItem]) -> MemoryWriteReport:
        """Upsert one batch in one MULTI/EXEC: the item's old documents (found exactly, never by
        RedisStore's fuzzy TEXT match) deleted, a new ULID's documents set, PEXPIREAT for an expiry."""
        batch = list({i.address: i for i in items}.values())  # last write wins, as RedisStore's batch
        report = MemoryWriteReport(items=len(batch))
        for item in batch:
            if not isinstance(orjson.loads(item.value), dict):
                raise DataError(f"{item.where()}: the value is not a JSON object; nothing of this batch was written")
        storage = self._vector_storage(batch)
        old = self._find(i.address for i in batch)
        pipe = self._r.pipeline(transaction=True)
        for key in (k for keys in old.values() for k in keys):
            pipe.delete(key, self._vector_key(key))
        now, expired, ttls = datetime.now(timezone.utc), 0, 0
        for item in batch:
            ulid = new_ulid()
            key, vector_key, prefix = f"{self.sp}:{ulid}", f"{self.vp}:{ulid}", escape(item.namespace)
            head = orjson.dumps({"prefix": prefix, "key": item.key})[:-1]
            times = orjson.dumps({"created_at": micros(item.created_at), "updated_at": micros(item.updated_at)})
            pipe.execute_command("JSON.SET", key, "$", b'%b,"value":%b,%b' % (head, item.value, times[1:]))
            for vector in item.vectors:
                report.vectors += 1
                seconds = {"created_at": item.created_at.timestamp(), "updated_at": item.updated_at.timestamp()}
                fields = {"prefix": prefix, "key": item.key, "field_name": vector.field}
                if storage == "HASH":
                    blob = struct.pack(f"<{len(vector.embedding)}f", *vector.embedding)
                    pipe.hset(vector_key, mapping={**fields, "embedding": blob, **seconds})
                else:
                    doc = {**fields, "embedding": list(vector.embedding), **seconds}
                    pipe.execute_command("JSON.SET", vector_key, "$", orjson.dumps(doc))
            if item.expires_at is not None:
                at = expiry_ms(item.expires_at)
                pipe.pexpireat(key, at)
                if item.vectors:
                    pipe.pexpireat(vector_key, at)
                expired += item.expires_at <= now
            ttls += item.ttl_minutes is not None
        errors = [r for r in pipe.execute(raise_on_error=False) if isinstance(r, Exception)]
        if errors:
            raise DataError(f"Redis refused part of a memory batch: {errors[0]}")
        if expired:
            report.problems.append(f"{expired} item(s) already expired: Redis dropped them at once")
        if ttls:
            report.problems.append(f"{ttls} item(s)' ttl_minutes not kept (RedisStore keeps only the key's expiry)")
        return report

    def delete(self, addresses: Iterable[Address]) -> int:
        found = self._find(addresses)
        pipe = self._r.pipeline(transaction=True)
        for key in (k for keys in found.values() for k in keys):
            pipe.delete(key, self._vector_key(key))
        pipe.execute()
        return len(found)
