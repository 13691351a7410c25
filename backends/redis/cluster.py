"""Redis Cluster plumbing for the cluster driver (``cluster_store.py``): URLs, per-node pipelines, SCAN.

RedisSaver writes its keys without hash tags (docs/research-23.md §1), so one checkpoint's document,
its writes, its write registry and its latest pointer sit in different slots, usually on different
nodes. Nothing here therefore spans two slots in one command or transaction: no MULTI/EXEC, no
multi-key EVAL, no MGET and no JSON.MGET (which silently answers ``None`` for keys outside the first
key's slot). Each command names one key; :class:`NodeBatch` sends a batch of them as raw RESP, one
pipeline per primary (grouped by slot within it, in the order added), non-transactional. A reply
``MOVED``/``ASK`` (a slot migrating while we work) is retried alone through redis-py's cluster
client, which follows the redirect and refreshes its slot map.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster

from ckpt.backends.core.errors import UsageError
from ckpt.backends.redis.wire import command

_CHUNK = 1000
"""Commands per send on one node's connection (replies are read before the next chunk goes)."""
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_REDIRECTS = (redis.exceptions.MovedError, redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError)


def glob_escape(text: str) -> str:
    """``text`` matched literally by a SCAN ``MATCH`` pattern."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def connect(url: str, query: dict[str, str]) -> RedisCluster:
    """A cluster client for ``url`` (``redis+cluster://[user:pw@]host:port[,host:port...]``, or
    ``redis://host:port?cluster=true``): RESP2 and bytes replies, as RedisSaver needs its client
    (without ``protocol=2`` its second ``setup()`` fails on a cluster); every listed node is a
    startup node, the others are discovered."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    node_class: Any = ClusterNode  # untyped in redis-py
    nodes = []
    for entry in hosts.split(","):
        host, _, port = entry.strip().rpartition(":") if ":" in entry else (entry.strip(), "", "6379")
        try:
            nodes.append(node_class(unquote(host.strip("[]")) or "localhost", int(port or 6379)))
        except ValueError:
            raise UsageError(f"bad node {entry!r} in a Redis Cluster URL (host:port[,host:port...])") from None
    if not nodes or not hosts:
        raise UsageError("a Redis Cluster URL names at least one node: redis+cluster://host:port[,host:port...]")
    kwargs: dict[str, Any] = {
        "startup_nodes": nodes,
        "protocol": 2,
        "socket_connect_timeout": float(query.pop("socket_connect_timeout", 10)),
        "socket_timeout": float(query.pop("socket_timeout", 120)),
        "ssl": parts.scheme.lower().startswith("rediss"),
    }
    if username:
        kwargs["username"] = unquote(username)
    if password:
        kwargs["password"] = unquote(password)
    if query:
        raise UsageError(f"unknown option(s) for a Redis Cluster URL: {', '.join(sorted(query))}")
    return RedisCluster(**kwargs)


class NodeBatch:
    """Single-key commands, sent as one non-transactional pipeline per primary; ``run`` gives the
    replies in the order the commands were added (a ``ResponseError`` reply raises, after every
    node has answered: replies are never left half read on a connection)."""

    def __init__(self, client: RedisCluster) -> None:
        self._r: Any = client
        self._commands: list[tuple[str, tuple[bytes | str | int, ...]]] = []

    def add(self, key: str, *args: bytes | str | int) -> None:
        """A command whose one key is ``key`` (the slot it goes to)."""
        self._commands.append((key, args))

    def __len__(self) -> int:
        return len(self._commands)

    def run(self) -> list[Any]:
        commands, self._commands = self._commands, []
        by_node: dict[str, tuple[Any, list[tuple[int, int]]]] = {}
        for i, (key, _) in enumerate(commands):
            slot = self._r.keyslot(key)
            node = self._r.nodes_manager.get_node_from_slot(slot)
            by_node.setdefault(node.name, (node, []))[1].append((slot, i))
        replies: list[Any] = [None] * len(commands)
        for node, entries in by_node.values():
            order = [i for _, i in sorted(entries)]  # grouped by slot, added order within a slot
            self._on_node(node, [(i, commands[i][1]) for i in order], replies)
        failure: redis.ResponseError | None = None
        for i, reply in enumerate(replies):
            if isinstance(reply, _REDIRECTS):  # the slot moved: once more through the cluster client
                replies[i] = self._r.execute_command(*commands[i][1], target_nodes=self._owner(commands[i][0]))
            elif isinstance(reply, redis.ResponseError):
                failure = failure or reply
        if failure is not None:
            raise failure
        return replies

    def _owner(self, key: str) -> Any:
        self._r.nodes_manager.initialize()  # the slot map changed under us: read it again
        return self._r.get_node_from_key(key)

    def _on_node(
        self, node: Any, commands: list[tuple[int, tuple[bytes | str | int, ...]]], replies: list[Any]
    ) -> None:
        pool = self._r.get_redis_connection(node).connection_pool
        conn = pool.get_connection()
        failed = True
        try:
            for start in range(0, len(commands), _CHUNK):
                chunk = commands[start : start + _CHUNK]
                conn.send_packed_command([b"".join(command(*args) for _, args in chunk)])
                for i, _ in chunk:
                    try:
                        replies[i] = conn.read_response()
                    except redis.ResponseError as exc:  # the reply was read whole: go on with the next
                        replies[i] = exc
            failed = False
        finally:
            if failed:
                conn.disconnect()  # replies may be half read
            pool.release(conn)


def primaries(client: RedisCluster) -> list[Any]:
    cluster: Any = client  # untyped in redis-py
    return list(cluster.get_primaries())


def scan(client: RedisCluster, pattern: str) -> Iterator[list[str]]:
    """The keys matching ``pattern`` on every primary, a SCAN page at a time (a cursor per node)."""
    for node in primaries(client):
        conn: Any = client.get_redis_connection(node)
        cursor = 0
        while True:
            cursor, keys = conn.scan(cursor, match=pattern, count=1000)
            if keys:
                yield [k.decode("utf-8", "surrogateescape") for k in keys]
            if cursor == 0:
                break


def on_every_primary(client: RedisCluster, *args: Any) -> list[Any]:
    """One reply per primary for a command that names no key (``FT._LIST``, ``MODULE LIST``, ``INFO``)."""
    cluster: Any = client  # untyped in redis-py
    return [cluster.get_redis_connection(node).execute_command(*args) for node in primaries(client)]


def by_name(client: RedisCluster) -> Any:
    """A client whose ``execute_command(CMD, NAME, ...)`` goes to the primary owning ``NAME``'s slot:
    a search index lives there alone (``FT.CREATE``/``FT.INFO``/``FT.SEARCH`` elsewhere get MOVED)."""

    cluster: Any = client  # untyped in redis-py

    class _ByName:
        def execute_command(self, *args: Any) -> Any:
            return cluster.execute_command(*args, target_nodes=cluster.get_node_from_key(str(args[1])))

    return _ByName()
