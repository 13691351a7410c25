"""Batches of Redis commands as raw RESP, MULTI/EXEC blocks pipelined on one connection.

Profiled on a Redis migrate, redis-py's pipeline spent about as long packing arguments and
building reply objects as ckpt spent building the documents. Here each command is packed from
a byte template, and ``Pipeline`` keeps one block in flight: the next block is built while the
server runs the previous one (two processes, two cores). Each block is its own MULTI/EXEC, so
it is applied whole or not at all; every command in it is safe to repeat (``NX`` sets, ``ZADD``
of the same members, pointer and TTL updates), which is what makes a cut-short batch resumable.
Only redis-py's public connection API is used (``send_packed_command``, ``read_response``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import redis

_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def command(*args: bytes | str | int) -> bytes:
    """One command in RESP: an array of bulk strings (str as UTF-8, int in decimal, as redis-py sends them)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode("utf-8")
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(_bulk(arg))
    return b"".join(parts)


class Block:
    """One MULTI/EXEC: the packed commands and, per command, what its reply counts for."""

    def __init__(self) -> None:
        self.parts = [_MULTI]
        self.kinds: list[str] = []

    def add(self, kind: str, *args: bytes | str | int) -> None:
        self.parts.append(command(*args))
        self.kinds.append(kind)

    def json_set(self, kind: str, key: str, path: bytes, document: bytes, *, nx: bool) -> None:
        """``JSON.SET key path document [NX]``, from a template (the hottest command of a migrate)."""
        encoded = key.encode("utf-8")
        head = b"*5\r\n$8\r\nJSON.SET\r\n" if nx else b"*4\r\n$8\r\nJSON.SET\r\n"
        self.parts.append(head + _bulk(encoded) + _bulk(path) + _bulk(document) + (b"$2\r\nNX\r\n" if nx else b""))
        self.kinds.append(kind)

    def __len__(self) -> int:
        return len(self.kinds)


class Pipeline:
    """Blocks sent in order on one pooled connection; ``finish`` gives ``(kind, reply)`` per command.

    ``send`` leaves up to two blocks unread, so the server runs one while the caller sends or
    reads another. Any failure closes the connection (replies may be half read) and the pool
    opens a fresh one next time.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        try:
            self._conn: Any = self._pool.get_connection()
        except TypeError:  # redis-py < 5.3 wants a command name
            self._conn = self._pool.get_connection("MULTI")
        self._sent: deque[Block] = deque()
        self.results: list[tuple[str, Any]] = []

    def send(self, block: Block) -> None:
        if not block:
            return
        self._conn.send_packed_command([b"".join([*block.parts, _EXEC])])  # a list: bytes would be sent per item
        self._sent.append(block)
        while len(self._sent) > 2:
            self._receive()

    def finish(self) -> list[tuple[str, Any]]:
        """Read every reply still due; ``(kind, reply)`` for every command sent since the last ``finish``."""
        while self._sent:
            self._receive()
        done, self.results = self.results, []
        return done

    def _receive(self) -> None:
        block = self._sent.popleft()
        self._conn.read_response()  # MULTI: +OK
        for _ in block.kinds:
            self._conn.read_response()  # +QUEUED (a refused command raises here, like redis-py's pipeline)
        replies = self._conn.read_response()  # EXEC: one reply per command
        if not isinstance(replies, list) or len(replies) != len(block.kinds):
            raise redis.ResponseError(f"unexpected EXEC reply {str(replies)[:200]}")
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        self.results += zip(block.kinds, replies)

    def close(self, *, failed: bool) -> None:
        if failed:
            self._conn.disconnect()
        self._pool.release(self._conn)
