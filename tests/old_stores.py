"""Stores written by REAL old releases of the official savers (tests/fixtures/old, issue #20).

``scripts/old_stores/make.py`` made each directory by running the old saver; here each is put back
into a real store of its kind so ckpt (and the current official saver) can be run on it:

    with loaded(fixture_dir) as url: ...      # a ckpt URL; the store is dropped afterwards
    expected(fixture_dir)                     # the old saver's own view (scenario.view)
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.servers import fresh_redis, server_url

ROOT = Path(__file__).resolve().parent
FIXTURES_DIR = ROOT / "fixtures" / "old"
FIXTURES: list[Path] = (
    sorted(p for p in FIXTURES_DIR.iterdir() if (p / "manifest.json").exists()) if FIXTURES_DIR.is_dir() else []
)
SCENARIO = ROOT.parent / "scripts" / "old_stores" / "scenario.py"


def manifest(fixture_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fixture_dir / "manifest.json").read_text(encoding="utf-8"))
    return data


def expected(fixture_dir: Path) -> dict[str, Any]:
    """The old saver's view (scenario.view) of the store it wrote."""
    data: dict[str, Any] = json.loads((fixture_dir / "expected.json").read_text(encoding="utf-8"))
    return data


@contextmanager
def loaded(fixture_dir: Path) -> Iterator[str]:
    """Put the fixture into a fresh real store; yield its ckpt URL; remove the store afterwards."""
    kind = manifest(fixture_dir)["kind"]
    loaders = {"sqlite": _sqlite, "postgres": _postgres, "redis": _redis, "mongodb": _mongodb}
    if kind not in loaders:
        import pytest

        pytest.skip(f"{kind} fixtures have no live store to load into here")
    with loaders[kind](fixture_dir) as url:
        yield url


@contextmanager
def _sqlite(fixture_dir: Path) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.sqlite"
        shutil.copyfile(fixture_dir / "store.sqlite", path)  # a copy: ckpt or a saver may write to it
        yield f"sqlite:///{path}"


def _with_database(base: str, database: str) -> str:
    """``base`` (a server URL as in tests/servers.py) pointing at another database."""
    head, sep, query = base.partition("?")
    scheme, _, rest = head.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{database}{sep}{query}"


def _plain_sql(dump: str) -> str:
    """Without psql meta-commands (pg_dump >= 15.14 writes \\restrict lines), which psycopg cannot run."""
    return "".join(line for line in dump.splitlines(keepends=True) if not line.startswith("\\"))


@contextmanager
def _postgres(fixture_dir: Path) -> Iterator[str]:
    import psycopg

    base = server_url("postgres")
    database = f"ckpt_old_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    url = _with_database(base, database)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_plain_sql((fixture_dir / "store.sql").read_text(encoding="utf-8")))
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _decoded(value: dict[str, str]) -> bytes:
    return base64.b64decode(value["base64"]) if "base64" in value else value["text"].encode("utf-8")


def restore_redis(client: Any, dump: dict[str, Any]) -> None:
    """Recreate the indexes first (so documents are indexed as they land), then every key."""
    for args in dump["indexes"]:
        client.execute_command("FT.CREATE", *args)
    for entry in dump["keys"]:
        key, kind, value = entry["key"], entry["type"], entry["value"]
        if kind == "ReJSON-RL":
            client.execute_command("JSON.SET", key, "$", value)
        elif kind == "zset":
            client.zadd(key, {member: score for member, score in value})
        elif kind == "string":
            client.set(key, _decoded(value))
        elif kind == "hash":
            client.hset(key, mapping={k: _decoded(v) for k, v in value.items()})
        if entry["pttl"] and entry["pttl"] > 0:
            client.pexpire(key, entry["pttl"])


def _settle(client: Any, patience: float = 30.0) -> None:
    """Wait until no index is still indexing in the background (``ckpt upgrade`` creates indexes over
    existing documents; a run killed meanwhile leaves one busy). Dropping an index or flushing the
    server while RediSearch reindexes has deadlocked valkey-server here (main thread on a futex)."""
    import time

    deadline = time.monotonic() + patience
    for index in client.execute_command("FT._LIST"):
        while time.monotonic() < deadline:
            reply = client.execute_command("FT.INFO", index)
            info = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
            busy = info.get(b"indexing", info.get("indexing", 0))
            if str(busy.decode() if isinstance(busy, bytes) else busy) in ("0", "0.0"):
                break
            time.sleep(0.05)


def _drop_indexes(client: Any) -> None:
    _settle(client)
    # FLUSHALL leaves RediSearch index definitions behind on some servers
    for index in client.execute_command("FT._LIST"):
        with suppress(Exception):
            client.execute_command("FT.DROPINDEX", index)


@contextmanager
def _redis(fixture_dir: Path) -> Iterator[str]:
    import redis

    dump = json.loads((fixture_dir / "store.json").read_text(encoding="utf-8"))
    with fresh_redis() as url:
        client = redis.Redis.from_url(url)
        try:
            _drop_indexes(client)
            restore_redis(client, dump)
            yield url
        finally:
            _drop_indexes(client)
            client.close()


def restore_mongo(database: Any, dump: dict[str, Any]) -> None:
    from bson import json_util

    for name, content in dump["collections"].items():
        collection = database[name]
        documents = json_util.loads(json.dumps(content["documents"]))
        if documents:
            collection.insert_many(documents)
        for index in json_util.loads(json.dumps(content["indexes"])):
            if index["name"] == "_id_":
                continue
            options = {k: v for k, v in index.items() if k in ("name", "unique", "expireAfterSeconds", "sparse")}
            collection.create_index(list(index["key"].items()), **options)


@contextmanager
def _mongodb(fixture_dir: Path) -> Iterator[str]:
    import pymongo

    base = server_url("mongodb")
    dump = json.loads((fixture_dir / "store.json").read_text(encoding="utf-8"))
    name = f"ckpt_old_{uuid.uuid4().hex[:12]}"
    client: Any = pymongo.MongoClient(base)
    try:
        restore_mongo(client[name], dump)
        yield _with_database(base, name)
    finally:
        client.drop_database(name)
        client.close()


def dump_store(url: str) -> Any:
    """Everything the store holds, in a comparable form (TTLs and Mongo's ``_id`` aside)."""
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url, decode_responses=True)
        found = {}
        for key in sorted(client.scan_iter(count=1000)):
            kind = client.type(key)
            if kind == "ReJSON-RL":
                found[key] = client.execute_command("JSON.GET", key)
            elif kind == "zset":
                found[key] = client.zrange(key, 0, -1, withscores=True)
            elif kind == "string":
                found[key] = client.get(key)
        client.close()
        return found
    from urllib.parse import urlsplit

    import pymongo

    parts = urlsplit(url)
    client = pymongo.MongoClient(f"{parts.scheme}://{parts.netloc}/?{parts.query}")
    database = client[parts.path.strip("/")]
    dump = {
        name: sorted(json.dumps({k: repr(v) for k, v in doc.items() if k != "_id"}, sort_keys=True) for doc in docs)
        for name in sorted(database.list_collection_names())
        for docs in [database[name].find()]
    }
    client.close()
    return dump
