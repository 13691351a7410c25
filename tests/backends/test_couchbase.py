"""Couchbase: ckpt's documents are the official CouchbaseSaver's documents (no server here; see README).

Layout tests run the official saver against a recording stand-in of its SDK objects
(``couchbase_standin``). Tests against a live cluster run only with ``CKPT_TEST_COUCHBASE_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends import open_store
from ckpt.backends.couchbase.layout import record_from_documents
from ckpt.backends.couchbase.store import CouchbaseStore
from ckpt.formats.semantic import semantic_form
from examples.graphs import build_graph, config, populate, serializer
from tests.backends import couchbase_standin as standin
from tests.conftest import Cli, sqlite_url
from tests.support import tuples_of


def _official_saver(cluster: standin.Cluster) -> Any:
    os.environ.setdefault("DO_NOT_TRACK", "1")  # the package sends telemetry on import otherwise
    from langgraph_checkpointer_couchbase import CouchbaseSaver

    saver = CouchbaseSaver(cluster, "app", "agents", "checkpoints", "checkpoint_writes")  # type: ignore[arg-type]
    saver.serde = serializer()
    return saver


def _records_of(cluster: standin.Cluster) -> list[Any]:
    writes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for doc in cluster.collection("checkpoint_writes").docs.values():
        writes.setdefault((doc["thread_id"], doc["checkpoint_ns"], doc["checkpoint_id"]), []).append(doc)
    docs = sorted(
        cluster.collection("checkpoints").docs.values(),
        key=lambda d: (d["thread_id"], d["checkpoint_ns"], d["checkpoint_id"]),
    )
    return [
        record_from_documents(d, writes.get((d["thread_id"], d["checkpoint_ns"], d["checkpoint_id"]), [])) for d in docs
    ]


def test_documents_ckpt_writes_equal_the_official_savers() -> None:
    theirs = standin.Cluster()
    populate(_official_saver(theirs), threads=3)
    records = _records_of(theirs)
    assert len(records) == 29 and any(w.idx == -3 for r in records for w in r.writes)
    ours = standin.Cluster()
    store = CouchbaseStore(ours, "app", "agents", "checkpoints", "checkpoint_writes")
    report = store.write(records)
    assert report.checkpoints_written == 29
    for name in ("checkpoints", "checkpoint_writes"):
        assert ours.collection(name).docs == theirs.collection(name).docs, name
    assert store.write(records).checkpoints_written == 0  # rerun: nothing new


def test_official_saver_reads_and_resumes_what_ckpt_wrote(official_db: Path) -> None:
    with open_store(sqlite_url(official_db)) as source:
        records = list(source.records())
    cluster = standin.Cluster()
    CouchbaseStore(cluster, "app", "agents", "checkpoints", "checkpoint_writes").write(records)
    keys = [(r.key.thread_id, r.key.checkpoint_ns, r.key.checkpoint_id) for r in records]
    from langgraph.checkpoint.sqlite import SqliteSaver

    with SqliteSaver.from_conn_string(str(official_db)) as sqlite_saver:
        sqlite_saver.serde = serializer()
        assert tuples_of(_official_saver(cluster), keys) == tuples_of(sqlite_saver, keys)
    from langgraph.types import Command

    graph = build_graph(_official_saver(cluster))
    assert graph.get_state(config("thread-3")).next == ("approve",)
    result = graph.invoke(Command(resume="yes"), config("thread-3"))
    assert result["messages"][-1].content == "approval: yes"


def test_records_read_back_from_the_savers_documents_are_what_it_loads(official_db: Path) -> None:
    """Documents → records → documents and → SQLite: the same checkpoints the saver loads."""
    cluster = standin.Cluster()
    populate(_official_saver(cluster), threads=2)
    records = _records_of(cluster)
    keys = [(r.key.thread_id, r.key.checkpoint_ns, r.key.checkpoint_id) for r in records]
    sqlite_copy = official_db.parent / "from-couchbase.db"
    with open_store(sqlite_url(sqlite_copy), write=True) as target:
        target.write(records)
        stored = [target.stored_form(r) for r in records]
    with open_store(sqlite_url(sqlite_copy)) as back:
        assert [semantic_form(r) for r in back.records()] == [semantic_form(r) for r in stored]
    from langgraph.checkpoint.sqlite import SqliteSaver

    with SqliteSaver.from_conn_string(str(sqlite_copy)) as sqlite_saver:
        sqlite_saver.serde = serializer()
        assert tuples_of(sqlite_saver, keys) == tuples_of(_official_saver(cluster), keys)
    sqlite_copy.unlink()


def test_1_0_documents_without_metadata_type_are_json() -> None:
    import base64

    doc = {
        "thread_id": "t",
        "checkpoint_ns": "",
        "checkpoint_id": "1",
        "type": "msgpack",
        "checkpoint": base64.b64encode(b"\x80").decode(),
        "metadata": base64.b64encode(b'{"step": 1}').decode(),
    }
    record = record_from_documents(doc, [])
    assert record.metadata.data == b'{"step": 1}' and record.parent_checkpoint_id is None


LIVE = os.environ.get("CKPT_TEST_COUCHBASE_URL")


@pytest.mark.skipif(
    not LIVE, reason="no Couchbase Server can be run on this machine; set CKPT_TEST_COUCHBASE_URL to test one"
)
def test_live_cluster_round_trip(cli: Cli, official_db: Path) -> None:
    assert LIVE is not None
    result = cli(
        "migrate", sqlite_url(official_db), LIVE + ("&" if "?" in LIVE else "?") + "create_indexes=1", "--verify"
    )
    assert result.exit_code == 0, result.stderr
