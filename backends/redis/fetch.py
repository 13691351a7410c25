"""A batch of threads' documents by plain commands on one connection, a batch ahead (issue #24).

Each batch is two ``FT.SEARCH … NOCONTENT`` (checkpoints and writes, paged past ``_PAGE`` keys),
then ``JSON.MGET`` per ``_CHUNK`` keys and each checkpoint key's ``PTTL`` (unless no key of the
database expires: ``ttls``). The replies are walked off the socket (``resp.Replies``), not through
redis-py, whose reply parser takes a Python step and a new object per bulk string: the searches'
keys are kept as the reply has them, RESP bulk strings, and sent back as the ``JSON.MGET``
arguments without encoding each again; each ``JSON.MGET`` reply is rewritten in place into one JSON
array and parsed by orjson in one call. While the caller converts a batch, the next batch's
``JSON.MGET`` is in flight. Where orjson refuses a document (an integer past 64 bits, a lone
surrogate) the standard library's ``json`` reads it as redis-py did.

(A Lua script per batch used to run the searches and the reads: one round trip, but
the server then copied every document into Lua and out again, ~0.5 of its ~2.3 CPU-s per 100k
checkpoints, on the one thread that the workers of a ``--jobs`` copy queue on. Plain commands
also need no ``EVAL``, which ACLs may refuse.)

Where the connection's socket is not reachable (``Replies`` needs it), the same reads go through
redis-py (``fetch_plain``).

A search past one page (``_PAGE`` keys: one thread that big) is read page by page, not as one
snapshot: keys deleted or added meanwhile (a prune or the app running at the same time) shift the
pages. A page whose total differs from the first page's shows it, and the search is read again from
its start (``_REREADS`` times at most; past that a key that stays may be missed, which a rerun of
``migrate`` copies). The script this replaced paged inside one atomic call.
"""

from __future__ import annotations

import gc
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import redis

from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.redis.resp import Replies
from ckpt.backends.redis.wire import command

Doc = dict[str, Any]
Fetched = tuple[list[tuple[str, Doc, int]], list[tuple[str, Doc]]]
"""``([(checkpoint key, document, PTTL)], [(write key, document)])`` of a batch, in search order."""

_PAGE = 10_000
"""Search results per page."""
_CHUNK = 500
"""Keys per ``JSON.MGET`` (``Fetcher``, ``fetch_plain``, ``documents``)."""
_REREADS = 3
"""Times a paged search is read from its start again when the index changed while it was paged."""
T = TypeVar("T")


class Connection:
    """Raw commands on one pooled connection of ``client``: sent in order, replies read in order,
    as bytes, no response callback (redis-py's public connection API, like ``wire.Pipeline``; only
    ``replies`` reaches past it, to the connection's socket, and steps aside where there is none)."""

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


class Fetcher:
    """Each batch's documents by plain commands on one connection, the next batch's documents
    in flight while the caller uses one (see the module's doc); through redis-py where the
    connection has no socket to read."""

    def __init__(self, client: Any, indexes: tuple[str, str], *, ttls: bool = True) -> None:
        self._client = client
        self._indexes = indexes
        self._ttls = ttls
        """Whether each checkpoint key's ``PTTL`` is read (else every TTL reads as -1: none)."""

    def batches(self, queries: Iterator[tuple[T, str | None]]) -> Iterator[tuple[T, Fetched]]:
        """``(batch, what its search query finds)`` for each ``(batch, query)`` (``None``:
        nothing to search), in order."""
        conn = Connection(self._client)
        replies = conn.replies()
        try:
            if replies is None:  # no socket to read: redis-py reads every batch
                yield from ((batch, self._plain(query)) for batch, query in queries)
                return
            pending = iter(queries)
            current = next(pending, None)
            self._search(conn, current)
            keys = self._keys(conn, replies, current)
            following = next(pending, None)
            self._send_reads(conn, keys, following)
            while current is not None:
                docs = self._documents(conn, replies, keys)
                following_keys = self._keys(conn, replies, following)
                after = next(pending, None) if following is not None else None
                # in flight while the caller uses ``docs``: the next batch's reads, the search after it
                self._send_reads(conn, following_keys, after)
                yield current[0], docs
                current, keys, following = following, following_keys, after
        except BaseException:
            conn.abandon()
            raise
        finally:
            conn.close()

    def _search(self, conn: Connection, batch: tuple[Any, str | None] | None) -> None:
        if batch is not None and batch[1] is not None:
            conn.send([_search(index, batch[1], 0) for index in self._indexes])

    def _keys(self, conn: Connection, replies: Replies, batch: tuple[Any, str | None] | None) -> _Keys:
        """Both searches' keys (``_search`` sent them), each paged through to its end."""
        if batch is None or batch[1] is None:
            return _NONE
        query = batch[1]
        first = [replies.search_keys(_CHUNK) for _ in self._indexes]
        conn.took(len(first))
        found = [self._paged(conn, replies, index, query, *reply) for index, reply in zip(self._indexes, first)]
        return found[0], found[1]

    def _paged(
        self, conn: Connection, replies: Replies, index: str, query: str, total: int, runs: list[_Run], names: list[str]
    ) -> _Found:
        """A search's keys, its first page given, read page by page to the end. A page whose total
        differs from the first's means the index changed in between (keys deleted or added shift the
        pages): the search is read again from its start, up to ``_REREADS`` times."""
        rereads = 0
        while True:
            page, changed = names, False
            while page and len(names) < total:
                conn.send([_search(index, query, len(names))])
                conn.took(1)
                now, more, page = replies.search_keys(_CHUNK)
                runs, names, changed, total = runs + more, names + page, changed or now != total, now
            if not changed or rereads == _REREADS:
                return runs, names
            rereads += 1
            conn.send([_search(index, query, 0)])
            conn.took(1)
            total, runs, names = replies.search_keys(_CHUNK)

    def _send_reads(self, conn: Connection, keys: _Keys, following: tuple[Any, str | None] | None) -> None:
        """The documents (and TTLs) of ``keys``, then the search of the ``following`` batch."""
        (checkpoints, _), (writes, _) = keys
        conn.send(
            [_MGET_HEAD % (n + 2) + run + _ROOT for n, run in checkpoints + writes]
            + ([command("PTTL", name.encode("utf-8", "surrogateescape")) for name in keys[0][1]] if self._ttls else [])
        )
        self._search(conn, following)

    def _documents(self, conn: Connection, replies: Replies, keys: _Keys) -> Fetched:
        (checkpoints, names), (writes, write_names) = keys
        with _collection_paused():
            docs = _chunks(conn, replies, checkpoints, names)
            write_docs = _chunks(conn, replies, writes, write_names)
        if self._ttls:
            ttls = [replies.integer() for _ in docs]
            conn.took(len(ttls))
        else:
            ttls = [-1] * len(docs)
        return (
            [(k, d[0], t) for k, d, t in zip(names, docs, ttls) if d],
            [(k, d[0]) for k, d in zip(write_names, write_docs) if d],
        )

    def _plain(self, query: str | None) -> Fetched:
        return fetch_plain(self._client, self._indexes, query, ttls=self._ttls) if query is not None else ([], [])


_Run = tuple[int, bytes]
"""Keys found by a search, as ``Replies.search_keys`` gives them: how many, and their bulk strings."""
_Found = tuple[list[_Run], list[str]]
"""A search's keys: as runs, and as text."""
_Keys = tuple[_Found, _Found]
"""A batch's checkpoint and write keys."""
_NONE: _Keys = (([], []), ([], []))
_MGET_HEAD = b"*%d\r\n$9\r\nJSON.MGET\r\n"
_ROOT = b"$1\r\n$\r\n"


def _chunks(conn: Connection, replies: Replies, runs: list[_Run], names: list[str]) -> list[Any]:
    """The documents of each run of keys, one ``JSON.MGET`` reply each (``None``: no document)."""
    docs: list[Any] = []
    for n, _ in runs:
        conn.took(1)
        try:
            found = replies.json_array(parse)
        except redis.ResponseError as error:
            raise CorruptRecordError(f"cannot read documents {names[len(docs)]}…: {error}") from error
        if len(found) != n:
            raise redis.RedisError(f"{len(found)} documents for {n} keys")
        docs += found
    return docs


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


def fetch_plain(client: Any, indexes: tuple[str, str], query: str, *, ttls: bool = True) -> Fetched:
    """What ``Fetcher`` fetches, through redis-py on one connection (two round trips and paging);
    without ``ttls`` no ``PTTL`` is sent and every TTL reads as -1."""
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
        replies = conn.run(commands + [command("PTTL", key) for key in keys if ttls])
        ttl_of = dict(zip(keys, (_integer(r) for r in replies[len(commands) :])))
        checkpoints = [(k, d, ttl_of.get(k, -1)) for chunk, r in zip(chunks, replies) for k, d in _found(chunk, r)]
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
