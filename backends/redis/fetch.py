"""A batch of threads' documents from the server by plain commands, a batch ahead (issue #24).

redis-py's reply parser is Python: profiled on a 100k-checkpoint migrate, parsing the replies of
``FT.SEARCH`` (one bulk string per key) and ``JSON.MGET`` (one per document) took about as long as
converting the documents. A Lua script that searched, read and joined a batch's documents into five
strings fixed the client's side but cost the server's one thread ~1.7 CPU-s per 100k checkpoints
(the joining; the reads themselves are ~1.5 s), which the workers of a ``--jobs 2`` copy queue on.
So a batch is read by plain commands (``Fetcher``): one ``FT.SEARCH`` per index for the batch's
keys, ``JSON.MGET`` in chunks and a ``PTTL`` per checkpoint key, the next batch's commands sent
before this one's documents are handed on; the replies are walked in one buffer off the socket
(``resp.Replies``) and each document is parsed by orjson; where orjson refuses one (an integer
past 64 bits, a lone surrogate) the standard library's ``json`` reads it as redis-py did.

Where the connection's socket is not reachable (``Replies`` needs it), or a batch's search has
more than one page, the same reads go through redis-py on their own connection (``fetch_plain``).
"""

from __future__ import annotations

import gc
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import orjson
import redis

from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.redis.resp import Found, Replies
from ckpt.backends.redis.wire import command

Doc = dict[str, Any]
Fetched = tuple[list[tuple[str, Doc, int]], list[tuple[str, Doc]]]
"""``([(checkpoint key, document, PTTL)], [(write key, document)])`` of a batch, in search order."""

_PAGE = 10_000
"""Search results per page."""
_CHUNK = 500
"""Keys per ``JSON.MGET`` sent by the client."""
_PTTL = b"*2\r\n$4\r\nPTTL\r\n"
T = TypeVar("T")


class Connection:
    """Raw commands on one pooled connection of ``client``: sent in order, replies read in order,
    as bytes, no response callback (redis-py's public connection API only, like ``wire.Pipeline``)."""

    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool
        try:
            self._conn: Any = self._pool.get_connection()
        except TypeError:  # redis-py < 5.3 wants a command name
            self._conn = self._pool.get_connection("JSON.MGET")
        self._due = 0
        self._broken = False

    def send(self, commands: list[bytes]) -> None:
        if commands:
            self._conn.send_packed_command([b"".join(commands)])
            self._due += len(commands)

    def read(self) -> Any:
        """The next reply; an error reply is returned (as ``redis.ResponseError``), not raised."""
        self._due -= 1
        try:
            return self._conn.read_response(disable_decoding=True)
        except redis.ResponseError as error:  # read whole: the next reply is intact
            return error
        except BaseException:
            self._broken = True
            raise

    def replies(self) -> Replies | None:
        """This connection's replies read off its socket (``resp.Replies``) from now on, instead
        of by ``read``; ``None`` where the redis-py connection has no plain socket to read."""
        sock = getattr(self._conn, "_sock", None)
        return Replies(sock) if isinstance(sock, socket.socket) else None

    def took(self, count: int) -> None:
        """``count`` replies were read through ``replies()``."""
        self._due -= count

    def abandon(self) -> None:
        """A read failed half way: the connection is dropped on ``close``."""
        self._broken = True

    def run(self, commands: list[bytes]) -> list[Any]:
        self.send(commands)
        return [self.read() for _ in commands]

    def close(self) -> None:
        if self._due or self._broken:  # replies still due: the connection is in an unknown state
            self._conn.disconnect()
        self._pool.release(self._conn)


def parse(raw: bytes | memoryview) -> Any:
    """JSON as redis-py decoded it (``json.loads``), by orjson where orjson can."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(bytes(raw).decode("utf-8", "surrogateescape"))


def documents(client: Any, keys: list[str], path: str = "$") -> Iterator[tuple[str, Any]]:
    """``(key, value at path)`` for each key that holds one (``JSON.MGET``, ``_CHUNK`` keys a call)."""
    if not keys:
        return
    conn = Connection(client)
    try:
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            yield from _found(chunk, conn.run([command("JSON.MGET", *chunk, path)])[0])
    finally:
        conn.close()


def _found(keys: list[str], reply: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(reply, redis.ResponseError):
        raise CorruptRecordError(f"cannot read documents {keys[0]}…: {reply}") from reply
    for key, raw in zip(keys, reply):
        if raw is not None:
            found = parse(raw)
            if found:
                yield key, found[0]


def union(values: list[str]) -> str:
    """``@thread_id:{a|b|c}``, each value escaped as ``schema.tag_query`` escapes it."""
    from ckpt.backends.redis.schema import tag_query

    head = "@thread_id:{"
    return head + "|".join(tag_query("thread_id", v)[len(head) : -1] for v in values) + "}"


class _Reads(NamedTuple):
    """A batch's reads in flight: the keys its searches found (``plain``: more than a page,
    read by ``fetch_plain`` instead)."""

    query: str
    keys: list[str]
    write_keys: list[str]
    plain: bool = False


class Fetcher:
    """Each batch's documents by plain commands on one connection, the next batch's commands in
    flight while the caller uses one (see the module's doc)."""

    def __init__(self, client: Any, indexes: tuple[str, str]) -> None:
        self._client = client
        self._indexes = indexes

    def batches(self, queries: Iterator[tuple[T, str | None]]) -> Iterator[tuple[T, Fetched]]:
        """``(batch, what its search query finds)`` for each ``(batch, query)`` (``None``:
        nothing to search), in order.

        The replies come in the order the commands went (a batch's searches, its reads, the next
        batch's searches, its reads), so the next batch's searches go out before this batch's
        reads are read, and its reads (the keys they need just found) before this one is yielded.
        """
        conn = Connection(self._client)
        replies = conn.replies()
        try:
            if replies is None:
                yield from ((batch, self._plain(query)) for batch, query in queries)
                return
            current = next(queries, None)
            reads = self._request(conn, replies, self._send_searches(conn, current))
            while current is not None:
                following = next(queries, None)
                pending = self._send_searches(conn, following)
                fetched = self._read(conn, replies, reads)
                reads = self._request(conn, replies, pending)
                yield current[0], fetched
                current = following
        except BaseException:
            conn.abandon()
            raise
        finally:
            conn.close()

    def _plain(self, query: str | None) -> Fetched:
        return fetch_plain(self._client, self._indexes, query) if query is not None else ([], [])

    def _send_searches(self, conn: Connection, batch: tuple[Any, str | None] | None) -> str | None:
        """The batch's searches sent; returns their query."""
        query = batch[1] if batch is not None else None
        if query is not None:
            conn.send([_search(index, query, 0) for index in self._indexes])
        return query

    def _request(self, conn: Connection, replies: Replies, query: str | None) -> _Reads | None:
        """The replies of the searches of ``query`` read, and the reads of what they found sent."""
        if query is None:
            return None
        conn.took(2)
        found: list[Found] = [replies.search(), replies.search()]
        if any(page.total > len(page.keys) for page in found):
            return _Reads(query, [], [], plain=True)
        checkpoints, writes = found
        commands = [_mget(page, i) for page in found for i in range(0, len(page.keys), _CHUNK)]
        ttls = [_PTTL + checkpoints.encoded(i, i + 1) for i in range(len(checkpoints.keys))]
        conn.send(commands + ttls)
        return _Reads(query, checkpoints.keys, writes.keys)

    def _read(self, conn: Connection, replies: Replies, reads: _Reads | None) -> Fetched:
        """The documents and TTLs of the batch whose reads were sent."""
        if reads is None:
            return [], []
        if reads.plain:
            return fetch_plain(self._client, self._indexes, reads.query)
        with _collection_paused():
            docs = _documents(conn, replies, reads.keys)
            write_docs = _documents(conn, replies, reads.write_keys)
        conn.took(len(reads.keys))
        ttls = replies.integers(len(reads.keys))
        checkpoints = [(key, doc, ttl) for (key, doc), ttl in zip(docs, ttls) if doc is not None]
        return checkpoints, [(key, doc) for key, doc in write_docs if doc is not None]


def _mget(found: Found, start: int) -> bytes:
    """``JSON.MGET <keys> $`` of ``_CHUNK`` keys from ``start``, as the search's reply spelled them."""
    count = min(_CHUNK, len(found.keys) - start)
    return b"*%d\r\n$9\r\nJSON.MGET\r\n%b$1\r\n$\r\n" % (count + 2, found.encoded(start, start + count))


def _documents(conn: Connection, replies: Replies, keys: list[str]) -> list[tuple[str, Doc | None]]:
    """``(key, document or None)`` for ``keys`` from their ``JSON.MGET`` replies."""
    out: list[tuple[str, Doc | None]] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        conn.took(1)
        try:
            found = replies.json_array(parse)
        except redis.ResponseError as error:
            raise CorruptRecordError(f"cannot read documents {chunk[0]}…: {error}") from error
        if len(found) != len(chunk):
            raise redis.RedisError(f"JSON.MGET of {len(chunk)} keys answered {len(found)} values")
        out += ((key, value[0] if value else None) for key, value in zip(chunk, found))
    return out


@contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a batch is parsed (and back on after, if it was on).

    Parsed JSON holds no reference cycles, but its ~100,000 new dicts and lists a batch set off
    collections that walk every object alive; measured, they doubled the time orjson took.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fetch_plain(client: Any, indexes: tuple[str, str], query: str) -> Fetched:
    """What the script fetches, by plain commands on one connection (two round trips and paging)."""
    conn = Connection(client)
    try:
        first = conn.run([_search(index, query, 0) for index in indexes])
        found: list[list[str]] = []
        for index, reply in zip(indexes, first):
            keys: list[str] = []
            while True:
                if isinstance(reply, redis.ResponseError):
                    raise reply
                total, page = int(reply[0]), reply[1:]
                keys += [k.decode("utf-8", "surrogateescape") for k in page]
                if not page or len(keys) >= total:
                    break
                reply = conn.run([_search(index, query, len(keys))])[0]
            found.append(keys)
        keys, write_keys = found
        chunks = [keys[i : i + _CHUNK] for i in range(0, len(keys), _CHUNK)]
        write_chunks = [write_keys[i : i + _CHUNK] for i in range(0, len(write_keys), _CHUNK)]
        commands = [command("JSON.MGET", *chunk, "$") for chunk in chunks + write_chunks]
        replies = conn.run(commands + [command("PTTL", key) for key in keys])
        ttl_of = dict(zip(keys, (_integer(r) for r in replies[len(commands) :])))
        checkpoints = [(k, d, ttl_of[k]) for chunk, r in zip(chunks, replies) for k, d in _found(chunk, r)]
        writes = [pair for chunk, r in zip(write_chunks, replies[len(chunks) :]) for pair in _found(chunk, r)]
        return checkpoints, writes
    finally:
        conn.close()


def _search(index: str, query: str, offset: int) -> bytes:
    return command("FT.SEARCH", index, query, "NOCONTENT", "TIMEOUT", 0, "LIMIT", offset, _PAGE, "DIALECT", 2)


def _integer(reply: Any) -> int:
    if isinstance(reply, redis.ResponseError):
        raise reply
    return int(reply)
