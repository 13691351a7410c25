"""``ckpt check --integrity``: finds checkpoints whose referenced values are gone, names the threads,
exits 7; and finds nothing in healthy stores written by the official savers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import sqlite_url
from tests.histories import write_histories
from tests.servers import postgres_schema
from tests.support import official_saver


def test_healthy_stores_have_no_findings(cli: Any, official_db: Path, tmp_path: Path) -> None:
    generated = tmp_path / "gen.db"
    with official_saver(generated) as saver:
        saver.setup()
        write_histories(saver, 21, threads=25)
    for path in (official_db, generated):
        result = cli("check", sqlite_url(path), "--integrity", "-o", "json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["ok"] and report["checkpoints"] > 20 and report["damaged"] == []


def _blob_and_writer(conn: psycopg.Connection[Any]) -> tuple[str, str, str, str]:
    """A ``profile`` blob of the root namespace that a later version follows, and the checkpoint
    whose step wrote it."""
    row = conn.execute(
        "SELECT c.thread_id, c.checkpoint_id, b.channel, b.version FROM checkpoint_blobs b "
        "JOIN checkpoints c ON c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns "
        "AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version "
        "AND c.checkpoint -> 'updated_channels' ? b.channel "
        "WHERE b.channel = 'profile' AND b.checkpoint_ns = '' AND EXISTS (SELECT 1 FROM checkpoint_blobs o "
        "WHERE o.thread_id = b.thread_id AND o.checkpoint_ns = '' AND o.channel = b.channel AND o.version > b.version) "
        "ORDER BY 1, 2 LIMIT 1"
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def test_a_deleted_blob_is_found_and_its_thread_named(cli: Any) -> None:
    with postgres_schema() as (url, libpq):
        with official_saver(libpq) as saver:
            saver.setup()
            write_histories(saver, 22, threads=6)
        with psycopg.connect(libpq, autocommit=True) as conn:
            thread_id, _, channel, version = _blob_and_writer(conn)
            conn.execute("DELETE FROM checkpoint_blobs WHERE channel = %s AND version = %s", (channel, version))
        result = cli("check", url, "--integrity", "-o", "json")
        assert result.exit_code == 7, result.output
        assert thread_id in result.stderr
        report = json.loads(result.stdout)
        assert report["damaged_threads"] == [thread_id]
        assert {(d["channel"], d["version"], d["certain"]) for d in report["damaged"]} == {(channel, version, True)}


def test_damage_left_by_a_prune_that_also_deleted_the_writer_is_reported_as_likely(cli: Any) -> None:
    """The shape the PostgreSQL prune left before issue #17: the checkpoint that wrote the version
    went, and its blob with it, while later checkpoints still name the version."""
    with postgres_schema() as (url, libpq):
        with official_saver(libpq) as saver:
            saver.setup()
            write_histories(saver, 23, threads=6)
        with psycopg.connect(libpq, autocommit=True) as conn:
            thread_id, writer, channel, version = _blob_and_writer(conn)
            conn.execute("DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_id = %s", (thread_id, writer))
            conn.execute("DELETE FROM checkpoint_blobs WHERE channel = %s AND version = %s", (channel, version))
            still_named = conn.execute(
                "SELECT count(*) FROM checkpoints "
                "WHERE thread_id = %s AND checkpoint -> 'channel_versions' ->> %s = %s",
                (thread_id, channel, version),
            ).fetchone()
        assert still_named is not None and still_named[0] > 0, "the seed must leave a checkpoint naming the version"
        result = cli("check", url, "--integrity")
        assert result.exit_code == 7, result.output
        assert thread_id in result.stderr and "likely" in result.stdout
