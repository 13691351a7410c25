"""RESP2 replies read straight off a connection's socket (issue #24: migrate from Redis).

redis-py's reply parser is Python: for each bulk string it reads a line, parses it and copies the
payload into a new ``bytes``, about 3 µs each, and a 100k-checkpoint store is ~460,000 documents
plus as many keys. A Lua script that joined a batch's documents into a few strings avoided that,
but made the server's one thread do the joining: ~1.7 of its 3.4 CPU-s per 100k checkpoints,
which both workers of a ``--jobs 2`` copy wait on. Here a reply is read into one buffer and
walked in place: a bulk string costs a ``find`` and an ``int``, a document's JSON is parsed by
orjson from a view of the buffer, and a key a search found is handed on as the very bytes of its
bulk string (``Found.encoded``), which is how a command spells it too.

Only the RESP2 replies of ``FT.SEARCH … NOCONTENT``, ``JSON.MGET`` and ``PTTL`` are understood
(arrays of bulk strings and integers, nil, errors): anything else raises ``redis.RedisError`` and
the caller drops the connection. An error reply is read whole and raised as
``redis.ResponseError``, as redis-py does; the connection stays usable.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, NamedTuple

import redis

_READ_MIN = 64 << 10
_READ_MAX = 1 << 20
"""Bytes asked of the socket per read: at least what is missing of a reply part, within these."""
_ARRAY, _BULK, _INTEGER, _ERROR = ord("*"), ord("$"), ord(":"), ord("-")
_OPEN, _COMMA, _CLOSE = ord("["), ord(","), ord("]")
_NIL = {_OPEN: b"[null", _COMMA: b",null"}
_BLANKS = [b" " * n for n in range(21)]
"""Blanks for the digits of a bulk string's length (at most 20: 2**64 has 20 digits)."""


class Found(NamedTuple):
    """A ``FT.SEARCH … NOCONTENT`` reply: the total the search matched and the keys of this page,
    decoded, and as the reply spelled them: ``region`` holds their bulk strings
    (``$<length>\r\n<key>\r\n``) back to back, key ``i``'s at ``region[bounds[i]:bounds[i + 1]]``."""

    total: int
    keys: list[str]
    region: bytes
    bounds: list[int]

    def encoded(self, start: int, stop: int) -> bytes:
        """Keys ``start`` to ``stop`` as arguments of a command (their bulk strings)."""
        return self.region[self.bounds[start] : self.bounds[min(stop, len(self.keys))]]


class Replies:
    """The replies of one connection whose commands were sent by the caller, read in order."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._pos = 0

    def integers(self, count: int) -> list[int]:
        """The next ``count`` replies, each an integer (as ``PTTL`` gives)."""
        self._compact()
        values = self._elements(count)
        for value in values:
            if not isinstance(value, int):
                raise _unexpected(_BULK)
        return values  # type: ignore[return-value]  # all ints, checked above

    def search(self) -> Found:
        kind, count = self._head()
        if kind != _ARRAY or count < 1:
            raise _unexpected(kind)
        total = self._elements(1)[0]
        if not isinstance(total, int):
            raise _unexpected(_BULK)
        buf = self._buf
        base = pos = self._pos
        bounds: list[int] = []
        starts: list[int] = []
        for _ in range(count - 1):
            end = buf.find(b"\r\n", pos)
            if end < 0 or buf[pos] != _BULK:
                end = self._bulk_line(pos)
            bounds.append(pos - base)
            starts.append(end + 2 - base)
            pos = end + 4 + int(buf[pos + 1 : end])
            if len(buf) < pos:
                self._fill(pos)
        self._pos = pos
        region = bytes(buf[base:pos])
        bounds.append(len(region))
        return Found(total, _decoded(region, starts, bounds), region, bounds)

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
            raise _unexpected(kind)
        self._pos = end + 2
        return kind, int(buf[1:end])

    def _elements(self, count: int) -> list[tuple[int, int, int] | int | None]:
        """The next ``count`` elements of an array: ``(head, start, end)`` of a bulk string's
        ``$`` line and payload, an integer, or ``None`` for nil; the buffer then holds them all.
        (The hottest loop of a read from Redis: one ``find`` per element, no call unless the
        buffer runs short.)"""
        out: list[tuple[int, int, int] | int | None] = []
        buf = self._buf
        pos = self._pos
        for _ in range(count):
            end = buf.find(b"\r\n", pos)
            if end < 0:
                self._pos = pos
                end = self._line_end()
            kind = buf[pos]
            value = int(buf[pos + 1 : end])
            if kind == _BULK and value >= 0:
                start = end + 2
                stop = start + value
                if len(buf) < stop + 2:
                    self._fill(stop + 2)
                out.append((pos, start, stop))
                pos = stop + 2
            elif kind in (_INTEGER, _BULK):
                out.append(value if kind == _INTEGER else None)
                pos = end + 2
            else:
                raise _unexpected(kind)
        self._pos = pos
        return out

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


def _decoded(region: bytes, starts: list[int], bounds: list[int]) -> list[str]:
    """The keys of a search's ``region``, key ``i`` from ``starts[i]`` to two bytes (CR LF) short
    of ``bounds[i + 1]``: one ASCII decode of the region, sliced, else each key decoded (UTF-8,
    an undecodable byte kept as a surrogate)."""
    try:
        text = region.decode("ascii")
    except UnicodeDecodeError:
        return [region[s : e - 2].decode("utf-8", "surrogateescape") for s, e in zip(starts, bounds[1:])]
    return [text[s : e - 2] for s, e in zip(starts, bounds[1:])]


def _unexpected(kind: int) -> redis.RedisError:
    return redis.RedisError(f"unexpected reply type {chr(kind)!r} from the server")
