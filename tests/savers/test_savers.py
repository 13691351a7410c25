"""ckpt.savers beyond the conformance suite: a real graph pruned and resumed, the classes and their
``from_conn_string``, what the Redis savers' own ``list`` hides, and argument errors."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from uuid import uuid4

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata
from langgraph.checkpoint.sqlite import SqliteSaver as OfficialSqliteSaver
from langgraph.types import Command

import ckpt.savers
from ckpt.backends.core.base import Selection
from examples.graphs import build_graph, config, serializer
from tests import oracle
from tests.savers.conformance import _redis_prefix


def test_a_pruned_graph_thread_reads_and_resumes_on_the_official_saver(tmp_path: Path) -> None:
    path = str(tmp_path / "agent.db")
    with ckpt.savers.SqliteSaver.from_conn_string(path) as saver:
        assert type(saver) is ckpt.savers.SqliteSaver
        saver.serde = serializer()
        app = build_graph(saver)
        for thread in ("done", "waiting"):
            app.invoke({"messages": [HumanMessage(content=f"find papers for {thread}")]}, config(thread))
        app.invoke(Command(resume="yes"), config("done"))
        before = {t: app.get_state(config(t)) for t in ("done", "waiting")}
        counts = {t: len(list(saver.list(config(t)))) for t in ("done", "waiting")}
        assert all(n > 3 for n in counts.values())
        every = oracle.snapshot(f"sqlite:///{path}", Path(path))
        saver.prune(["done", "waiting"], strategy="keep_latest")
    kept = oracle.assert_kept_unchanged(f"sqlite:///{path}", Path(path), every)  # survivors read as before
    assert 0 < len(kept) < len(every)
    with OfficialSqliteSaver.from_conn_string(path) as official:
        official.serde = serializer()
        app = build_graph(official)
        for thread, state in before.items():
            after = app.get_state(config(thread))
            assert after.values == state.values
            assert after.next == state.next
            assert [i.value for i in after.interrupts] == [i.value for i in state.interrupts]
            assert len(list(official.list(config(thread)))) < counts[thread]
        assert before["waiting"].next == ("approve",)
        result = app.invoke(Command(resume="yes"), config("waiting"))
        assert result["messages"][-1].content == "approval: yes"
        assert app.get_state(config("waiting")).next == ()


def test_prune_delete_leaves_nothing_and_other_threads_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "agent.db")
    with ckpt.savers.SqliteSaver.from_conn_string(path) as saver:
        saver.serde = serializer()
        app = build_graph(saver)
        for thread in ("a", "b"):
            app.invoke({"messages": [HumanMessage(content="hi")]}, config(thread))
        kept = [t.checkpoint["id"] for t in saver.list(config("b"))]
        every = oracle.snapshot(f"sqlite:///{path}", Path(path))
        saver.prune(["a"], strategy="delete")
        survivors = oracle.assert_kept_unchanged(f"sqlite:///{path}", Path(path), every)
        assert survivors == sorted(k for k in every if k[0] == "b")
        assert list(saver.list(config("a"))) == []
        assert [t.checkpoint["id"] for t in saver.list(config("b"))] == kept
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM writes WHERE thread_id = 'a'").fetchone()
    assert rows == (0,)


def test_prune_arguments_are_checked_as_the_official_savers_check_them(tmp_path: Path) -> None:
    with ckpt.savers.SqliteSaver.from_conn_string(str(tmp_path / "x.db")) as saver:
        with pytest.raises(TypeError):
            saver.prune("thread-1")
        with pytest.raises(ValueError, match="Unknown prune strategy"):
            saver.prune(["thread-1"], strategy="keep_oldest")
        saver.prune([])  # no-op


def test_in_memory_sqlite_saver_prunes(tmp_path: Path) -> None:
    with ckpt.savers.SqliteSaver.from_conn_string(":memory:") as saver:
        parent = None
        for step in range(3):
            cfg = generate_config("t")
            if parent:
                cfg["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
            parent = saver.put(cfg, generate_checkpoint(), generate_metadata(step=step), {})
        saver.prune(["t"])
        assert [t.config for t in saver.list(generate_config("t"))] == [parent]


@pytest.mark.parametrize("name", ["RedisSaver", "AsyncRedisSaver"])
def test_redis_prune_keeps_latest_per_namespace(name: str) -> None:
    """The conformance test's scenario, checked in the store (the official list() mixes namespaces)."""

    async def run() -> None:
        with _redis_prefix() as (base, prefix):
            kwargs = {"checkpoint_prefix": prefix, "checkpoint_write_prefix": f"{prefix}_write"}
            tid, latest = str(uuid4()), {}
            if name == "RedisSaver":
                cm = ckpt.savers.RedisSaver.from_conn_string(base, **kwargs)
                saver = cm.__enter__()
                saver.setup()
            else:
                acm = ckpt.savers.AsyncRedisSaver.from_conn_string(base, **kwargs)
                saver = await acm.__aenter__()
                await saver.asetup()
            assert type(saver).__module__ == "ckpt.savers.redis"
            try:
                for ns, n in (("", 3), ("child:1", 2)):
                    parent = None
                    for step in range(n):
                        cfg = generate_config(tid, checkpoint_ns=ns)
                        if parent:
                            cfg["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
                        put = saver.put if name == "RedisSaver" else None
                        if put is not None:
                            parent = await asyncio.to_thread(
                                put, cfg, generate_checkpoint(), generate_metadata(step=step), {}
                            )
                        else:
                            parent = await saver.aput(cfg, generate_checkpoint(), generate_metadata(step=step), {})
                    latest[ns] = parent["configurable"]["checkpoint_id"]
                await saver.aprune([tid], strategy="keep_latest")
                from ckpt.backends.redis.store import RedisStore

                with RedisStore.open(
                    f"{base}?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
                ) as store:
                    left = {h.key.checkpoint_ns: h.key.checkpoint_id for h in store.headers(Selection(thread_id=tid))}
                    count = sum(1 for _ in store.headers(Selection(thread_id=tid)))
                assert left == latest and count == 2
            finally:
                if name == "RedisSaver":
                    cm.__exit__(None, None, None)
                else:
                    await acm.__aexit__(None, None, None)

    asyncio.run(run())


def test_every_saver_class_is_the_official_one_plus_three_methods() -> None:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    for name in ckpt.savers.__all__:
        cls = getattr(ckpt.savers, name)
        official = cls.__mro__[2]
        assert official.__name__ == name and official.__module__.startswith("langgraph.checkpoint")
        for method in ("copy_thread", "delete_for_runs", "prune", "acopy_thread", "adelete_for_runs", "aprune"):
            assert getattr(cls, method) is not getattr(BaseCheckpointSaver, method)
            assert getattr(cls, method).__module__.startswith("ckpt.savers")
        own = {k for k in vars(cls) if not k.startswith("__")}
        assert own <= {"_ckpt_store", "_ckpt_run", "prune", "aprune", "from_conn_string"}, (name, own)
