"""Redis against the official RedisSaver: what ckpt writes it reads and resumes, and back."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from ckpt.backends import open_store
from ckpt.backends.core.errors import ExitCode
from examples.graphs import build_graph, config
from tests.conftest import Cli, sqlite_url
from tests.servers import fresh_redis, postgres_schema
from tests.support import command_calls, official_saver, plain, populate_official, resume, tuple_view

THREADS = ("thread-1", "thread-2", "thread-3")


def _keys(url: str) -> list[tuple[str, str, str]]:
    with open_store(url) as store:
        return [(h.key.thread_id, h.key.checkpoint_ns, h.key.checkpoint_id) for h in store.headers()]


def _state(location: Path | str, thread: str) -> tuple[Any, Any]:
    with official_saver(location) as saver:
        state = build_graph(saver).get_state(config(thread))
        return plain(state.values), state.next


def test_sqlite_to_redis_reads_and_resumes_with_the_official_saver(cli: Cli, official_db: Path, db_copy: Path) -> None:
    with fresh_redis() as url:
        result = cli("migrate", sqlite_url(official_db), url, "--verify", "-o", "json")
        assert result.exit_code == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["verify"]["ok"] is True and report["checkpoints_written"] == 29
        keys = _keys(sqlite_url(official_db))
        assert tuple_view(url, keys) == tuple_view(official_db, keys)
        assert _state(url, "thread-3") == _state(official_db, "thread-3")
        assert _state(url, "thread-3")[1] == ("approve",)
        after_redis, after_sqlite = resume(url, "thread-3"), resume(db_copy, "thread-3")
        assert plain(after_redis["messages"])[:-1] == plain(after_sqlite["messages"])[:-1]
        assert after_redis["messages"][-1].content == "approval: yes"


def test_redis_written_by_the_saver_to_sqlite_and_postgres(cli: Cli, tmp_path: Path) -> None:
    with fresh_redis() as url, postgres_schema() as (pg_url, pg_libpq):
        populate_official(url)
        keys = _keys(url)
        assert len(keys) == 29
        target = tmp_path / "from-redis.db"
        hidden = _writes_hidden_by_redis_saver(url)
        for destination, location in ((sqlite_url(target), target), (pg_url, pg_libpq)):
            assert cli("migrate", url, destination, "--verify").exit_code == 0
            got, want = tuple_view(location, keys), tuple_view(url, keys)
            for row_got, row_want in zip(got, want):
                if tuple(row_want[:3]) in hidden:  # RedisSaver hides them; ckpt keeps them
                    assert row_want[6] == [] and row_got[6]
                    row_got[6] = []
            assert got == want
            assert _state(location, "thread-3") == _state(url, "thread-3")
            assert resume(location, "thread-3")["messages"][-1].content == "approval: yes"


def _writes_hidden_by_redis_saver(url: str) -> set[tuple[str, str, str]]:
    """Checkpoints whose writes exist but whose ``has_writes`` flag RedisSaver left unset."""
    client = redis.Redis.from_url(url, decode_responses=True)
    hidden = set()
    for key in client.scan_iter(match="checkpoint:*"):
        doc = client.json().get(key)
        ns = "" if doc["checkpoint_ns"] == "__empty__" else doc["checkpoint_ns"]
        pattern = f"checkpoint_write:{doc['thread_id']}:{doc['checkpoint_ns']}:{doc['checkpoint_id']}:*"
        if not doc["has_writes"] and next(client.scan_iter(match=pattern, count=1000), None):
            hidden.add((doc["thread_id"], ns, doc["checkpoint_id"]))
    return hidden


def test_redis_to_jsonl_to_redis_keeps_every_key(cli: Cli, tmp_path: Path) -> None:
    dump = tmp_path / "redis.jsonl"
    with fresh_redis() as url:
        populate_official(url)
        client = redis.Redis.from_url(url, decode_responses=True)
        before = _snapshot(client)
        assert cli("migrate", url, str(dump)).exit_code == 0
        client.flushall()
        assert cli("migrate", str(dump), url, "--verify").exit_code == 0
        after = _snapshot(client)
        assert sorted(after) == sorted(before)
        assert after == before


def _snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key the saver reads, with its value (checkpoint_ts is a put-time clock, not data)."""
    out: dict[str, Any] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == "ReJSON-RL":
            doc = client.json().get(key)
            doc.pop("checkpoint_ts", None)
            out[key] = doc
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "string":
            out[key] = client.get(key)
    return out


def test_write_with_invalid_json_is_reported_with_its_key(cli: Cli, official_db: Path) -> None:
    with fresh_redis() as url:
        cli("migrate", sqlite_url(official_db), url)
        client = redis.Redis.from_url(url, decode_responses=True)
        key = next(
            k
            for k in client.scan_iter(match="checkpoint_write:thread-1:*")
            if client.json().get(k, "$.type") == ["json"]
        )
        client.json().set(key, "$.blob", "e25vdCBqc29u")  # base64 of '{not json'
        result = cli("list", url, "--checkpoints")
        assert result.exit_code == ExitCode.DATA
        assert result.stderr.startswith(f"error: write {key} holds invalid JSON")


def test_thread_id_with_a_colon_is_refused(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from ckpt.backends import CheckpointKey
    from ckpt.backends.core.iterate import batched

    source = tmp_path / "colon.db"
    with open_store(sqlite_url(official_db)) as s, open_store(sqlite_url(source), write=True) as t:
        for batch in batched(
            (replace(r, key=CheckpointKey("user:42", r.key.checkpoint_ns, r.key.checkpoint_id)) for r in s.records()),
            100,
        ):
            t.write(batch)
    with fresh_redis() as url:
        result = cli("migrate", sqlite_url(source), url)
        assert result.exit_code == ExitCode.DATA
        assert "thread ids containing ':' cannot be stored in RedisSaver keys unambiguously" in result.stderr


def test_wrong_password_is_one_line_without_the_password(cli: Cli) -> None:
    from tests.servers import server_url

    url = server_url("redis").replace("redis://", "redis://:hunter2@")
    result = cli("list", url)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "hunter2" not in result.stderr and result.stderr.startswith("error: cannot connect to redis://:***@")


def test_server_without_the_modules_is_named(cli: Cli, tmp_path: Path) -> None:
    binary = os.environ.get("CKPT_TEST_VALKEY_SERVER") or shutil.which("valkey-server") or shutil.which("redis-server")
    if not binary:
        pytest.fail("no valkey/redis server binary to start a module-less server (scripts/services.sh exports it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        result = cli("list", f"redis://127.0.0.1:{port}")
        assert result.exit_code == ExitCode.UNAVAILABLE
        assert result.stderr == (
            f"error: redis://127.0.0.1:{port} lacks the Redis module(s) RedisJSON, RediSearch that RedisSaver needs\n"
        )
    finally:
        server.terminate()
        server.wait()


def test_ttl_is_set_shown_and_preserved(cli: Cli, official_db: Path) -> None:
    from tests.servers import redis_prefix

    with redis_prefix() as first, redis_prefix() as second:
        client = redis.Redis.from_url(first.split("?")[0], decode_responses=True)
        assert cli("migrate", sqlite_url(official_db), first, "--ttl", "10").exit_code == 0
        prefix = first.split("checkpoint_prefix=")[1].split("&")[0]
        ttls = [client.pttl(k) for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        assert ttls and all(0 < t <= 600_000 for t in ttls)
        rows = json.loads(cli("list", first, "-o", "json").stdout)
        assert [r["keys_without_ttl"] for r in rows] == [0, 0, 0]
        assert cli("migrate", first, second).exit_code == 0  # Redis → Redis keeps the TTLs
        other = second.split("checkpoint_prefix=")[1].split("&")[0]
        kept = [client.pttl(k) for k in client.scan_iter(match=f"{other}:*", count=1000)]
        assert kept and all(500_000 < t <= 600_000 for t in kept)


def test_keys_without_ttl_are_counted(cli: Cli, official_db: Path) -> None:
    from tests.servers import redis_prefix

    with redis_prefix() as url:
        cli("migrate", sqlite_url(official_db), url)
        rows = json.loads(cli("list", url, "-o", "json").stdout)
        assert [r["keys_without_ttl"] for r in rows] == [r["checkpoints"] for r in rows] == [10, 10, 9]


def test_ttl_needs_a_redis_target(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    result = cli("migrate", sqlite_url(official_db), sqlite_url(tmp_path / "x.db"), "--ttl", "5")
    assert result.exit_code == ExitCode.USAGE
    assert (
        result.stderr
        == "error: --ttl applies to redis://, rediss://, redis+cluster://, rediss+cluster:// stores only\n"
    )


def test_lossy_conversions_are_reported(cli: Cli, official_db: Path) -> None:
    from tests.servers import redis_prefix

    with redis_prefix() as url:
        result = cli("migrate", sqlite_url(official_db), url, "-o", "json")
        losses = json.loads(result.stdout)["lossy_conversions"]
        assert losses["datetime → ISO string"] > 0
        assert any("pydantic model" in kind for kind in losses)
        human = cli("migrate", sqlite_url(official_db), url)
        assert "nothing new to copy" in human.stderr


def test_layout_of_0_0_x_with_blob_documents_and_plural_indexes(cli: Cli, official_db: Path) -> None:
    """0.0.x: channel values in checkpoint_blob docs; <= 0.2: indexes named checkpoints/checkpoint_writes."""
    import base64

    import orjson

    from ckpt.formats.semantic import semantic_form

    with fresh_redis() as url:
        cli("migrate", sqlite_url(official_db), url)
        with open_store(url) as store:
            current = [semantic_form(r) for r in store.records()]
        client = redis.Redis.from_url(url, decode_responses=True, protocol=2)
        for key in list(client.scan_iter(match="checkpoint:*")):
            doc = client.json().get(key)
            values = doc["checkpoint"].pop("channel_values")
            for channel, value in values.items():
                version = doc["checkpoint"]["channel_versions"][channel]
                blob = {"type": "json", "blob": base64.b64encode(orjson.dumps(value)).decode()}
                if isinstance(value, dict) and set(value) == {"__bytes__"}:
                    blob = {"type": "bytes", "blob": value["__bytes__"]}
                client.json().set(
                    f"checkpoint_blob:{doc['thread_id']}:{doc['checkpoint_ns']}:{channel}:{version}", "$", blob
                )
            client.json().set(key, "$", doc)
        for old, new in (("checkpoint", "checkpoints"), ("checkpoint_write", "checkpoint_writes")):
            info = client.execute_command("FT.INFO", old)
            client.execute_command("FT.DROPINDEX", old)
            attributes = dict(zip(info[::2], info[1::2]))["attributes"]
            schema = []
            for attribute in attributes:
                spec = dict(zip(attribute[::2], attribute[1::2]))
                schema += [spec["identifier"], "AS", spec["attribute"], spec["type"]]
            client.execute_command("FT.CREATE", new, "ON", "JSON", "PREFIX", 1, f"{old}:", "SCHEMA", *schema)
        for name in ("checkpoints", "checkpoint_writes"):  # new indexes scan existing keys in the background
            deadline = time.monotonic() + 30
            while dict(zip(*[iter(client.execute_command("FT.INFO", name))] * 2)).get("indexing") not in (0, "0"):
                assert time.monotonic() < deadline, f"index {name} never finished scanning"
                time.sleep(0.05)
        with open_store(url) as store:
            assert store.layout()["version"].startswith("<=0.2")
            assert [semantic_form(r) for r in store.records()] == current


def test_shallow_saver_keys_are_refused(cli: Cli, tmp_path: Path) -> None:
    from langgraph.checkpoint.redis.shallow import ShallowRedisSaver

    from ckpt.backends import open_store
    from ckpt.backends.core.errors import NotAStoreError
    from ckpt.backends.ops.parallel import migrate
    from ckpt.backends.redis import schema
    from ckpt.backends.redis.store import RedisStore
    from examples.graphs import populate

    schema._CLEAN.clear()  # what earlier tests of this process found
    with fresh_redis() as url:
        with ShallowRedisSaver.from_conn_string(url) as saver:
            saver.setup()
            populate(saver, threads=1)
        for jobs in (1, 2):  # the library's copy, in one process or with workers
            schema._CLEAN.clear()
            with pytest.raises(NotAStoreError, match="holds ShallowRedisSaver keys"):
                migrate(url, sqlite_url(tmp_path / f"lib-{jobs}.db"), open_store, jobs=jobs)
            assert not (tmp_path / f"lib-{jobs}.db").exists()  # refused before the target was made
        result = cli("list", url)
        assert result.exit_code == ExitCode.DATA
        assert "holds ShallowRedisSaver keys" in result.stderr
        # by the parent of --jobs workers, which reopen the store without the check (a SCAN of the server)
        result = cli("migrate", url, sqlite_url(tmp_path / "copy.db"), "--jobs", "2")
        assert result.exit_code == ExitCode.DATA
        assert "holds ShallowRedisSaver keys" in result.stderr
        assert not (tmp_path / "copy.db").exists()
        with RedisStore.reopen(url) as reopened:
            assert reopened.layout()["saver"] == "langgraph-checkpoint-redis"


def test_a_clean_key_space_is_not_scanned_again_while_its_key_count_stays() -> None:
    from ckpt.backends.redis import schema
    from ckpt.backends.redis.schema import holds_shallow_keys

    schema._CLEAN.clear()  # what earlier tests of this process found

    def scans(client: redis.Redis) -> int:
        return command_calls(client, "scan")

    with fresh_redis() as url:
        client = redis.Redis.from_url(url)
        client.set("some:key", "1")
        before = scans(client)
        assert not holds_shallow_keys(client)
        assert scans(client) > before
        before = scans(client)
        assert not holds_shallow_keys(client)  # ckpt migrate's second open: no SCAN
        assert scans(client) == before
        client.zadd("write_registry:t1:__empty__:shallow", {"k": 1})  # one key more: scanned again
        assert holds_shallow_keys(client)
        assert scans(client) > before
        client.close()


def test_key_prefix_option_reads_and_writes_custom_prefixes(cli: Cli, official_db: Path) -> None:
    with fresh_redis() as url:
        assert cli("--key-prefix", "agents", "migrate", sqlite_url(official_db), url).exit_code == 0
        client = redis.Redis.from_url(url, decode_responses=True)
        assert any(client.scan_iter(match="agents:thread-1:*")) and not any(client.scan_iter(match="checkpoint:*"))
        assert any(client.scan_iter(match="agents_write:thread-1:*"))
        rows = json.loads(cli("--key-prefix", "agents", "list", url, "-o", "json").stdout)
        assert [r["thread_id"] for r in rows] == ["thread-1", "thread-2", "thread-3"]
        assert cli("list", url).exit_code == ExitCode.DATA  # default prefix: no RedisSaver data there
