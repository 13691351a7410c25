"""RESP2 replies read straight off a connection's socket (issue #24: migrate from Redis).

redis-py's reply parser is Python: for each bulk string it reads a line, parses it and copies the
payload into a new ``bytes``, about 3 µs each, and a 100k-checkpoint store is ~460,000 documents.
Here a reply is read into one buffer and walked in place: an array of JSON documents (a
``JSON.MGET`` reply) is rewritten into one JSON array text and parsed by orjson in one call, from a
view of the buffer (``json_array``); the keys of an ``FT.SEARCH`` reply are kept as the bulk strings
they came as, to be sent back as arguments (``search_keys``).

Only RESP2 arrays, bulk strings, integers, nil and errors are understood: anything else raises
``redis.RedisError`` and the caller drops the connection. An error reply is read whole and raised
as ``redis.ResponseError``, as redis-py does; the connection stays usable.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import redis

_READ_MIN = 64 << 10
_READ_MAX = 1 << 20
"""Bytes asked of the socket per read: at least what is missing of a reply part, within these."""
_ARRAY, _BULK, _INTEGER, _ERROR = ord("*"), ord("$"), ord(":"), ord("-")
_OPEN, _COMMA, _CLOSE = ord("["), ord(","), ord("]")
_NIL = {_OPEN: b"[null", _COMMA: b",null"}
_BLANKS = [b" " * n for n in range(21)]
"""Blanks for the digits of a bulk string's length (at most 20: 2**64 has 20 digits)."""


class Replies:
    """The replies of one connection whose commands were sent by the caller, read in order."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._pos = 0

    def array(self) -> int:
        """The length of the array reply that comes next (its elements are read after it)."""
        kind, count = self._head()
        if kind != _ARRAY:
            raise _unexpected(kind)
        return count

    def search_keys(self, chunk: int) -> tuple[int, list[tuple[int, bytes]], list[str]]:
        """An ``FT.SEARCH … NOCONTENT`` reply: ``(total matches, runs, names)``. ``runs``: its keys
        in runs of at most ``chunk``, each ``(how many, the keys as the reply has them)``: RESP bulk
        strings, which is how they go out again as a command's arguments. ``names``: each key as
        text, as redis-py decodes it (UTF-8, other bytes as escapes)."""
        count = self.array()
        if count < 1:
            raise redis.RedisError(f"a search reply of {count} elements")
        kind, total = self._head()
        if kind != _INTEGER:
            raise _unexpected(kind)
        buf = self._buf
        pos = start = self._pos
        runs: list[tuple[int, bytes]] = []
        names: list[str] = []
        for index in range(1, count):
            end = buf.find(b"\r\n", pos)
            if end < 0 or buf[pos] != _BULK:
                end = self._bulk_line(pos)
            length = int(buf[pos + 1 : end])
            if length < 0:
                raise redis.RedisError("a search reply with a nil key")
            pos = end + 4 + length
            if len(buf) < pos:
                self._fill(pos)
            if index % chunk == 0 or index == count - 1:
                run = (index - len(runs) * chunk, bytes(buf[start:pos]))
                runs.append(run)
                names += _names(*run)
                start = pos
        self._pos = pos
        return total, runs, names

    def integer(self) -> int:
        """The integer reply that comes next."""
        kind, value = self._head()
        if kind != _INTEGER:
            raise _unexpected(kind)
        return value

    def json_array(self, parse: Callable[[Any], Any]) -> list[Any]:
        """An array of bulk strings that each hold JSON (nil: ``None``), parsed by one call of
        ``parse``: the reply is rewritten in place into a JSON array (a ``$<length>`` header
        becomes ``[`` or ``,`` and blanks, a nil ``$-1\r\n`` becomes ``,null``; CR LF is JSON
        whitespace), so ``parse`` gets a view of ``[a,b,null,…]`` and no element costs a call."""
        kind, count = self._head()
        if kind != _ARRAY:
            raise _unexpected(kind)
        if count <= 0:
            return []
        buf = self._buf
        first = pos = self._pos
        separator = _OPEN
        for _ in range(count):
            end = buf.find(b"\r\n", pos)
            if end < 0 or buf[pos] != _BULK:
                end = self._bulk_line(pos)
            length = int(buf[pos + 1 : end])
            if length < 0:
                buf[pos : end + 2] = _NIL[separator]  # "$-1\r\n": five bytes, as ",null"
                pos = end + 2
            else:
                buf[pos] = separator
                buf[pos + 1 : end] = _BLANKS[end - pos - 1]
                stop = end + 2 + length
                if len(buf) < stop + 2:
                    self._fill(stop + 2)
                pos = stop + 2
            separator = _COMMA
        self._pos = pos
        parsed = self._closed_and_parsed(first, pos, parse)
        if not isinstance(parsed, list) or len(parsed) != count:
            raise redis.RedisError(f"an array of {count} JSON values read as {type(parsed).__name__}")
        return parsed

    def _closed_and_parsed(self, first: int, end: int, parse: Callable[[Any], Any]) -> Any:
        """``parse`` of ``buf[first:end] + "]"``: the byte at ``end`` (the next reply's, if any) is
        lent for the ``]`` and given back."""
        buf = self._buf
        lent = buf[end] if end < len(buf) else None
        if lent is None:
            buf.append(_CLOSE)
        else:
            buf[end] = _CLOSE
        try:
            with memoryview(buf) as view, view[first : end + 1] as text:
                return parse(text)
        finally:
            if lent is None:
                del buf[end:]
            else:
                buf[end] = lent

    # -- the buffer ----------------------------------------------------------------

    def _compact(self) -> None:
        """Drop what was read (only between replies: no span points into the buffer then)."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _head(self) -> tuple[int, int]:
        """The next reply's type and the number on its first line; an error reply is raised."""
        self._compact()
        end = self._line_end()
        buf = self._buf
        kind = buf[0]
        if kind == _ERROR:
            message = buf[1:end].decode("utf-8", "replace")
            self._pos = end + 2
            raise redis.ResponseError(message)
        if kind not in (_ARRAY, _BULK, _INTEGER):
            raise _unexpected(kind)  # a simple string ('+') or a RESP3 type: nothing here sends one
        self._pos = end + 2
        return kind, int(buf[1:end])

    def _bulk_line(self, pos: int) -> int:
        """The end of the bulk string header at ``pos``, read in whole; another type is refused."""
        self._pos = pos
        end = self._line_end()
        if self._buf[pos] != _BULK:
            raise _unexpected(self._buf[pos])
        return end

    def _line_end(self) -> int:
        buf = self._buf
        searched = self._pos
        while (end := buf.find(b"\r\n", searched)) < 0:
            searched = max(self._pos, len(buf) - 1)
            self._fill(len(buf) + 1)
        return end

    def _fill(self, size: int) -> None:
        """Read until the buffer holds ``size`` bytes."""
        buf = self._buf
        while len(buf) < size:
            try:
                chunk = self._sock.recv(min(max(size - len(buf), _READ_MIN), _READ_MAX))
            except TimeoutError as error:
                raise redis.TimeoutError("Timeout reading from socket") from error
            except OSError as error:
                raise redis.ConnectionError(f"Error while reading from socket: {error}") from error
            if not chunk:
                raise redis.ConnectionError("Connection closed by server.")
            buf += chunk


def _names(count: int, run: bytes) -> list[str]:
    """The ``count`` keys of ``run`` (bulk strings) as text. Cut at CR LF, a run gives each key
    between two headers unless a key holds a CR LF itself, which the count of parts shows: then
    each key is cut out by its header."""
    parts = run.decode("utf-8", "surrogateescape").split("\r\n")
    if len(parts) == 2 * count + 1:
        return parts[1::2]
    names = []
    pos = 0
    while pos < len(run):
        end = run.index(b"\r\n", pos)
        stop = end + 2 + int(run[pos + 1 : end])
        names.append(run[end + 2 : stop].decode("utf-8", "surrogateescape"))
        pos = stop + 2
    return names


def _unexpected(kind: int) -> redis.RedisError:
    return redis.RedisError(f"unexpected reply type {chr(kind)!r} from the server")
