"""Issue #22 with real graphs on the official savers: copies and forks read and resume as the source
does; deletes leave nothing, and a planted leftover is found (exit 7)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends import open_store
from ckpt.backends.ops import threads
from tests import oracle
from tests.conftest import Cli, sqlite_url
from tests.servers import fresh_redis, mongo_database, postgres_schema
from tests.support import populate_official, resume, saver_view

THREAD = "thread-3"  # waits at an interrupt (examples/graphs.py)


@contextmanager
def _store(kind: str, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """(ckpt URL, official saver location) of a store the official saver filled."""
    if kind == "sqlite":
        location: Any = tmp_path / "agent.db"
        populate_official(location)
        yield sqlite_url(location), location
    elif kind == "postgres":
        with postgres_schema() as (url, libpq):
            populate_official(libpq)
            yield url, libpq
    elif kind == "redis":
        with fresh_redis() as url:
            populate_official(url)
            yield url, url
    else:
        with mongo_database() as url:
            populate_official(url)
            yield url, url


def _view(location: Any, thread_id: str) -> list[Any]:
    view = saver_view(location, thread_id)
    for entry in view:
        # MongoDBSaver returns writes in the collection's natural order (spec §6), not a sorted one
        entry["pending_writes"] = sorted(entry["pending_writes"] or [], key=lambda w: (w[0], w[1], repr(w[2])))
        for name in ("config", "parent"):
            if entry[name]:
                entry[name] = {**entry[name], "configurable": {**entry[name]["configurable"], "thread_id": "-"}}
    return view


KINDS = ["sqlite", "postgres", "redis", "mongodb"]


@pytest.mark.parametrize("kind", KINDS)
def test_copy_and_fork_read_and_resume_on_the_official_saver(kind: str, tmp_path: Path) -> None:
    with _store(kind, tmp_path) as (url, location):
        source_view = _view(location, THREAD)
        with open_store(url) as store:
            before = sorted(h.key_tuple for h in store.headers())
        with open_store(url, write=True) as store:
            threads.copy_thread(store, THREAD, "copy")
            latest = store.latest(THREAD)
            assert latest is not None
            parent = latest.parent_checkpoint_id
            assert parent is not None
            threads.fork(store, THREAD, latest.key.checkpoint_id, "fork-head")
            threads.fork(store, THREAD, parent, "fork-back")
        assert _view(location, "copy") == source_view
        assert _view(location, "fork-head") == source_view
        assert _view(location, "fork-back") == source_view[1:]  # history up to the fork point
        with open_store(url) as store:
            assert sorted(h.key_tuple for h in store.headers() if h.key.thread_id.startswith("thread-")) == before
        # each resumes from the interrupt; the source stays paused
        assert resume(location, "copy")["messages"] and resume(location, "fork-head")["messages"]
        assert _view(location, THREAD) == source_view


@pytest.mark.parametrize("kind", KINDS)
def test_delete_leaves_no_residue_and_plants_are_found(
    kind: str, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store(kind, tmp_path) as (url, location):
        with open_store(url, write=True) as store:
            threads.copy_thread(store, THREAD, "victim")
            threads.copy_thread(store, THREAD, "victim-2")
        before = oracle.snapshot(url, location)  # every checkpoint, as the official saver reads it
        _plant(kind, url, "victim", location)  # an orphan left before the delete goes with its thread
        result = cli("delete", url, "--thread", "victim", "--yes", "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert '"clean":true' in result.stdout.replace(" ", "")
        kept = oracle.assert_kept_unchanged(url, location, before)  # survivors read exactly as before
        assert kept == sorted(k for k in before if k[0] != "victim")
        monkeypatch.setattr(threads, "_after_delete", lambda store, plan: _plant(kind, url, "victim-2", location))
        result = cli("delete", url, "--thread", "victim-2", "--yes", "--report", "json")
        assert result.exit_code == 7, result.stderr
        assert "delete not proven: residue scan found" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        kept = oracle.assert_kept_unchanged(url, location, before)
        assert kept == sorted(k for k in before if not k[0].startswith("victim"))


def _plant(kind: str, url: str, thread_id: str, location: Any) -> None:
    """A leftover of ``thread_id`` no checkpoint owns: an orphan write, a PostgreSQL blob, a Redis
    write-registry entry and a latest pointer."""
    import sqlite3

    if kind == "sqlite":
        conn = sqlite3.connect(location)
        conn.execute("INSERT INTO writes VALUES (?, '', 'orphan-id', 'task', 'p', 0, 'ch', 'null', X'')", (thread_id,))
        conn.commit()
        conn.close()
    elif kind == "postgres":
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("INSERT INTO checkpoint_blobs VALUES (%s, '', 'ch', '1', 'null', NULL)", (thread_id,))
    elif kind == "redis":
        import redis

        client = redis.Redis.from_url(url)
        client.zadd(f"write_keys_zset:{thread_id}:__empty__:orphan-id", {f"checkpoint_write:{thread_id}:x": 0})
        client.set(f"checkpoint_latest:{thread_id}:__empty__", f"checkpoint:{thread_id}:__empty__:orphan-id")
        client.close()
    else:
        import pymongo

        client: Any = pymongo.MongoClient(url)
        client.get_default_database()["checkpoint_writes"].insert_one(
            {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": "orphan-id", "task_id": "t", "idx": 0}
        )
        client.close()


def test_bad_input_is_one_line_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    location = tmp_path / "agent.db"
    populate_official(location)
    url = sqlite_url(location)
    with open_store(url) as store:
        before = sorted(h.key_tuple for h in store.headers())
    cases = [
        (("copy-thread", url, "no-such", "new"), 3),
        (("copy-thread", url, THREAD, "thread-1"), 2),
        (("fork", url, THREAD, "--at", "ffffffff", "--as", "new"), 3),
        (("fork", url, "no-such", "--at", "ffffffff", "--as", "new"), 3),
        (("delete", url, "--thread", "no-such-*", "--yes"), 3),
        (("delete", url, "--run", "no-such-run", "--yes"), 3),
        (("delete", url, "--thread", THREAD), 2),  # off a terminal without --yes
    ]
    for args, code in cases:
        result = cli(*args)
        assert result.exit_code == code, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
    with open_store(url) as store:
        assert sorted(h.key_tuple for h in store.headers()) == before


def test_couchbase_deletes_what_its_saver_cannot(official_db: Path) -> None:
    from ckpt.backends.couchbase.store import CouchbaseStore
    from tests.backends import couchbase_standin as standin

    class Rows(list[dict[str, Any]]):
        def rows(self) -> list[dict[str, Any]]:
            return list(self)

    class Cluster(standin.Cluster):
        """The stand-in, also answering the DELETE statements ckpt's Couchbase driver sends."""

        def query(self, statement: str, options: Any = None) -> list[dict[str, Any]]:
            rows = super().query(statement, options)
            if statement.startswith("DELETE"):
                name = next(iter(rows[0])) if rows else None
                for row in rows:
                    docs = self.collection(str(name)).docs
                    for key in [k for k, d in docs.items() if d == row[str(name)]]:
                        del docs[key]
            return Rows(rows)

    with open_store(sqlite_url(official_db)) as source:
        official_records = list(source.records())
    cluster = Cluster()
    store = CouchbaseStore(cluster, "app", "agents", "checkpoints", "checkpoint_writes")
    store.write(official_records)
    count = sum(1 for r in official_records if r.key.thread_id == THREAD)
    assert store.residue([THREAD])["checkpoints"] == count
    assert store.delete_threads([THREAD]) == count
    assert store.residue([THREAD]) == {"checkpoints": 0, "writes": 0}
    others = [d for d in cluster.collection("checkpoints").docs.values() if d["thread_id"] != THREAD]
    assert others and not any(d["thread_id"] == THREAD for d in cluster.collection("checkpoint_writes").docs.values())
    cluster.collection("checkpoint_writes").docs["planted"] = {
        "thread_id": THREAD,
        "checkpoint_ns": "",
        "checkpoint_id": "x",
    }
    assert store.residue([THREAD])["writes"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_delete_run_keeps_every_other_run_as_the_saver_read_it(kind: str, tmp_path: Path, cli: Cli) -> None:
    """``delete --run``: each official saver files ``configurable.run_id`` with the checkpoint (in
    the metadata; RedisSaver in the document's indexed ``run_id`` field). A thread run twice (r1,
    then r2 resuming it) and a thread of r1 only: deleting r1 leaves r2's checkpoints reading
    exactly as before, and the saver's own run filter finds no r1 checkpoint any more."""
    from langchain_core.messages import HumanMessage
    from langgraph.types import Command

    from examples.graphs import build_graph
    from tests.support import official_saver

    def run(location: Any, thread_id: str, value: Any, run_id: str) -> None:
        with official_saver(location) as saver:
            build_graph(saver).invoke(value, {"configurable": {"thread_id": thread_id, "run_id": run_id}})

    def of_run(location: Any, run_id: str) -> list[str]:
        """The saver's own run filter (nx-27017 cannot run MongoDBSaver's filter query: there the
        saver's listing is filtered by the metadata it returns)."""
        server_filter = {"run_id": run_id} if kind != "mongodb" else None
        with official_saver(location) as saver:
            return sorted(
                t.config["configurable"]["checkpoint_id"]
                for thread_id in ("two-runs", "one-run")
                for t in saver.list({"configurable": {"thread_id": thread_id}}, filter=server_filter)
                if server_filter or t.metadata.get("run_id") == run_id
            )

    with _store(kind, tmp_path) as (url, location):
        run(location, "two-runs", {"messages": [HumanMessage(content="find papers")]}, "r1")  # stops at approve
        run(location, "two-runs", Command(resume="yes"), "r2")
        run(location, "one-run", {"messages": [HumanMessage(content="more papers")]}, "r1")
        before = oracle.snapshot(url, location)
        with open_store(url) as store:
            runs = {h.key_tuple: h.run_id for h in store.headers()}
        assert sorted(k[2] for k, r in runs.items() if r == "r1") == of_run(location, "r1") != []
        assert sorted(k[2] for k, r in runs.items() if r == "r2") == of_run(location, "r2") != []
        result = cli("delete", url, "--run", "r1", "--yes", "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert '"clean":true' in result.stdout.replace(" ", "")
        kept = oracle.assert_kept_unchanged(url, location, before)  # survivors read exactly as before
        assert kept == sorted(key for key, run_id in runs.items() if run_id != "r1")
        assert of_run(location, "r1") == []
        assert len(of_run(location, "r2")) == sum(1 for r in runs.values() if r == "r2")
