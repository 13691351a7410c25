"""Redis: the official ``RedisStore`` (langgraph-checkpoint-redis 0.5.2) over the test server.

RedisStore's key prefixes and index names are constructor arguments (``store_prefix``,
``vector_prefix``), so each place gets its own: tests run side by side on the shared server, and
the cleanup drops exactly that place's two indexes and keys (never FLUSHALL).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from tests.memory.kinds import MemoryKind
from tests.servers import server_url


def split(url: str) -> tuple[str, str, str]:
    """A place's ckpt URL → (server URL, store_prefix, vector_prefix)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query="")), query["store_prefix"], query["vector_prefix"]


@contextmanager
def place(tmp_path: Path) -> Iterator[str]:
    import redis

    base = server_url("redis")
    prefix = f"mem{uuid.uuid4().hex[:10]}"
    try:
        yield f"{base}?store_prefix={prefix}&vector_prefix={prefix}_vectors"
    finally:
        client = redis.Redis.from_url(base)
        for index in (prefix, f"{prefix}_vectors"):
            with suppress(redis.ResponseError):
                client.execute_command("FT.DROPINDEX", index)
        for pattern in (f"{prefix}:*", f"{prefix}_vectors:*", f"ckpt_lock:{prefix}:*"):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
        client.close()


@contextmanager
def official(url: str, index: Any = None) -> Iterator[Any]:
    from langgraph.store.redis import RedisStore

    base, store_prefix, vector_prefix = split(url)
    with RedisStore.from_conn_string(
        base, store_prefix=store_prefix, vector_prefix=vector_prefix, index=index
    ) as store:
        store.setup()
        yield store


KIND = MemoryKind(
    "redis",
    place,
    official,
    faults={
        "read-back": (
            "RedisStore.get returns None for every multi-label namespace and for punctuation in a label "
            "(its exact-phrase query on the TEXT prefix field finds nothing; docs/memory-layouts.md §3 bug 1)"
        ),
        "ttl": (
            "RedisStore keeps a TTL only as the key's expiry (it pops ttl_minutes and expires_at before "
            "writing): ttl_minutes is gone, expires_at is the key's PEXPIRETIME"
        ),
        "expired": (
            "RedisStore never holds expired items: a TTL is the key's expiry, which Redis enforces itself "
            "(a 0.01-minute TTL is EXPIRE 0: deleted at once), so prune --expired has nothing to find"
        ),
    },
)
