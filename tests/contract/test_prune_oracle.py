"""Prune and compact, proven by what they kept: the official saver reads every surviving checkpoint
exactly as before (issue #17). Histories are generated through each store's own saver
(tests/histories.py), several per test with seeds drawn by hypothesis, and pruned by policies that
keep contiguous and non-contiguous sets of checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.histories import write_histories
from tests.oracle import TARGETS, Key, assert_kept_unchanged, non_contiguous, populate, snapshot, store_keys
from tests.support import official_saver

STORES = {kind: TARGETS[kind] for kind in ("sqlite", "postgres", "mongodb", "redis")}
POLICIES = {
    "keep-last": ["--keep-last", "2"],
    "daily": ["--keep-last", "1", "--keep-daily", "3"],  # non-contiguous: a kept day between deleted ones
    "within-weekly": ["--keep-within", "12d", "--keep-weekly", "2"],
    "idle": ["--delete-idle", "25d", "--keep-last", "3"],
}
EXAMPLES = {"sqlite": 4, "postgres": 2, "mongodb": 2, "redis": 2}


def _populate(location: Path | str, seed: int) -> None:
    populate(location, seed, threads=10)


def _prune_and_check(cli: Any, url: str, location: Path | str, args: list[str]) -> tuple[dict[Key, Any], list[Key]]:
    before = snapshot(url, location)
    result = cli("prune", url, *args, "--min-idle", "0s", "--yes")
    assert result.exit_code == 0, result.output
    kept = assert_kept_unchanged(url, location, before)
    assert len(kept) < len(before), "the policy deleted nothing: the test would prove nothing"
    return before, kept


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("kind", sorted(STORES))
def test_prune_keeps_what_the_saver_reads(kind: str, policy: str, cli: Any, tmp_path: Path) -> None:
    @settings(max_examples=EXAMPLES[kind], deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(seed=st.integers(0, 10**6))
    def check(seed: int) -> None:
        with STORES[kind](tmp_path) as (url, location):
            _populate(location, seed)
            before, kept = _prune_and_check(cli, url, location, POLICIES[policy])
            if policy == "daily":
                assert non_contiguous(before, kept) or seed % 7 == 0  # most draws must exercise the gaps
            result = cli("compact", url, "--min-idle", "0s", "--yes")
            assert result.exit_code == 0, result.output
            assert_kept_unchanged(url, location, before)

    check()


def test_postgres_prune_with_two_jobs_keeps_what_the_saver_reads(cli: Any, tmp_path: Path) -> None:
    """``--jobs 2`` splits the threads where the table's statistics cut them: each job's batches
    are guarded and exact like one job's."""
    import psycopg

    with STORES["postgres"](tmp_path) as (url, libpq):
        _populate(libpq, 11)
        with official_saver(libpq) as saver:
            write_histories(saver, 12, threads=30, prefix="more")
        with psycopg.connect(str(libpq), autocommit=True) as conn:
            conn.execute("ANALYZE checkpoints")  # the split points come from pg_stats
        before, kept = _prune_and_check(cli, url, libpq, ["--keep-last", "2", "--jobs", "2", "--batch-size", "40"])
        assert len(kept) > 0


def _planted_blob(libpq: str) -> tuple[str, str, str, str]:
    """A blob that the newest checkpoint of some thread references (it is always kept)."""
    import psycopg

    with psycopg.connect(libpq) as conn:
        row = conn.execute(
            "SELECT c.thread_id, c.checkpoint_ns, e.key, e.value FROM checkpoints c "
            "CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') e "
            "JOIN checkpoint_blobs b ON b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns "
            "AND b.channel = e.key AND b.version = e.value "
            "WHERE c.checkpoint_ns = '' AND c.checkpoint_id = (SELECT max(checkpoint_id) FROM checkpoints m "
            "WHERE m.thread_id = c.thread_id AND m.checkpoint_ns = '') ORDER BY 1 LIMIT 1"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def _table_digest(libpq: str) -> list[Any]:
    import psycopg

    with psycopg.connect(libpq) as conn:
        return [
            conn.execute(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t").fetchone()
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        ]


def test_postgres_guard_rolls_back_a_batch_that_would_delete_a_referenced_blob(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted fault: the batch's blob delete also takes a blob the thread's newest checkpoint
    references. The guard in the statement finds it; the batch is rolled back whole."""
    from ckpt.backends.postgres.prune import batches as pg_prune_batches

    with STORES["postgres"](tmp_path) as (url, libpq):
        _populate(libpq, 5)
        thread_id, ns, channel, version = _planted_blob(str(libpq))
        planted = (
            f"UNION SELECT ctid FROM checkpoint_blobs WHERE thread_id = '{thread_id}' AND checkpoint_ns = '{ns}' "
            f"AND channel = '{channel}' AND version = '{version}'"
        )
        monkeypatch.setattr(pg_prune_batches, "PLANT", planted)
        digest = _table_digest(str(libpq))
        result = cli("prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes", "--batch-size", "100000")
        assert result.exit_code == 7, result.output
        assert "integrity guard" in result.stderr and thread_id in result.stderr
        assert _table_digest(str(libpq)) == digest  # nothing deleted


def test_postgres_guard_of_the_general_path(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The general path (Python plan, delete by key): a blob delete that ignores the remaining
    checkpoints is caught by the guard's own statements, which read the table after the deletes."""
    from ckpt.backends.postgres.store import PostgresStore

    with STORES["postgres"](tmp_path) as (url, libpq):
        _populate(libpq, 6)
        thread_id, ns, channel, version = _planted_blob(str(libpq))

        def careless(self: PostgresStore, freed: Any) -> list[tuple[str, str, str, str]]:
            self._conn.execute(
                "DELETE FROM checkpoint_blobs WHERE thread_id = %s AND checkpoint_ns = %s AND channel = %s "
                "AND version = %s",
                (thread_id, ns, channel, version),
            )
            return [(thread_id, ns, channel, version)]

        monkeypatch.setattr(PostgresStore, "_drop_unreferenced_blobs", careless)
        digest = _table_digest(str(libpq))
        # --keep-daily is planned in Python and deleted by key
        result = cli("prune", url, "--keep-last", "1", "--keep-daily", "1", "--min-idle", "0s", "--yes")
        assert result.exit_code == 7, result.output
        assert "integrity guard" in result.stderr and thread_id in result.stderr
        assert _table_digest(str(libpq)) == digest


def test_mongodb_guard_refuses_a_write_of_a_kept_checkpoint(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted fault: a pending write of a kept checkpoint joins what a batch is about to delete.
    MongoDB has no transaction to roll back, so the guard runs first and nothing is deleted."""
    import pymongo

    from ckpt.backends.mongodb import store as mongodb

    with STORES["mongodb"](tmp_path) as (url, _):
        _populate(url, 7)
        newest: dict[tuple[str, str], str] = {}
        for thread_id, ns, checkpoint_id in store_keys(url):  # key order: the last one per namespace wins
            newest[(thread_id, ns)] = checkpoint_id
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(url)
        database = client.get_default_database()
        victim = next(  # a write of a namespace's newest checkpoint: always kept
            doc
            for doc in database["checkpoint_writes"].find()
            if newest.get((doc["thread_id"], doc["checkpoint_ns"])) == doc["checkpoint_id"]
        )
        monkeypatch.setattr(mongodb, "PLANT_FAULT", lambda docs: [*docs, victim] if docs else docs)
        counts = [database[c].count_documents({}) for c in ("checkpoints", "checkpoint_writes")]
        result = cli("prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes")
        assert result.exit_code == 7, result.output
        assert "integrity guard" in result.stderr and victim["thread_id"] in result.stderr
        assert [database[c].count_documents({}) for c in ("checkpoints", "checkpoint_writes")] == counts
        client.close()
