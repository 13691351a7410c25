"""The PostgreSQL prune in SQL plans and deletes exactly what the general (Python) path does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import orjson
import pytest

from ckpt.backends import open_store
from ckpt.backends.core.ids import checkpoint_time, lowest_id_at
from ckpt.backends.ops.retention import Policy, PruneReport, Spool, ThreadPlan, delete_spooled, plan, plan_to_spool
from ckpt.backends.postgres.prune.jobs import in_server
from ckpt.backends.postgres.prune.sql import bounds, first_tick, id_at_tick, supports
from tests.servers import postgres_schema

DAY = 86400.0
NOW = time.time()


def _id(days_ago: float, n: int) -> str:
    return lowest_id_at(NOW - days_ago * DAY)[:19] + f"{0x8000 + n:04x}-{n:012x}"


def _thread(
    thread: str, ages: list[float], ns: str = "", metadata: Any = None, ids: list[str] | None = None
) -> list[tuple[Any, ...]]:
    """Checkpoint rows; a channel's version changes every other checkpoint, so blobs are shared."""
    rows = []
    for n, age in enumerate(ages):
        checkpoint_id = ids[n] if ids else _id(age, n)
        versions = {"messages": f"{n // 2 + 1:032}.5", "counter": f"{n + 1:032}.5"}
        meta = metadata(n) if callable(metadata) else (metadata or {"step": n, "parents": {}})
        rows.append((thread, ns, checkpoint_id, {"v": 4, "channel_versions": versions}, meta))
    return rows


def _rows() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for n in range(3):
        rows += _thread(f"plain-{n}", [9, 8, 7, 5, 4, 2.5, 2, 1.5, 1])
    root = _thread("sub", [6, 5, 4, 3, 2, 1])
    rows += root
    old_root, new_root = root[0][2], root[-1][2]
    rows += _thread("sub", [5.9, 5.8], "child:aaa", lambda n: {"step": n, "parents": {"": old_root}})
    rows += _thread("sub", [0.9, 0.8], "child:bbb", lambda n: {"step": n, "parents": {"": new_root}})
    rows += _thread("sub", [3.5, 3.4], "child:ccc", lambda n: {"step": n, "parents": {"": _id(50, 7)}})
    rows += _thread("sub", [3.3], "child:ddd", {"step": 0, "parents": []})
    rows += _thread("sub", [4, 3], "stable", {"step": 1})
    rows += _thread("delta", [5, 4, 3, 2, 1], metadata=lambda n: {"step": n, "counters_since_delta_snapshot": {}})
    rows += _thread("legacy", [5, 4, 3, 2, 1], metadata=orjson.dumps({"step": 1, "parents": {}}).decode())
    rows += _thread("odd-ids", [5, 4, 3, 2], ids=["ckpt-1", "ckpt-2", "ckpt-3", "ckpt-4"])
    rows += _thread("upper", [5, 4, 3, 2], ids=[_id(age, n).upper() for n, age in enumerate([5, 4, 3, 2])])
    rows += _thread("fresh", [3, 2, 1, 0.0001])
    rows += _thread("old", [101, 100, 99])
    rows += _thread("vip-1", [9, 8, 7, 6])
    rows += _thread("a_b%c", [9, 8, 7, 6])
    return rows


def _fill(libpq: str, url: str) -> None:
    import psycopg

    with open_store(url, write=True):
        pass  # the saver's tables
    checkpoints, blobs, writes = [], [], []
    previous: dict[tuple[str, str], str] = {}
    for thread, ns, checkpoint_id, checkpoint, metadata in _rows():
        # One parent chain per namespace (the saver's shape; blobs planned from three maps), except
        # plain-2's (no parents: planned map by map).
        parent = previous.get((thread, ns)) if thread != "plain-2" else None
        previous[thread, ns] = checkpoint_id
        checkpoints.append(
            (thread, ns, checkpoint_id, parent, orjson.dumps(checkpoint).decode(), orjson.dumps(metadata).decode())
        )
        for channel, version in checkpoint["channel_versions"].items():
            blobs.append((thread, ns, channel, version, b"\x91\x01" * (len(checkpoint_id) % 5 + 1)))
        writes += [(thread, ns, checkpoint_id, idx, b"\x01" * (idx + 3)) for idx in range(2)]
    with psycopg.connect(libpq, autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, "
            "metadata) VALUES (%s, %s, %s, %s, %s, %s)",
            checkpoints,
        )
        cur.executemany(
            "INSERT INTO checkpoint_blobs VALUES (%s, %s, %s, %s, 'msgpack', %s) ON CONFLICT DO NOTHING", blobs
        )
        cur.executemany(
            "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)"
            " "
            "VALUES (%s, %s, %s, 'task', %s, 'messages', 'msgpack', %s)",
            writes,
        )
        # an orphan blob (no checkpoint names its version): may belong to a put in flight, so it stays
        cur.execute("INSERT INTO checkpoint_blobs VALUES ('plain-0', '', 'messages', 'in-flight', 'msgpack', '')")


@contextmanager
def _stores(count: int) -> Iterator[list[tuple[str, str]]]:
    with ExitStack() as stack:
        stores = [stack.enter_context(postgres_schema()) for _ in range(count)]
        for url, libpq in stores:
            _fill(libpq, url)
        yield stores


POLICIES = [
    Policy(keep_last=2, min_idle=3600),
    Policy(keep_last=1, min_idle=0),
    Policy(keep_last=1, keep_within=3 * DAY, min_idle=60),
    Policy(delete_idle=30 * DAY, keep_last=3, exempt="vip-*", min_idle=300),
    Policy(delete_idle=30 * DAY, min_idle=300),
    Policy(keep_last=1, thread_glob="plain-?", min_idle=0),
    Policy(keep_last=1, thread_glob="a_b%c", min_idle=0),
    Policy(keep_within=4.5 * DAY, min_idle=0),
]


def _row(thread: ThreadPlan) -> tuple[Any, ...]:
    return thread.thread_id, thread.checkpoints, thread.doomed, thread.writes, thread.bytes, thread.skipped


def test_the_sql_plan_is_the_python_plan_thread_for_thread() -> None:
    with _stores(1) as [(url, _)]:
        for policy in POLICIES:
            with open_store(url) as store:
                general = [_row(t) for t in plan(store, policy, NOW)]
                server = in_server(store, policy, NOW)
                assert server is not None
                rows: list[ThreadPlan] = []
                report = server.plan(rows.append)
            assert [_row(t) for t in rows] == general, policy
            assert report.checkpoints_to_delete == sum(r[2] for r in general) > 0, policy


def _contents(libpq: str) -> dict[str, list[tuple[Any, ...]]]:
    import psycopg

    with psycopg.connect(libpq) as conn:
        return {
            table: conn.execute(f"SELECT {keys} FROM {table} ORDER BY {keys}").fetchall()
            for table, keys in (
                ("checkpoints", "thread_id, checkpoint_ns, checkpoint_id"),
                ("checkpoint_writes", "thread_id, checkpoint_ns, checkpoint_id, task_id, idx"),
                ("checkpoint_blobs", "thread_id, checkpoint_ns, channel, version"),
            )
        }


@pytest.mark.parametrize(
    ("policy", "batch_size"),
    [(POLICIES[0], 1), (POLICIES[0], 500), (POLICIES[3], 7)],
    ids=["keep-last-1", "keep-last-500", "delete-idle-7"],
)
def test_the_sql_delete_leaves_what_the_python_delete_leaves(policy: Policy, batch_size: int) -> None:
    with _stores(2) as [(general_url, general_libpq), (server_url, server_libpq)]:
        with open_store(general_url, write=True) as store, open_store(general_url) as reader:
            spool = Spool()
            expected = delete_spooled(store, spool, plan_to_spool(reader, policy, NOW, spool), batch_size)
            spool.close()
        blobs_before = len(_contents(server_libpq)["checkpoint_blobs"])
        with open_store(server_url, write=True) as store:
            server = in_server(store, policy, NOW)
            assert server is not None
            planned = server.plan()
            blobs_planned = planned.blobs_to_delete
            done = server.run(batch_size)
        assert _without_blobs(done) == _without_blobs(expected) and not done.errors
        # the run planned batch by batch what the plan said, bytes and blobs included
        assert (done.bytes_to_free, done.blobs_to_delete) == (planned.bytes_to_free, planned.blobs_to_delete)
        left = _contents(server_libpq)
        assert left == _contents(general_libpq)
        assert ("plain-0", "", "messages", "in-flight") in left["checkpoint_blobs"]
        # the plan counted exactly the blobs the run deleted
        assert blobs_planned == done.blobs_deleted == blobs_before - len(left["checkpoint_blobs"]) > 0
        with open_store(server_url, write=True) as store:
            again = in_server(store, policy, NOW)
            assert again is not None
            second = again.plan()
            assert second.checkpoints_to_delete == 0 and second.blobs_to_delete == 0


def test_rows_moved_after_the_plan_are_still_deleted() -> None:
    """A row that moved between the plan and the run (here: every row updated in place, as an
    upsert or a table rewrite would move it) is still deleted, and nothing else is: a batch
    deletes checkpoints where its own statement read them, never where an earlier plan saw them."""
    import psycopg

    policy = POLICIES[0]
    with _stores(2) as [(still_url, still_libpq), (moved_url, moved_libpq)]:
        reports = []
        for url, libpq in ((still_url, still_libpq), (moved_url, moved_libpq)):
            with open_store(url, write=True) as store:
                server = in_server(store, policy, NOW)
                assert server is not None
                planned = server.plan()
                if url == moved_url:
                    with psycopg.connect(libpq, autocommit=True) as other:
                        other.execute("UPDATE checkpoints SET type = type")
                        other.execute("UPDATE checkpoint_blobs SET type = type")
                done = server.run(3)
                assert done.checkpoints_deleted == planned.checkpoints_to_delete > 0
                reports.append(done.as_json())
        assert reports[0] == reports[1] and reports[0]["blobs_deleted"] == reports[0]["blobs_to_delete"] > 0
        assert _contents(still_libpq) == _contents(moved_libpq)


def test_a_batch_whose_checkpoints_moved_meanwhile_runs_again_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A concurrent upsert can move a checkpoint between the batch statement's read and its delete:
    the delete by ctid then misses it. Simulated here by a statement whose checkpoint delete finds
    no row where it looks: the batch is undone and run again by key, and the store ends as a
    normal run leaves it, no write or blob deleted without its checkpoint."""
    from ckpt.backends.postgres.prune import batches as pg_prune_batches

    real = pg_prune_batches.statement

    def missing(*, by_key: bool) -> str:
        text = real(by_key=by_key)
        return text if by_key else text.replace("x.ctid = d.row_ctid AND", "x.ctid = '(0,0)'::tid AND")

    assert missing(by_key=False) != real(by_key=False)
    policy = POLICIES[1]
    with _stores(2) as [(normal_url, normal_libpq), (missed_url, missed_libpq)]:
        reports = []
        for url in (normal_url, missed_url):
            with monkeypatch.context() as patch, open_store(url, write=True) as store:
                if url == missed_url:
                    patch.setattr(pg_prune_batches, "statement", missing)
                server = in_server(store, policy, NOW)
                assert server is not None
                reports.append(server.run(4).as_json())
        assert reports[0] == reports[1] and reports[0]["checkpoints_deleted"] > 0
        assert _contents(normal_libpq) == _contents(missed_libpq)


def _without_blobs(report: PruneReport) -> dict[str, object]:
    """The report as the general path makes it: it cannot count PostgreSQL blobs ahead."""
    fields = report.as_json()
    for name in ("blobs_to_delete", "blobs_deleted", "bytes_to_free"):
        fields.pop(name)
    return fields


def test_a_linear_namespace_frees_an_unreferenced_blob_inside_its_version_range() -> None:
    """The documented difference of the three-map plan: a blob no checkpoint references, between
    the versions the deleted checkpoints reference, is garbage of a failed put and goes too; one
    above them (a put in flight) stays."""
    import psycopg

    with _stores(1) as [(url, libpq)]:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO checkpoint_blobs VALUES ('plain-0', '', 'counter', %s, 'msgpack', ''), "
                "('plain-0', '', 'counter', %s, 'msgpack', '')",
                (f"{2:032}.7", f"{99:032}.7"),
            )
        with open_store(url, write=True) as store:
            server = in_server(store, Policy(keep_last=2, min_idle=0), NOW)
            assert server is not None
            server.run(500)
        versions = {v for t, _, c, v in _contents(libpq)["checkpoint_blobs"] if t == "plain-0" and c == "counter"}
        assert f"{2:032}.7" not in versions and f"{99:032}.7" in versions
        assert versions == {f"{8:032}.5", f"{9:032}.5", f"{99:032}.7"}  # the two kept checkpoints' and the new one


def test_a_thread_written_after_the_plan_is_planned_again_and_skipped_by_min_idle() -> None:
    """The run plans each batch as it deletes it: a graph that resumed a thread after the plan
    (shown before the question) makes that thread recent, and --min-idle leaves it alone."""
    import psycopg

    policy = Policy(keep_last=1, min_idle=60)
    with _stores(1) as [(url, libpq)]:
        with open_store(url, write=True) as store:
            server = in_server(store, policy, NOW)
            assert server is not None
            planned = server.plan()
            with psycopg.connect(libpq, autocommit=True) as writer:  # a graph resumes plain-1
                writer.execute(
                    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint) "
                    "VALUES ('plain-1', '', %s, '{}')",
                    (_id(0, 99),),
                )
            done = server.run(3)
        recent = "written within --min-idle"
        assert done.skipped[recent] == planned.skipped[recent] + 1
        assert done.checkpoints_deleted == planned.checkpoints_to_delete - 8 > 0  # plain-1's 8 stay
        counts = dict(
            psycopg.connect(libpq).execute("SELECT thread_id, count(*) FROM checkpoints GROUP BY 1").fetchall()
        )
        assert counts["plain-1"] == 10 and counts["plain-0"] == counts["plain-2"] == 1


def test_policies_without_an_exact_sql_form_use_the_general_path() -> None:
    assert supports(Policy(keep_last=1, keep_within=DAY, delete_idle=DAY, exempt="vip-*", thread_glob="a?*"))
    for policy in (
        Policy(keep_daily=3),
        Policy(keep_weekly=3),
        Policy(keep_last=1, metadata=(("tenant", "a"),)),
        Policy(keep_last=1, thread_glob="t[0-9]"),
        Policy(keep_last=1, exempt="[!v]*"),
    ):
        assert not supports(policy)


@pytest.mark.parametrize("seconds", [0.0, 59.99999, 300.0, 7 * DAY, 1234567.8912345])
def test_time_bounds_split_ids_exactly_where_the_python_rule_does(seconds: float) -> None:
    rule = bounds(Policy(keep_last=1, keep_within=seconds, delete_idle=seconds, min_idle=seconds), NOW)
    for key, holds in (
        ("within", lambda t: NOW - t <= seconds),
        ("idle", lambda t: NOW - t < seconds),
        ("dead", lambda t: not NOW - t >= seconds),
    ):
        tick = first_tick(holds)
        assert rule[key] == id_at_tick(tick)
        below, at = id_at_tick(tick - 1), id_at_tick(tick)
        assert not holds(checkpoint_time(below) or 0.0) and holds(checkpoint_time(at) or 0.0)
        assert below < at


def test_only_postgres_offers_a_server_side_prune_and_only_for_policies_it_plans_exactly(tmp_path: Any) -> None:
    """The capability, not the store's kind: the general path asks ``Store.server_prune``."""
    from tests.conftest import sqlite_url

    with open_store(sqlite_url(tmp_path / "x.db"), write=True) as store:
        assert store.server_prune(Policy(keep_last=1), NOW) is None
    with _stores(1) as [(url, _)], open_store(url, write=True) as store:
        offered = store.server_prune(Policy(keep_last=1), NOW, 1)
        assert offered is not None
        offered.close()
        assert store.server_prune(Policy(keep_last=1, keep_daily=2), NOW, 1) is None


def test_two_jobs_plan_and_delete_what_one_connection_does() -> None:
    import psycopg

    from ckpt.backends.postgres.prune.jobs import ParallelPrune, ranges

    assert ranges(["m"]) == [(None, "m"), ("m", None)] and ranges([]) == [(None, None)]
    policy = Policy(keep_last=1, keep_within=3 * DAY, min_idle=60)
    with _stores(2) as [(one_url, one_libpq), (two_url, two_libpq)]:
        outcomes = []
        for url, libpq, jobs in ((one_url, one_libpq, 1), (two_url, two_libpq, 2)):
            with psycopg.connect(libpq, autocommit=True) as conn:
                conn.execute("ANALYZE checkpoints")  # the statistics the jobs' ranges come from
            with open_store(url, write=True) as store:
                server = in_server(store, policy, NOW, jobs)
                assert server is not None and isinstance(server, ParallelPrune) == (jobs == 2)
                rows: list[ThreadPlan] = []
                try:
                    planned = server.plan(rows.append)
                    plan_json = dict(planned.as_json())
                    done = server.run(3)
                finally:
                    server.close()
            done_json = dict(done.as_json())
            assert plan_json.pop("jobs") == done_json.pop("jobs") == jobs
            outcomes.append(([_row(t) for t in rows], plan_json, done_json, _contents(libpq)))
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][2]["checkpoints_deleted"] > 0 and outcomes[0][2]["blobs_deleted"] > 0


def test_two_jobs_sharing_a_queue_from_both_ends_get_every_batch_once() -> None:
    """One connection taking batches from the front, another from the back, in turn: the batches
    hold whole threads, meet without a gap or an overlap, and together cover every thread once."""
    import psycopg

    from ckpt.backends.postgres.prune.batches import BatchQueue
    from ckpt.backends.postgres.prune.sql import IN_RANGE

    in_range = IN_RANGE.format(lo="lo", hi="hi", col="thread_id")
    with _stores(1) as [(_, libpq)], psycopg.connect(libpq, autocommit=True) as a, psycopg.connect(libpq) as b:
        threads = [r[0] for r in a.execute("SELECT DISTINCT thread_id FROM checkpoints")]
        queue, fronts, backs = BatchQueue((None, None)), [], []
        for _ in threads:
            for conn, side in ((a, fronts), (b, backs)):
                batch = queue.next(conn, 10, from_back=side is backs)
                if batch is not None:
                    side.append(batch)
        assert queue.next(a, 10) is None and queue.next(b, 10, from_back=True) is None
        got = fronts + backs[::-1]
        assert len(fronts) >= 2 and len(backs) >= 2
        assert got[0][0] is None and got[-1][1] is None
        assert all(got[k][1] == got[k + 1][0] for k in range(len(got) - 1))
        inside = [  # in the column's collation, as the batches' statements read them
            [
                r[0]
                for r in a.execute(f"SELECT DISTINCT thread_id FROM checkpoints WHERE {in_range}", {"lo": lo, "hi": hi})
            ]
            for lo, hi in got
        ]
        assert sorted(t for part in inside for t in part) == sorted(threads) and all(inside)


def test_a_failed_batch_is_reported_rolled_back_whole_and_the_other_batches_go_on() -> None:
    """A batch whose statement fails (here: a trigger refuses to delete plain-1's writes) leaves
    every row of its threads as it was, is named in the report's errors, and the batches after it
    still run; a rerun once the cause is gone finishes the work."""
    import psycopg

    policy = Policy(keep_last=1, min_idle=0)
    with _stores(1) as [(url, libpq)]:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN IF OLD.thread_id = 'plain-1' THEN RAISE EXCEPTION 'refused'; END IF; RETURN OLD; END$$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE DELETE ON checkpoint_writes FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        before = _contents(libpq)
        with open_store(url, write=True) as store:
            server = in_server(store, policy, NOW)
            assert server is not None
            planned = server.plan()
            done = server.run(1)  # one thread per batch
        assert len(done.errors) == 1 and "'plain-1'" in done.errors[0] and "refused" in done.errors[0]
        after = _contents(libpq)
        for table, rows in before.items():  # plain-1 untouched, in every table
            assert [r for r in rows if r[0] == "plain-1"] == [r for r in after[table] if r[0] == "plain-1"]
        assert 0 < done.checkpoints_deleted == planned.checkpoints_to_delete - 8  # all but plain-1's 8
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse ON checkpoint_writes")
        with open_store(url, write=True) as store:
            server = in_server(store, policy, NOW)
            assert server is not None
            rerun = server.run(1)
        assert rerun.checkpoints_deleted == 8 and not rerun.errors
