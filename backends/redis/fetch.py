"""A batch of threads' documents from the server: one script call, or plain commands (issue #24).

redis-py's reply parser is Python: profiled on a 100k-checkpoint migrate, parsing the replies of
``FT.SEARCH`` (one bulk string per key) and ``JSON.MGET`` (one per document) took about as long as
converting the documents. So a batch is fetched by one script (``_FETCH``) that searches both
indexes, reads every document and each checkpoint key's ``PTTL``, and returns five bulk strings of
JSON: the checkpoint keys, the write keys (``cjson``), the documents as ``JSON.MGET`` gave them
(joined, ``null`` for a missing key) and the TTLs. orjson parses each in one call; where it refuses
one (an integer past 64 bits, a lone surrogate, a key that is not UTF-8) the standard library's
``json`` reads it as redis-py did.

Where scripts cannot run (ACLs, ``FT.SEARCH`` refused inside a script) or a batch is too big for
one reply (``_LIMIT`` keys, ``_MAX_BYTES``), the same reads go through plain commands on one raw
connection (``fetch_plain``): the two searches, ``JSON.MGET`` in chunks and a ``PTTL`` per key.
Replies are always read as bytes without redis-py's response callbacks (``Connection``).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import redis

from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.redis.wire import command

Doc = dict[str, Any]
Fetched = tuple[list[tuple[str, Doc, int]], list[tuple[str, Doc]]]
"""``([(checkpoint key, document, PTTL)], [(write key, document)])`` of a batch, in search order."""

_PAGE = 10_000
"""Search results per page."""
_CHUNK = 500
"""Keys per ``JSON.MGET`` sent by the client."""
_LIMIT = 5_000
"""Keys (checkpoints and writes) a script fetches at most; a bigger batch takes the plain path.
A script runs alone on the server (nothing else is served meanwhile): the caps bound the pause a
live store sees per call (a batch of ~500 checkpoints is ~2,300 keys)."""
_MAX_BYTES = 16 << 20
"""Document bytes a script returns at most (and builds in the server's memory)."""

_FETCH = """
local index, write_index, query = ARGV[1], ARGV[2], ARGV[3]
local page, limit, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
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
local size = 0
local function mget(keys)
  local out = {}
  for s = 1, #keys, 1000 do
    local args = {}
    for i = s, math.min(s + 999, #keys) do args[#args + 1] = keys[i] end
    args[#args + 1] = '$'
    local docs = redis.call('JSON.MGET', unpack(args))
    for i = 1, #docs do
      local doc = docs[i] or 'null'
      size = size + #doc
      out[#out + 1] = doc
    end
    if size > max_bytes then return nil end
  end
  return '[' .. table.concat(out, ',') .. ']'
end
local keys = search(index)
local write_keys = keys and search(write_index)
if not write_keys or #keys + #write_keys > limit then return {'big'} end
local docs = mget(keys)
local write_docs = docs and mget(write_keys)
if not write_docs then return {'big'} end
local ttls = {}
for i, key in ipairs(keys) do ttls[i] = redis.call('PTTL', key) end
return {encode(keys), encode(write_keys), docs, write_docs, '[' .. table.concat(ttls, ',') .. ']'}
"""


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

    def run(self, commands: list[bytes]) -> list[Any]:
        self.send(commands)
        return [self.read() for _ in commands]

    def close(self) -> None:
        if self._due or self._broken:  # replies still due: the connection is in an unknown state
            self._conn.disconnect()
        self._pool.release(self._conn)


def parse(raw: bytes) -> Any:
    """JSON as redis-py decoded it (``json.loads``), by orjson where orjson can."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw.decode("utf-8", "surrogateescape"))


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


def script_command(indexes: tuple[str, str], query: str) -> bytes:
    return command("EVAL", _FETCH, 0, *indexes, query, _PAGE, _LIMIT, _MAX_BYTES)


def scripted(reply: Any) -> Fetched | None:
    """The documents a ``script_command`` returned; ``None`` when it failed or the batch was too big."""
    if not isinstance(reply, list) or len(reply) != 5:
        return None
    with _collection_paused():
        keys, write_keys = parse(reply[0]), parse(reply[1])
        docs, write_docs, ttls = parse(reply[2]), parse(reply[3]), orjson.loads(reply[4])
    checkpoints = [(k, d[0], t) for k, d, t in zip(keys, docs, ttls) if d]
    return checkpoints, [(k, d[0]) for k, d in zip(write_keys, write_docs) if d]


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
