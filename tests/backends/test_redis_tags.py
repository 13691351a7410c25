"""Issue #19 item 18: Redis refuses exactly the thread ids (and namespaces) RedisSaver cannot read back.

Each class is first measured on the official RedisSaver (it writes the id itself, then
``RedisSaver.list`` searches for it), so the refusal list is what RediSearch's TAG fields do, not a
guess; then ``ckpt migrate`` is shown to refuse the unreadable ids before writing anything (or to
skip them with ``--skip-bad``) and to write the readable ones so that RedisSaver lists them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from ckpt.backends import CheckpointKey, open_store
from ckpt.backends.core.errors import ExitCode
from tests.conftest import Cli, sqlite_url
from tests.servers import server_url

UNREADABLE = {
    "leading space": " lead",
    "trailing space": "trail ",
    "newline": "nl\nx",
    "tab": "tab\tx",
    "control U+0001": "ctl\x01x",
    "escape sequence": "\x1b[31mred\x1b[0m",
    "DEL": "del\x7fx",
    "comma": "a,b",
    "5000 characters": "x" * 5000,
    "4097 bytes": "x" * 4097,
    "4098 UTF-8 bytes": "ü" * 2049,
}
READABLE = {
    "inner space": "mid dle",
    "punctuation": "a;b|{c}\"d'e\\f*g-h.i",
    "unicode spaces": "\u00a0nbsp\u3000x\u2028",
    "non-ASCII": "üni🙂",
    "4096 bytes": "x" * 4096,
    "4096 UTF-8 bytes": "🙂" * 1024,
}


@contextmanager
def _official_saver() -> Iterator[Any]:
    from langgraph.checkpoint.redis import RedisSaver

    base = server_url("redis")
    prefix = f"tag{uuid.uuid4().hex[:10]}"
    with RedisSaver.from_conn_string(
        base, checkpoint_prefix=prefix, checkpoint_write_prefix=f"{prefix}_write"
    ) as saver:
        saver.setup()
        try:
            yield saver
        finally:
            _drop(base, prefix)


def _drop(base: str, prefix: str) -> None:
    client = redis.Redis.from_url(base)
    for index in (prefix, f"{prefix}_write"):
        with suppress(redis.ResponseError):
            client.execute_command("FT.DROPINDEX", index, "DD")
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


def _listed_by_official_saver(saver: Any, thread_id: str, ns: str = "") -> int:
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
    return len(list(saver.list(config)))


@pytest.mark.parametrize(("name", "thread_id"), [*UNREADABLE.items(), *READABLE.items()], ids=str)
def test_the_refusal_list_is_what_redissaver_cannot_read_back(name: str, thread_id: str) -> None:
    """RedisSaver itself writes the id; whether its own list() finds it again decides the class."""
    from langgraph.checkpoint.base import empty_checkpoint

    from ckpt.backends.redis.schema import tag_problem

    with _official_saver() as saver:
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        saver.put(config, empty_checkpoint(), {"source": "input", "step": 1}, {})
        readable = _listed_by_official_saver(saver, thread_id) == 1
    assert readable == (name in READABLE)
    assert (tag_problem(thread_id) is None) == readable


def test_namespaces_follow_the_same_rules() -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    from ckpt.backends.redis.schema import tag_problem

    with _official_saver() as saver:
        for i, ns in enumerate([" lead", "a,b", "c\x01x", "x" * 4097, "node:abc", "mid dle"]):
            config = {"configurable": {"thread_id": f"ns-{i}", "checkpoint_ns": ns}}
            saver.put(config, empty_checkpoint(), {"source": "input", "step": 1}, {})
            readable = _listed_by_official_saver(saver, f"ns-{i}", ns) == 1
            assert (tag_problem(ns) is None) == readable, repr(ns)


def _source_with_threads(official_db: Path, tmp_path: Path, ids: list[str]) -> Path:
    """The example store with thread-1 copied under each id in ``ids`` (and nothing else)."""
    source = tmp_path / "ids.db"
    with open_store(sqlite_url(official_db)) as s, open_store(sqlite_url(source), write=True) as t:
        records = list(s.records())
        for thread_id in ids:
            t.write(
                [
                    replace(r, key=CheckpointKey(thread_id, r.key.checkpoint_ns, r.key.checkpoint_id))
                    for r in records
                    if r.key.thread_id == "thread-1"
                ]
            )
    return source


@contextmanager
def _target() -> Iterator[tuple[str, str]]:
    base = server_url("redis")
    prefix = f"tag{uuid.uuid4().hex[:10]}"
    try:
        yield f"{base}?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write", prefix
    finally:
        _drop(base, prefix)


def _keys(prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(server_url("redis"))
    try:
        return list(client.scan_iter(match=f"{prefix}*", count=1000))
    finally:
        client.close()


@pytest.mark.parametrize(("name", "thread_id"), list(UNREADABLE.items()), ids=str)
def test_migrate_refuses_an_unreadable_thread_id_before_writing(
    cli: Cli, official_db: Path, tmp_path: Path, name: str, thread_id: str
) -> None:
    source = _source_with_threads(official_db, tmp_path, [thread_id])
    with _target() as (url, prefix):
        result = cli("migrate", sqlite_url(source), url)
        assert result.exit_code == ExitCode.DATA, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "never found by its search index" in result.stderr
        assert "\x1b" not in result.stderr and "\x01" not in result.stderr  # shown as repr, never raw
        assert _keys(prefix) == []


def test_skip_bad_copies_around_them_and_redissaver_lists_the_rest(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    from langgraph.checkpoint.redis import RedisSaver

    ids = [*UNREADABLE.values(), *READABLE.values()]
    source = _source_with_threads(official_db, tmp_path, ids)
    per_thread = len(_records_of(official_db, "thread-1"))
    with _target() as (url, prefix):
        result = cli("migrate", sqlite_url(source), url, "--skip-bad", "-o", "json")
        report = json.loads(result.stdout)
        assert report["checkpoints_written"] == per_thread * len(READABLE)
        assert len(report["bad_records"]) == per_thread * len(UNREADABLE)
        assert result.exit_code != 0 and "never found by its search index" in result.stderr
        with RedisSaver.from_conn_string(
            server_url("redis"), checkpoint_prefix=prefix, checkpoint_write_prefix=f"{prefix}_write"
        ) as saver:
            for thread_id in READABLE.values():
                # list() with checkpoint_ns "" finds the thread's checkpoints of every namespace
                assert _listed_by_official_saver(saver, thread_id) == per_thread, repr(thread_id)
        listed = cli("list", url, "-o", "json")
        threads = {row["thread_id"] for row in json.loads(listed.stdout)}
        assert threads == set(READABLE.values())


def _records_of(db: Path, thread_id: str) -> list[Any]:
    with open_store(sqlite_url(db)) as store:
        return [r for r in store.records() if r.key.thread_id == thread_id]
