"""MongoDB against the official MongoDBSaver (server: nx-27017, a MongoDB wire-protocol server; README)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pymongo

from ckpt.backends import open_store
from ckpt.backends.core.errors import ExitCode
from examples.graphs import build_graph, config
from tests.conftest import Cli, sqlite_url
from tests.servers import mongo_database, postgres_schema
from tests.support import official_saver, populate_official, resume, tuple_view

THREADS = ("thread-1", "thread-2", "thread-3")


def _keys(url: str) -> list[tuple[str, str, str]]:
    with open_store(url) as store:
        return [(h.key.thread_id, h.key.checkpoint_ns, h.key.checkpoint_id) for h in store.headers()]


def _database(url: str) -> pymongo.database.Database:  # type: ignore[type-arg]
    client: pymongo.MongoClient = pymongo.MongoClient(url)  # type: ignore[type-arg]
    return client.get_default_database()


def test_sqlite_to_mongodb_reads_resumes_and_keeps_writing(cli: Cli, official_db: Path, db_copy: Path) -> None:
    with mongo_database() as url:
        result = cli("migrate", sqlite_url(official_db), url, "--verify", "-o", "json")
        assert result.exit_code == 0, result.stdout + result.stderr
        keys = _keys(sqlite_url(official_db))
        assert tuple_view(url, keys) == tuple_view(official_db, keys)
        stored = _database(url)["checkpoints"].find_one({"thread_id": "thread-3"})
        assert stored is not None and stored["metadata"]["source"][0] == "msgpack"
        after_mongo, after_sqlite = resume(url, "thread-3"), resume(db_copy, "thread-3")
        assert [m.content for m in after_mongo["messages"]] == [m.content for m in after_sqlite["messages"]]
        with official_saver(url) as saver:  # the saver keeps writing new steps on the moved thread
            graph = build_graph(saver)
            assert graph.get_state(config("thread-3")).next == ()
            history = list(graph.get_state_history(config("thread-3")))
        assert len(history) == len([k for k in keys if k[0] == "thread-3" and k[1] == ""]) + 1
        newest = _database(url)["checkpoints"].find_one(
            {"thread_id": "thread-3", "checkpoint_ns": ""}, sort=[("checkpoint_id", -1)]
        )
        assert newest is not None
        from ckpt.backends.core.msgpack_raw import unpack

        versions = unpack(bytes(newest["checkpoint"]))["channel_versions"]
        assert versions and all(isinstance(v, int) for v in versions.values())


def test_mongodb_written_by_the_saver_to_sqlite_and_postgres(cli: Cli, tmp_path: Path) -> None:
    with mongo_database() as url, postgres_schema() as (pg_url, pg_libpq):
        populate_official(url)
        keys = _keys(url)
        assert len(keys) == 29
        checkpoint = _database(url)["checkpoints"].find_one({"thread_id": "thread-1"})
        assert checkpoint is not None
        target = tmp_path / "from-mongo.db"
        for destination, location in ((sqlite_url(target), target), (pg_url, pg_libpq)):
            assert cli("migrate", url, destination, "--verify").exit_code == 0
            assert tuple_view(location, keys) == tuple_view(url, keys)
            # integer versions became padded strings: the target saver goes on counting them
            assert resume(location, "thread-3")["messages"][-1].content == "approval: yes"


def test_legacy_metadata_and_a_broken_document(cli: Cli, official_db: Path) -> None:
    with mongo_database() as url:
        cli("migrate", sqlite_url(official_db), url)
        collection = _database(url)["checkpoints"]
        first = collection.find_one({"thread_id": "thread-1", "checkpoint_ns": ""}, sort=[("checkpoint_id", 1)])
        assert first is not None
        legacy = {"source": b'"input"', "step": b"-1", "parents": {}}  # 0.2.x: serde.dumps(value), no type
        collection.update_one({"_id": first["_id"]}, {"$set": {"metadata": legacy}})
        broken = collection.find_one({"thread_id": "thread-2", "checkpoint_ns": ""})
        assert broken is not None
        collection.update_one({"_id": broken["_id"]}, {"$unset": {"checkpoint": ""}})
        result = cli("list", url, "--checkpoints", "-o", "jsonl")
        assert result.exit_code == ExitCode.DATA
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(rows) == 28 and rows[0]["source"] == "input" and rows[0]["step"] == -1
        assert f"checkpoint document {broken['_id']} lacks checkpoint; skipped" in result.stderr


def test_unreachable_server_fails_within_the_connect_timeout(cli: Cli) -> None:
    start = time.monotonic()
    result = cli("list", "mongodb://admin:hunter2@127.0.0.1:1/db?directConnection=true")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert time.monotonic() - start < 15
    assert result.stderr.startswith("error: cannot connect to mongodb://admin:***@127.0.0.1:1/db")
    assert "hunter2" not in result.stderr


def _stored(url: str) -> dict[str, list[dict[str, object]]]:
    """Both collections without ``_id`` (an ObjectId per insert), in key order."""
    database = _database(url)
    return {
        name: sorted(
            (({k: v for k, v in d.items() if k != "_id"}) for d in database[name].find()),
            key=lambda d: json.dumps(
                [str(d.get(f)) for f in ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx")]
            ),
        )  # fmt: skip
        for name in ("checkpoints", "checkpoint_writes")
    }


def test_a_batch_cut_short_is_completed_by_a_rerun(cli: Cli, official_db: Path) -> None:
    """Inserts with duplicate keys treated as present: what a kill -9 mid-batch leaves is filled in, once."""
    with mongo_database() as url:
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        complete = _stored(url)
        database = _database(url)
        # a kill in the middle of a batch: some checkpoints and writes stored, others not
        for name in ("checkpoints", "checkpoint_writes"):
            ids = [d["_id"] for d in database[name].find({}, {"_id": 1})]
            assert len(ids) > 2
            database[name].delete_many({"_id": {"$in": ids[::2]}})
        missing = 29 - database["checkpoints"].count_documents({})
        result = cli("migrate", sqlite_url(official_db), url, "-o", "json")
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["checkpoints_written"], report["checkpoints_skipped"]) == (missing, 29 - missing)
        assert report["writes_written"] > 0 and report["writes_skipped"] > 0
        assert _stored(url) == complete  # each record once, and field for field what the first run stored
        with open_store(url) as store:
            assert [i["unique"] for i in database["checkpoints"].list_indexes() if i["name"] != "_id_"] == [True]
            assert store.count() == 29


def test_documents_match_the_upsert_path_without_the_unique_indexes(cli: Cli, official_db: Path) -> None:
    """Without the saver's unique indexes a duplicate insert would double a record: ckpt upserts instead."""
    with mongo_database() as inserted, mongo_database() as upserted:
        assert cli("migrate", sqlite_url(official_db), inserted).exit_code == 0
        with open_store(upserted, write=True) as store:
            assert store._insert_only  # type: ignore[attr-defined]
            for collection in ("checkpoints", "checkpoint_writes"):
                _database(upserted)[collection].drop_indexes()
            store._insert_only = False  # type: ignore[attr-defined]
            with open_store(sqlite_url(official_db)) as source:
                records = list(source.records())
            first, second = store.write(records), store.write(records)
        assert (first.checkpoints_written, second.checkpoints_written, second.checkpoints_skipped) == (29, 0, 29)
        assert _stored(upserted) == _stored(inserted)


def _walked_int_versions(checkpoint: bytes) -> bytes:
    """The conversion as it was first written: the kind found by the span walker, then unpack/pack."""
    from ckpt.backends.core.msgpack_raw import pack, unpack
    from ckpt.backends.core.versions import version_kind

    if version_kind(checkpoint) != "string":
        return checkpoint
    fields = unpack(checkpoint)

    def counter(v: object) -> object:
        return int(v.split(".", 1)[0]) if isinstance(v, str) and v.split(".", 1)[0].isdigit() else v

    fields["channel_versions"] = {k: counter(v) for k, v in (fields.get("channel_versions") or {}).items()}
    for node, channels in (fields.get("versions_seen") or {}).items():
        if isinstance(channels, dict):
            fields["versions_seen"][node] = {ch: counter(v) for ch, v in channels.items()}
    return pack(fields)


def test_int_versions_equal_the_walked_conversion(official_db: Path) -> None:
    """``to_int_versions`` (one C unpack) gives the very bytes the span-walker version gave."""
    from ckpt.backends.core.msgpack_raw import pack
    from ckpt.backends.core.versions import to_int_versions

    with open_store(sqlite_url(official_db)) as store:
        blobs = [r.checkpoint.data for r in store.records()]
    odd = [
        {"channel_versions": {"a": 3}},
        {"channel_versions": {}},
        {"x": 1},
        [1, 2],
        {"channel_versions": {"a": "0003.x", "b": 4}, "versions_seen": {"n": {"a": "0002.y"}, "m": 5}},
    ]
    blobs += [pack(fields) for fields in odd]
    converted = [to_int_versions(blob) for blob in blobs]
    assert converted == [_walked_int_versions(blob) for blob in blobs]
    assert sum(new != old for new, old in zip(converted, blobs)) >= 29  # the official store's versions changed


def test_a_thread_range_reads_only_its_own_documents(cli: Cli, official_db: Path) -> None:
    """A ``--jobs`` worker's range is a query on the key index: documents of other threads are not
    read at all (they are made unreadable here; a reader that fetched them would report them)."""
    from ckpt.backends.core.base import Selection

    with mongo_database() as url:
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        with open_store(url) as store:
            every = [r.key for r in store.records()]
        _database(url)["checkpoints"].update_many({"thread_id": {"$ne": "thread-2"}}, {"$unset": {"checkpoint": ""}})
        middle = Selection(thread_from="thread-2", thread_to="thread-3")
        with open_store(url) as store:
            read = [r.key for r in store.records(middle)]
            assert store.read_problems() == []
            listed = [s.thread_id for s in store.threads(middle, details=False)]
        assert read == [k for k in every if k.thread_id == "thread-2"] and read
        assert listed == ["thread-2"]
        with open_store(url) as store:  # the whole store does meet them: the check can fail
            list(store.records())
            assert store.read_problems()
