"""prune on stores written by the official savers: exactly the plan, safe, idempotent, locked."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends import CheckpointKey, CheckpointRecord, open_store
from ckpt.backends.core.errors import ExitCode
from ckpt.backends.core.iterate import batched
from tests.conftest import Cli, sqlite_url
from tests.servers import fresh_redis, mongo_database, postgres_schema
from tests.support import populate_official, resume, tuple_view

KINDS = ["sqlite", "postgres", "redis", "mongodb"]


@contextmanager
def official_store(kind: str, tmp_path: Path) -> Iterator[tuple[str, Path | str]]:
    """(ckpt URL, oracle location) of a store the official saver of ``kind`` wrote from real graphs."""
    with ExitStack() as stack:
        if kind == "sqlite":
            url, location = sqlite_url(tmp_path / "s.db"), tmp_path / "s.db"
        elif kind == "postgres":
            url, location = stack.enter_context(postgres_schema())
        elif kind == "redis":
            url = location = stack.enter_context(fresh_redis())
        else:
            url = location = stack.enter_context(mongo_database())
        populate_official(location)
        yield url, location


def _census(url: str) -> tuple[int, int, list[tuple[str, str, str]]]:
    with open_store(url) as store:
        records = list(store.records())
    return (
        len(records),
        sum(len(r.writes) for r in records),
        [(r.key.thread_id, r.key.checkpoint_ns, r.key.checkpoint_id) for r in records],
    )


@pytest.mark.parametrize("kind", KINDS)
def test_keep_last_deletes_exactly_the_plan_and_the_saver_still_resumes(cli: Cli, tmp_path: Path, kind: str) -> None:
    with official_store(kind, tmp_path) as (url, location):
        checkpoints, writes, keys = _census(url)
        plan = json.loads(cli("prune", url, "--keep-last", "2", "--min-idle", "0", "--dry-run", "-o", "json").stdout)
        assert plan["checkpoints"] == checkpoints and plan["checkpoints_to_delete"] > 0
        assert _census(url)[0] == checkpoints  # a dry run deletes nothing
        result = cli("prune", url, "--keep-last", "2", "--min-idle", "0", "--yes", "--report", "json")
        assert result.exit_code == 0, result.stderr
        done = json.loads(result.stdout)
        assert done["checkpoints_deleted"] == plan["checkpoints_to_delete"] and done["errors"] == []
        left, left_writes, kept = _census(url)
        assert left == checkpoints - plan["checkpoints_to_delete"]
        assert left_writes == writes - plan["writes_to_delete"]
        roots = [k for k in kept if k[1] == ""]
        for thread in ("thread-1", "thread-2", "thread-3"):
            assert len([k for k in roots if k[0] == thread]) == 2
        assert tuple_view(location, kept)  # every kept checkpoint loads with the official saver
        again = json.loads(cli("prune", url, "--keep-last", "2", "--min-idle", "0", "--yes", "-o", "json").stdout)
        assert again["checkpoints_to_delete"] == 0 and _census(url)[0] == left
        assert resume(location, "thread-3")["messages"][-1].content == "approval: yes"


# Per checkpoint, the blob rows it names (a value stored inline, or not at all, has none).
_NAMED_BLOBS = (
    "SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, b.channel, b.version FROM checkpoints c "
    "CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') e JOIN checkpoint_blobs b "
    "ON b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns AND b.channel = e.key AND b.version = e.value"
)


def _named_blobs(conn: Any) -> set[tuple[str, ...]]:
    return {tuple(row) for row in conn.execute(_NAMED_BLOBS).fetchall()}


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_postgres_prune_frees_exactly_the_planned_blobs_and_leaves_no_orphan(
    cli: Cli, tmp_path: Path, jobs: str
) -> None:
    import psycopg

    with official_store("postgres", tmp_path) as (url, libpq):
        with psycopg.connect(str(libpq), autocommit=True) as conn:
            conn.execute("ANALYZE checkpoints")  # --jobs 2 splits the threads by these statistics
            blobs_before = conn.execute("SELECT count(*) FROM checkpoint_blobs").fetchone()
            named_before = _named_blobs(conn)
        args = ("--keep-last", "1", "--min-idle", "0", "--jobs", jobs)
        plan = json.loads(cli("prune", url, *args, "--dry-run", "-o", "json").stdout)
        done = json.loads(cli("prune", url, *args, "--yes", "--report", "json").stdout)
        assert plan["blobs_to_delete"] == done["blobs_deleted"] > 0 and done["errors"] == []
        assert plan["jobs"] == done["jobs"] == int(jobs)
        assert done["checkpoints_deleted"] == plan["checkpoints_to_delete"]
        with psycopg.connect(str(libpq)) as conn:
            blobs_after = conn.execute("SELECT count(*) FROM checkpoint_blobs").fetchone()
            assert blobs_before is not None and blobs_after is not None
            assert blobs_before[0] - blobs_after[0] == done["blobs_deleted"]
            kept = {row[:3] for row in conn.execute("SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints")}
            # every blob a kept checkpoint named before is still there
            still_named = {r for r in named_before if r[:3] in kept}
            assert still_named and still_named == _named_blobs(conn)
            orphans = conn.execute(
                "SELECT count(*) FROM checkpoint_blobs b WHERE NOT EXISTS (SELECT 1 FROM checkpoints c "
                "WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns "
                "AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)"
            ).fetchone()
            assert orphans == (0,)
            writes = conn.execute(
                "SELECT count(*) FROM checkpoint_writes w WHERE NOT EXISTS (SELECT 1 FROM checkpoints c "
                "WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns "
                "AND c.checkpoint_id = w.checkpoint_id)"
            ).fetchone()
            assert writes == (0,)


def test_redis_prune_keeps_pointers_and_registries_consistent(cli: Cli, tmp_path: Path) -> None:
    import redis

    with official_store("redis", tmp_path) as (url, _):
        cli("prune", url, "--keep-last", "1", "--min-idle", "0", "--yes")
        client = redis.Redis.from_url(url, decode_responses=True)
        for pointer in client.scan_iter(match="checkpoint_latest:*"):
            assert client.exists(client.get(pointer)), pointer
        for zset in client.scan_iter(match="write_keys_zset:*"):
            assert client.exists("checkpoint:" + zset.split(":", 1)[1]), zset
        for write in client.scan_iter(match="checkpoint_write:*"):
            thread, ns, checkpoint_id = write.split(":")[1:4] if ns_free(write) else (None, None, None)
            if thread:
                assert client.exists(f"checkpoint:{thread}:{ns}:{checkpoint_id}"), write


def ns_free(key: str) -> bool:
    return key.count(":") == 5


def test_bad_policy_is_a_usage_error_and_deletes_nothing(cli: Cli, db_copy: Path) -> None:
    before = _census(sqlite_url(db_copy))[0]
    for args in (("--keep-within", "3x"), ("--keep-last", "0"), ("--delete-idle", "soon"), ()):
        result = cli("prune", sqlite_url(db_copy), *args, "--yes")
        assert result.exit_code == ExitCode.USAGE, args
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert _census(sqlite_url(db_copy))[0] == before


def test_refuses_without_yes_off_a_terminal(cli: Cli, db_copy: Path) -> None:
    result = cli("prune", sqlite_url(db_copy), "--keep-last", "1", "--min-idle", "0")
    assert result.exit_code == ExitCode.USAGE
    assert "refusing to delete without --yes" in result.stderr


def test_recent_threads_are_skipped_by_default(cli: Cli, db_copy: Path) -> None:
    plan = json.loads(cli("prune", sqlite_url(db_copy), "--keep-last", "1", "--dry-run", "-o", "json").stdout)
    assert plan["checkpoints_to_delete"] == 0 and plan["skipped"] == {"written within --min-idle": 3}


def test_a_second_run_waits_for_nobody_it_exits_locked(cli: Cli, db_copy: Path) -> None:
    with open_store(sqlite_url(db_copy), write=True) as store, store.lock("prune"):
        result = cli("prune", sqlite_url(db_copy), "--keep-last", "1", "--min-idle", "0", "--yes")
    assert result.exit_code == ExitCode.LOCKED
    assert result.stderr.startswith("error: another ckpt prune is running on ")
    assert _census(sqlite_url(db_copy))[0] == 29


def _aged(record: CheckpointRecord, thread_id: str, days: float) -> CheckpointRecord:
    """The record under another thread id, its checkpoint ids moved ``days`` into the past."""

    def shift(checkpoint_id: str | None) -> str | None:
        if checkpoint_id is None:
            return None
        digits = checkpoint_id.replace("-", "")
        ticks = (int(digits[0:8], 16) << 28 | int(digits[8:12], 16) << 12 | int(digits[13:16], 16)) - int(days * 864e9)
        high, mid, low = ticks >> 28, (ticks >> 12) & 0xFFFF, ticks & 0xFFF
        return f"{high:08x}-{mid:04x}-6{low:03x}-{checkpoint_id[19:]}"

    key = CheckpointKey(thread_id, record.key.checkpoint_ns, shift(record.key.checkpoint_id) or "")
    metadata = json.loads(record.metadata.data)
    metadata["parents"] = {ns: shift(parent) for ns, parent in metadata.get("parents", {}).items()}
    return replace(
        record,
        key=key,
        parent_checkpoint_id=shift(record.parent_checkpoint_id),
        metadata=replace(record.metadata, data=json.dumps(metadata).encode()),
    )


def _old_bulk(official_db: Path, url: str, threads: int) -> int:
    """Aged copies of thread-1 (old-0000, old-0001, ...) written into the store at ``url``."""
    with open_store(sqlite_url(official_db)) as source:
        records = [r for r in source.records() if r.key.thread_id == "thread-1"]
    with open_store(url, write=True) as target:
        clones = (_aged(r, f"old-{n:04d}", 2) for n in range(threads) for r in records)
        for batch in batched(clones, 1000):
            target.write(batch)
    return threads * len(records)


@contextmanager
def _old_store(kind: str, official_db: Path, tmp_path: Path, threads: int) -> Iterator[tuple[str, Path | str, int]]:
    """``(url, official saver location, checkpoints)`` of a store of aged copies of thread-1."""
    with ExitStack() as stack:
        if kind == "sqlite":
            location: Path | str = tmp_path / "old.db"
            url = sqlite_url(location)
        else:
            url, location = stack.enter_context(postgres_schema())
        yield url, location, _old_bulk(official_db, url, threads)


def _checkpoint_count(location: Path | str) -> int:
    if isinstance(location, Path):
        return int(sqlite3.connect(location).execute("SELECT count(*) FROM checkpoints").fetchone()[0])
    import psycopg

    with psycopg.connect(location) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        return int(row[0]) if row else 0


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_killed_midway_the_store_still_reads_and_a_rerun_finishes(official_db: Path, tmp_path: Path, kind: str) -> None:
    with _old_store(kind, official_db, tmp_path, 300) as (url, location, total):
        command = [sys.executable, "-m", "ckpt.cli", "prune", url, "--keep-last", "1", "--yes", "--batch-size", "5"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if _checkpoint_count(location) < total - 100:
                break
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        partial = _checkpoint_count(location)
        assert 300 < partial < total, f"the kill did not land midway ({partial}/{total})"
        from examples.graphs import build_graph, config
        from tests.support import official_saver

        with official_saver(location) as saver:
            graph = build_graph(saver)
            for n in range(0, 300, 37):
                assert graph.get_state(config(f"old-{n:04d}")).values["messages"]
        rerun = subprocess.run([*command, "--report", "json"], capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert _checkpoint_count(location) == 300
        with official_saver(location) as saver:
            graph = build_graph(saver)
            for n in range(0, 300, 37):
                assert graph.get_state(config(f"old-{n:04d}")).values["messages"]


def test_a_running_writer_loses_nothing(official_db: Path, tmp_path: Path) -> None:
    store_path = tmp_path / "busy.db"
    _old_bulk(official_db, sqlite_url(store_path), 100)
    writer_code = (
        "import sys; sys.path.insert(0, '.')\n"
        "from tests.conftest import make_official_store\n"
        "from pathlib import Path\n"
        "from langgraph.checkpoint.sqlite import SqliteSaver\n"
        "from examples.graphs import build_graph, serializer\n"
        "from langchain_core.messages import HumanMessage\n"
        f"with SqliteSaver.from_conn_string({str(store_path)!r}) as saver:\n"
        "    saver.serde = serializer()\n"
        "    graph = build_graph(saver)\n"
        "    for n in range(8):\n"
        "        config = {'configurable': {'thread_id': f'live-{n}'}}\n"
        "        graph.invoke({'messages': [HumanMessage(content=f'live {n}')]}, config)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", writer_code], cwd=Path(__file__).resolve().parents[2])
    pruner = subprocess.run(
        [
            sys.executable,
            "-m",
            "ckpt.cli",
            "prune",
            sqlite_url(store_path),
            "--keep-last",
            "1",
            "--yes",
            "--batch-size",
            "7",
        ],
        capture_output=True,
        text=True,
    )
    assert writer.wait(timeout=120) == 0
    assert pruner.returncode == 0, pruner.stderr
    conn = sqlite3.connect(store_path)
    live = conn.execute(
        "SELECT thread_id, count(*) FROM checkpoints WHERE thread_id LIKE 'live-%' GROUP BY 1"
    ).fetchall()
    assert len(live) == 8 and all(count == 9 for _, count in live)  # every checkpoint the writer made is there
    assert (
        conn.execute("SELECT count(DISTINCT thread_id) FROM checkpoints WHERE thread_id LIKE 'old-%'").fetchone()[0]
        == 100
    )
    assert conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id LIKE 'old-%'").fetchone()[0] == 100


def test_a_read_only_role_is_refused_before_anything_is_deleted(cli: Cli, official_db: Path) -> None:
    import psycopg

    with postgres_schema() as (url, libpq):
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        schema = url.rsplit("schema=", 1)[1]
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("DO $$ BEGIN CREATE ROLE ckpt_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
            conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO ckpt_reader')
            conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO ckpt_reader')
        reader = url.replace("postgresql://postgres@", "postgresql://ckpt_reader@")
        result = cli("prune", reader, "--keep-last", "1", "--min-idle", "0", "--yes")
        assert result.exit_code == ExitCode.UNAVAILABLE
        assert result.stderr.startswith("error: this role may not INSERT on ") and len(result.stderr.splitlines()) == 1
        assert (
            json.loads(cli("prune", reader, "--keep-last", "1", "--min-idle", "0", "--dry-run", "-o", "json").stdout)[
                "checkpoints_to_delete"
            ]
            > 0
        )  # a plan needs only SELECT
        assert _census(url)[0] == 29
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM ckpt_reader')
            conn.execute(f'REVOKE USAGE ON SCHEMA "{schema}" FROM ckpt_reader')
