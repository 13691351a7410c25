"""Real servers for the tests: URLs come from ``scripts/services.sh env``; absent ones skip, loudly.

A test that needs a server it does not have is skipped with the reason; with
``CKPT_REQUIRE_BACKENDS=1`` (CI sets it) the skip becomes a failure, so a missing server can
never pass for coverage.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import quote

import pytest

SERVER_URL_VARS = {
    "postgres": "CKPT_TEST_POSTGRES_URL",
    "redis": "CKPT_TEST_REDIS_URL",
    "mongodb": "CKPT_TEST_MONGODB_URL",
    "pgvector": "CKPT_TEST_PGVECTOR_URL",  # a PostgreSQL with the pgvector extension (services.sh start pgvector)
    "rcluster": "CKPT_TEST_REDIS_CLUSTER_URL",  # a Redis Cluster (services.sh start rcluster)
    "redis2": "CKPT_TEST_REDIS2_URL",  # a second Redis server (services.sh start redis2): Redis → Redis
}


def server_url(name: str) -> str:
    var = SERVER_URL_VARS[name]
    url = os.environ.get(var)
    if not url:
        which = f" {name}" if name in ("pgvector", "rcluster", "redis2") else ""  # not in services.sh's default set
        message = f'{name}: {var} is not set (start it with: eval "$(bash scripts/services.sh start{which})")'
        if os.environ.get("CKPT_REQUIRE_BACKENDS"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@contextmanager
def postgres_schema(server: str = "postgres") -> Iterator[tuple[str, str]]:
    """A fresh schema; yields (ckpt URL with ?schema=, libpq URL whose search_path is that schema).

    On the ``pgvector`` server the extension lives in ``public`` (services.sh creates it there, as
    ``CREATE EXTENSION`` does in a default database), so the libpq search_path is that schema, then
    ``public``: how an app whose store is in its own schema sees pgvector's types."""
    import psycopg

    base = server_url(server)
    schema = f"ckpt_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    path = f"{schema},public" if server == "pgvector" else schema
    try:
        yield f"{base}{separator}schema={schema}", f"{base}{separator}options={quote(f'-csearch_path={path}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A ckpt URL whose key prefixes (and so search indexes) no other test uses."""
    import redis

    base = server_url("redis")
    prefix = f"ck{uuid.uuid4().hex[:10]}"
    try:
        yield f"{base}?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
    finally:
        client = redis.Redis.from_url(base)
        for index in (prefix, f"{prefix}_write"):
            with suppress(redis.ResponseError):
                client.execute_command("FT.DROPINDEX", index, "DD")
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


@contextmanager
def fresh_redis(server: str = "redis") -> Iterator[str]:
    """The whole Redis server, emptied (for tests that run the official RedisSaver on default keys);
    ``redis2``: the second server (a Redis → Redis copy whose stores must not share registries)."""
    import redis

    base = server_url(server)
    client = redis.Redis.from_url(base)
    client.flushall()
    try:
        yield base
    finally:
        client.flushall()
        client.close()


@contextmanager
def mongo_database() -> Iterator[str]:
    """A ckpt URL naming a database no other test uses; dropped afterwards."""
    import pymongo

    base = server_url("mongodb")
    name = f"ckpt_test_{uuid.uuid4().hex[:12]}"
    parts = base.split("/?", 1)
    url = f"{parts[0].rstrip('/')}/{name}" + (f"?{parts[1]}" if len(parts) > 1 else "")
    try:
        yield url
    finally:
        client: pymongo.MongoClient = pymongo.MongoClient(base)
        client.drop_database(name)
        client.close()


@contextmanager
def fresh_redis_cluster() -> Iterator[str]:
    """The test Redis Cluster (services.sh rcluster: its own ports, no other user), every primary
    emptied of keys and search indexes; for tests that run the official RedisSaver in cluster mode."""
    from tests.support import cluster_client

    url = server_url("rcluster")
    client = cluster_client(url)

    def empty() -> None:
        for node in client.get_primaries():
            conn = client.get_redis_connection(node)
            for index in conn.execute_command("FT._LIST"):
                conn.execute_command("FT.DROPINDEX", index)
            conn.flushall()

    empty()
    try:
        yield url
    finally:
        empty()
        client.close()


@contextmanager
def redis_cluster_prefix() -> Iterator[str]:
    """A ckpt cluster URL whose key prefixes (and so search indexes) no other test uses."""
    from tests.support import cluster_client

    base = server_url("rcluster")
    prefix = f"ck{uuid.uuid4().hex[:10]}"
    client = cluster_client(base)
    try:
        yield f"{base}/?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
    finally:
        for node in client.get_primaries():
            conn = client.get_redis_connection(node)
            for index in (prefix, f"{prefix}_write"):
                with suppress(redis_error()):
                    conn.execute_command("FT.DROPINDEX", index)
            for key in conn.scan_iter(match=f"{prefix}*", count=1000):
                conn.delete(key)
            for key in conn.scan_iter(match="write_keys_zset:*", count=1000):
                if any(m.startswith(prefix.encode()) for m in conn.zrange(key, 0, -1)):
                    conn.delete(key)
        client.close()


def redis_error() -> type[Exception]:
    import redis

    return redis.ResponseError
