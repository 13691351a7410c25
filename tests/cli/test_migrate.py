"""migrate: idempotent, resumable after kill -9, verifiable, with a plan and clear failures."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from ckpt.backends import CheckpointKey, open_store
from ckpt.backends.core.errors import ExitCode
from ckpt.backends.core.iterate import batched
from tests.conftest import Cli, sqlite_url
from tests.servers import postgres_schema
from tests.support import saver_view, tuple_view


def _bulk_store(official_db: Path, path: Path, copies: int) -> int:
    """Clone the official threads ``copies`` times under new thread ids: real payloads, many rows."""
    with open_store(sqlite_url(official_db)) as source:
        records = list(source.records())
    with open_store(sqlite_url(path), write=True) as target:
        clones = (
            replace(r, key=CheckpointKey(f"bulk-{n:05d}-{r.key.thread_id}", r.key.checkpoint_ns, r.key.checkpoint_id))
            for n in range(copies)
            for r in records
        )
        for batch in batched(clones, 1000):
            target.write(batch)
    return copies * len(records)


def test_second_run_is_a_no_op_and_says_so(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    target = sqlite_url(tmp_path / "t.db")
    first = json.loads(cli("migrate", sqlite_url(official_db), target, "-o", "json").stdout)
    assert first["checkpoints_written"] == 29 and first["writes_written"] == 95 and first["jobs"] == 1
    second = cli("migrate", sqlite_url(official_db), target)
    assert second.exit_code == 0
    assert second.stderr == f"nothing new to copy: all 29 checkpoints are already in {target}\n"


def test_dry_run_plans_without_writing(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    plan = json.loads(cli("migrate", sqlite_url(official_db), sqlite_url(target), "--dry-run", "-o", "json").stdout)
    assert plan["threads"] == 3 and plan["checkpoints"] == 29 and plan["to_copy"] == 29 and plan["writes"] == 95
    assert plan["bytes"] > 0 and not target.exists()
    cli("migrate", sqlite_url(official_db), sqlite_url(target), "--thread", "thread-1")
    plan = json.loads(cli("migrate", sqlite_url(official_db), sqlite_url(target), "--dry-run", "-o", "json").stdout)
    assert plan["already_present"] == 10 and plan["to_copy"] == 19


def test_verify_names_a_changed_value(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    assert cli("migrate", sqlite_url(official_db), sqlite_url(target), "--verify").exit_code == 0
    conn = sqlite3.connect(target)
    cid = conn.execute("SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = 'thread-2'").fetchone()[0]
    conn.execute("UPDATE writes SET value = X'05' WHERE checkpoint_id = ? AND channel = 'counter'", (cid,))
    conn.execute("UPDATE writes SET value = X'05' WHERE thread_id = 'thread-2' AND channel = 'counter'")
    conn.commit()
    conn.close()
    result = cli("migrate", sqlite_url(official_db), sqlite_url(target), "--verify", "-o", "json")
    assert result.exit_code == ExitCode.ERROR
    report = json.loads(result.stdout)["verify"]
    assert report["ok"] is False and report["threads_with_differences"] == ["thread-2"]
    assert result.stderr.startswith("error: verify failed: 0 missing, 0 extra, ")


def test_parallel_jobs_copy_everything(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    source = tmp_path / "bulk.db"
    total = _bulk_store(official_db, source, 20)
    with postgres_schema() as (url, _libpq):
        result = cli("migrate", sqlite_url(source), url, "--jobs", "3", "--verify", "-o", "json")
        assert result.exit_code == 0, result.stdout
        report = json.loads(result.stdout)
        assert report["checkpoints_written"] == total and report["verify"]["checkpoints"] == total


@pytest.mark.parametrize("bad", ["a JSONL target", "a source that is no store"])
def test_a_parallel_copy_refused_by_its_checks_leaves_no_worker_running(
    official_db: Path, tmp_path: Path, bad: str
) -> None:
    """The workers start while the parent checks both stores; a refusal stops them, nothing copied."""
    import multiprocessing

    from ckpt.backends.core.errors import NotAStoreError, UsageError
    from ckpt.backends.ops.parallel import migrate

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    if bad == "a JSONL target":
        source, target, error = sqlite_url(official_db), str(tmp_path / "out.jsonl"), UsageError
    else:
        source, target, error = sqlite_url(empty), sqlite_url(tmp_path / "copy.db"), NotAStoreError
    with pytest.raises(error):
        migrate(source, target, open_store, jobs=2)
    assert multiprocessing.active_children() == []
    assert not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").stat().st_size == 0


def test_parallel_copy_reports_progress_and_chooses_jobs(official_db: Path, tmp_path: Path) -> None:
    from ckpt.backends.ops.parallel import AUTO_JOBS_MIN_CHECKPOINTS, auto_jobs, migrate

    source = tmp_path / "bulk.db"
    total = _bulk_store(official_db, source, 10)
    seen: list[tuple[int, int]] = []
    with postgres_schema() as (url, _libpq):
        report = migrate(
            sqlite_url(source), url, open_store, jobs=2, batch_size=40, progress=lambda n, b: seen.append((n, b))
        )
        assert report.checkpoints_written == total and sum(n for n, _ in seen) == total and len(seen) > 2
        assert sum(b for _, b in seen) == report.bytes_read > 0
    assert auto_jobs(url, AUTO_JOBS_MIN_CHECKPOINTS - 1) == 1 and auto_jobs(sqlite_url(source), 10**6) == 1
    assert auto_jobs(url, AUTO_JOBS_MIN_CHECKPOINTS) == min(2, os.cpu_count() or 1)
    # out of a store that samples its own ranges (PostgreSQL) into any database; never into a file
    assert auto_jobs(sqlite_url(source), 10**6, url) == min(2, os.cpu_count() or 1)
    assert auto_jobs(str(tmp_path / "out.jsonl"), 10**6, url) == 1
    assert auto_jobs(sqlite_url(source), 10**6, sqlite_url(official_db)) == 1
    assert auto_jobs("redis://127.0.0.1:6379", 10**6, url) == 1  # one server thread writes: one worker


def test_parallel_copy_out_of_postgresql_into_one_sqlite_file(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    """Two workers that each copy a range of PostgreSQL's threads write one SQLite file, taking
    turns on its lock: every checkpoint arrives once, as the source holds it (``--verify``), and
    a second run finds nothing to copy."""
    source = tmp_path / "bulk.db"
    total = _bulk_store(official_db, source, 8)
    target = tmp_path / "out.db"
    with postgres_schema() as (url, libpq):
        assert cli("migrate", sqlite_url(source), url).exit_code == 0
        with open_store(url) as pg:
            threads = [t.thread_id for t in pg.threads(details=False)]
        result = cli("migrate", url, sqlite_url(target), "--jobs", "2", "--batch-size", "25", "--verify", "-o", "json")
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["jobs"] == min(2, os.cpu_count() or 1)
        assert report["checkpoints_written"] == total and report["verify"]["checkpoints"] == total
        again = json.loads(cli("migrate", url, sqlite_url(target), "--jobs", "2", "-o", "json").stdout)
        assert again["checkpoints_written"] == 0 and again["checkpoints_skipped"] == total
        # what the official savers see: SqliteSaver reads every thread as PostgresSaver reads the source
        for thread in threads:
            assert saver_view(target, thread) == saver_view(libpq, thread), thread
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == total


@pytest.mark.parametrize("kind", ["mongodb", "redis"])
def test_parallel_copy_out_of_a_server_reads_each_range_once(
    cli: Cli, official_db: Path, tmp_path: Path, kind: str
) -> None:
    """MongoDB reads a worker's thread range from its key index, Redis (no ordered index) gives each
    worker sets of threads from the parent's one listing: with ``--jobs 2`` every checkpoint still
    arrives once, and the official SqliteSaver reads every checkpoint of the target (``get_tuple``:
    checkpoint, metadata, parent, pending writes, as plain data) as the source's own saver reads
    the source."""
    from contextlib import AbstractContextManager

    from tests.servers import fresh_redis, mongo_database

    source = tmp_path / "bulk.db"
    total = _bulk_store(official_db, source, 4)
    target = tmp_path / "out.db"
    server: AbstractContextManager[str] = mongo_database() if kind == "mongodb" else fresh_redis()
    with server as url:
        assert cli("migrate", sqlite_url(source), url).exit_code == 0
        with open_store(url) as store:
            keys = [(h.key.thread_id, h.key.checkpoint_ns, h.key.checkpoint_id) for h in store.headers()]
        result = cli("migrate", url, sqlite_url(target), "--jobs", "2", "--batch-size", "25", "--verify", "-o", "json")
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["checkpoints_written"] == total and report["verify"]["checkpoints"] == total
        assert len(keys) == total and tuple_view(target, keys) == tuple_view(url, keys)
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == total


@pytest.mark.parametrize("kind", ["postgres", "sqlite", "mongodb"])
def test_a_copy_out_of_redis_beside_what_the_app_already_wrote(
    cli: Cli, official_db: Path, tmp_path: Path, kind: str
) -> None:
    """A Redis store copied into a PostgreSQL schema (two workers on sets of threads), a SQLite file
    or a MongoDB database where the app's own saver already ran the graph: that saver reads every
    checkpoint the app wrote exactly as before, every copied checkpoint as RedisSaver reads the
    source, nothing else appeared, and RedisSaver reads every checkpoint of the source as before."""
    from tests.servers import fresh_redis
    from tests.support import populate_official

    source = tmp_path / "bulk.db"
    total = _bulk_store(official_db, source, 4)
    with fresh_redis() as redis_url, _target(kind, tmp_path) as (url, location, flags):
        assert cli("migrate", sqlite_url(source), redis_url).exit_code == 0
        populate_official(location, 2)
        with open_store(url) as target:
            held = [(h.key.thread_id, h.key.checkpoint_ns, h.key.checkpoint_id) for h in target.headers()]
        with open_store(redis_url) as store:
            keys = [(h.key.thread_id, h.key.checkpoint_ns, h.key.checkpoint_id) for h in store.headers()]
        assert held and len(keys) == total and not set(held) & set(keys)
        before, source_before = tuple_view(location, held), tuple_view(redis_url, keys)
        result = cli("migrate", redis_url, url, *flags, "--batch-size", "25", "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["checkpoints_written"] == total
        assert tuple_view(location, held) == before
        assert tuple_view(redis_url, keys) == source_before
        assert tuple_view(location, keys) == source_before
        with open_store(url) as target:
            assert sorted(str(h.key) for h in target.headers()) == sorted(str(CheckpointKey(*k)) for k in held + keys)


@contextmanager
def _target(kind: str, tmp_path: Path) -> Iterator[tuple[str, Path | str, tuple[str, ...]]]:
    """``(ckpt URL, where the official saver opens it, migrate flags)`` of an empty target."""
    if kind == "sqlite":
        path = tmp_path / "app.db"
        yield sqlite_url(path), path, ()
        return
    if kind == "mongodb":
        from tests.servers import mongo_database

        with mongo_database() as url:
            yield url, url, ()
        return
    with postgres_schema() as (url, libpq):
        yield url, libpq, ("--jobs", "2")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_killed_midway_then_rerun_completes(official_db: Path, tmp_path: Path, jobs: str) -> None:
    source = tmp_path / "bulk.db"
    total = _bulk_store(official_db, source, 150)
    with postgres_schema() as (url, libpq):
        import psycopg

        def copied() -> int:
            try:
                with psycopg.connect(libpq) as conn:
                    return int(conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0])  # type: ignore[index]
            except psycopg.errors.UndefinedTable:
                return 0

        command = [sys.executable, "-m", "ckpt.cli", "migrate", sqlite_url(source), url, "--batch-size", "25"]
        command += ["--jobs", jobs]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while copied() == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        workers = _children(process.pid)
        assert len(workers) >= (2 if jobs == "2" else 0)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while (alive := [w for w in workers if _running(w)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive == [], "worker processes outlived a kill -9 of migrate and would keep copying"
        partial = copied()
        assert 0 < partial < total, f"the kill came too late to test anything ({partial}/{total})"
        rerun = subprocess.run([*command, "--verify", "-o", "json"], capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        report = json.loads(rerun.stdout)
        assert report["checkpoints_written"] == total - partial
        assert report["verify"]["ok"] is True and copied() == total


def test_bad_source_row_is_named_and_skip_bad_copies_the_rest(cli: Cli, db_copy: Path) -> None:
    conn = sqlite3.connect(db_copy)
    cid = conn.execute("SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = 'thread-1'").fetchone()[0]
    conn.execute("UPDATE checkpoints SET checkpoint = X'87c1' WHERE checkpoint_id = ?", (cid,))
    conn.commit()
    conn.close()
    with postgres_schema() as (url, libpq):
        refused = cli("migrate", sqlite_url(db_copy), url)
        assert refused.exit_code == ExitCode.DATA
        assert refused.stderr.startswith(f"error: cannot decode thread 'thread-1', ns '', checkpoint {cid}: ")
        skipped = cli("migrate", sqlite_url(db_copy), url, "--skip-bad", "-o", "json")
        assert skipped.exit_code == ExitCode.DATA
        report = json.loads(skipped.stdout)
        assert len(report["bad_records"]) == 1 and cid in report["bad_records"][0]
        with open_store(url) as store:
            assert store.count() == 28


@pytest.mark.parametrize("target", ["jsonl", "sqlite"])
def test_migrate_to_files(cli: Cli, official_db: Path, tmp_path: Path, target: str) -> None:
    out = tmp_path / ("out.jsonl.gz" if target == "jsonl" else "out.db")
    url = str(out) if target == "jsonl" else sqlite_url(out)
    assert cli("migrate", sqlite_url(official_db), url, "--verify").exit_code == 0
    with open_store(url) as store:
        assert store.count() == 29 or sum(1 for _ in store.records()) == 29
