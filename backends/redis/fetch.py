"""A batch of threads' documents from the server in one script call, a batch ahead (issue #24).

redis-py's reply parser is Python: profiled on a 100k-checkpoint migrate, parsing the replies of
``FT.SEARCH`` (one bulk string per key) and ``JSON.MGET`` (one per document) took about as long as
converting the documents. So a batch is fetched by one script (``_FETCH``) that searches both
indexes, reads every document (``JSON.MGET`` per ``_CHUNK`` keys) and each checkpoint key's
``PTTL`` (unless no key of the database expires: ``ttls``), and returns the keys and the TTLs as
JSON text and the ``JSON.MGET`` replies as they are. Its reply is walked off the socket
(``resp.Replies``): each ``JSON.MGET`` reply is rewritten in place into one JSON array and parsed by
orjson in one call. (The script used to join the documents into one string itself: Lua's joining
cost the server's one thread ~0.9 of its 3.2 CPU-s per 100k checkpoints, which the workers of a
``--jobs 2`` copy queue on. Plain commands instead cost the server least, but the client ~0.4 s
more than this, a Python step per key.) Where orjson refuses a document (an integer past 64 bits, a
lone surrogate) the standard library's ``json`` reads it as redis-py did.

Where scripts cannot run (ACLs, ``FT.SEARCH`` refused inside a script), a batch is too big for one
call (``_LIMIT`` keys) or the connection's socket is not reachable (``Replies`` needs it), the same
reads go through redis-py as plain commands (``fetch_plain``).
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
"""Keys per ``JSON.MGET``: each call of the script's, and each plain one (``fetch_plain``, ``documents``)."""
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


_LIMIT = 5_000
"""Keys (checkpoints and writes) a script reads at most; a bigger batch takes the plain path.
A script runs alone on the server (nothing else is served meanwhile): the cap bounds the pause a
live store sees per call (a batch of ~500 checkpoints is ~2,300 keys)."""

_FETCH = """
local index, write_index, query = ARGV[1], ARGV[2], ARGV[3]
local page, limit, chunk, with_ttls = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'
local function search(name)
  local keys = {}
  while true do
    local reply = redis.call('FT.SEARCH', name, query, 'NOCONTENT', 'TIMEOUT', 0, 'LIMIT', #keys, page, 'DIALECT', 2)
    for i = 2, #reply do keys[#keys + 1] = reply[i] end
    if #keys > limit then return nil end
    if #reply < 2 or #keys >= reply[1] then return keys end
  end
end
local function encode(keys)
  if #keys == 0 then return '[]' end
  return cjson.encode(keys)
end
local function mget(keys)
  local out = {}
  for s = 1, #keys, chunk do
    local args = {}
    for i = s, math.min(s + chunk - 1, #keys) do args[#args + 1] = keys[i] end
    args[#args + 1] = '$'
    out[#out + 1] = redis.call('JSON.MGET', unpack(args))
  end
  return out
end
local keys = search(index)
local write_keys = keys and search(write_index)
if not write_keys or #keys + #write_keys > limit then return {'big'} end
local ttls = {}
if with_ttls then
  for i, key in ipairs(keys) do ttls[i] = redis.call('PTTL', key) end
end
return {encode(keys), encode(write_keys), mget(keys), mget(write_keys), '[' .. table.concat(ttls, ',') .. ']'}
"""


class Fetcher:
    """Each batch's documents from one script call, the next batch's call in flight while the
    caller uses one (see the module's doc); by plain commands through redis-py where scripts
    cannot run or a batch is too big for one call."""

    def __init__(self, client: Any, indexes: tuple[str, str], *, ttls: bool = True) -> None:
        self._client = client
        self._indexes = indexes
        self._ttls = ttls
        """Whether each checkpoint key's ``PTTL`` is read (else every TTL reads as -1: none)."""
        self._scripts = True
        """Whether batches are read by the script (until the server refuses it)."""

    def batches(self, queries: Iterator[tuple[T, str | None]]) -> Iterator[tuple[T, Fetched]]:
        """``(batch, what its search query finds)`` for each ``(batch, query)`` (``None``:
        nothing to search), in order."""
        conn = Connection(self._client)
        replies = conn.replies()
        try:
            if replies is None:  # no socket to read: redis-py reads every batch
                yield from ((batch, self._plain(query)) for batch, query in queries)
                return
            current = next(queries, None)
            sent = self._request(conn, current)
            while current is not None:
                following = next(queries, None)
                fetched = self._read(conn, replies) if sent else None
                sent = self._request(conn, following)  # the server reads it while this one is used
                yield current[0], fetched if fetched is not None else self._plain(current[1])
                current = following
        except BaseException:
            conn.abandon()
            raise
        finally:
            conn.close()

    def _request(self, conn: Connection, batch: tuple[Any, str | None] | None) -> bool:
        if batch is None or batch[1] is None or not self._scripts:
            return False
        with_ttls = 1 if self._ttls else 0
        conn.send([command("EVAL", _FETCH, 0, *self._indexes, batch[1], _PAGE, _LIMIT, _CHUNK, with_ttls)])
        return True

    def _read(self, conn: Connection, replies: Replies) -> Fetched | None:
        """The script's reply; ``None`` when the batch was too big or the script failed."""
        conn.took(1)
        try:
            parts = replies.array()
        except redis.ResponseError:
            self._scripts = False  # refused (ACLs, FT.SEARCH inside a script): plain commands from now on
            return None
        if parts != 5:
            replies.skip(parts)  # {'big'}
            return None
        with _collection_paused():
            keys, write_keys = replies.bulk(parse), replies.bulk(parse)
            docs = _chunks(replies, keys)
            write_docs = _chunks(replies, write_keys)
            ttls = replies.bulk(orjson.loads)  # [] when not asked for
        if not self._ttls:
            ttls = [-1] * len(keys)
        if len(ttls) != len(keys):
            raise redis.RedisError(f"{len(ttls)} TTLs for {len(keys)} keys")
        checkpoints = [(k, d[0], t) for k, d, t in zip(keys, docs, ttls) if d]
        return checkpoints, [(k, d[0]) for k, d in zip(write_keys, write_docs) if d]

    def _plain(self, query: str | None) -> Fetched:
        return fetch_plain(self._client, self._indexes, query, ttls=self._ttls) if query is not None else ([], [])


def _chunks(replies: Replies, keys: list[str]) -> list[Any]:
    """The documents of ``keys``, one ``JSON.MGET`` reply per ``_CHUNK`` keys (``None``: no document)."""
    count = replies.array()
    if count != -(-len(keys) // _CHUNK):
        raise redis.RedisError(f"{count} JSON.MGET replies for {len(keys)} keys")
    docs: list[Any] = []
    for _ in range(count):
        docs += replies.json_array(parse)
    if len(docs) != len(keys):
        raise redis.RedisError(f"{len(docs)} documents for {len(keys)} keys")
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
    """What the script fetches, by plain commands on one connection (two round trips and paging);
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
