"""Redis writes: the fast document path equals the exact one, and the pipelined blocks stay atomic."""

from __future__ import annotations

import datetime
import enum
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from ckpt.backends import open_store
from ckpt.backends.core.base import CheckpointKey, CheckpointRecord, Payload, PendingWrite
from ckpt.backends.redis.docs import checkpoint_document, encoded_checkpoint, encoded_write, write_document
from ckpt.backends.redis.jsonform import ExtCache, Losses, decoded_for_redis
from ckpt.backends.redis.wire import Block, Pipeline
from examples.graphs import serializer
from tests.conftest import Cli, sqlite_url
from tests.servers import redis_prefix, server_url


class Colour(enum.Enum):
    RED = "red"


def _messages() -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    return [
        HumanMessage("hi é 😀", id="m1"),
        AIMessage(
            "", id="m2", name="bot", additional_kwargs={"k": [1, 2.5, None]},
            tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}],
            usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        ),
        ToolMessage("42", tool_call_id="c1"),
    ]  # fmt: skip


def _values() -> list[Any]:
    """Channel values the fast path must match the exact path on, lossless or not."""
    from langgraph.types import Interrupt, Send

    messages = _messages()
    return [
        messages,
        messages[:2],  # the same messages again: served from the cache the second time
        {"send": Send("node", {"x": [1, "y"]}), "interrupt": Interrupt(value="why?", id="i1")},
        {1, 2, 3},
        frozenset({"a"}),
        {"when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC), "day": datetime.date(2024, 1, 2)},
        {"id": uuid.UUID(int=7), "colour": Colour.RED},
        {"raw": b"\x00\x01", "nested": [b"x"]},
        {"nan": float("nan"), "inf": float("-inf"), "big": 1.7976931348623157e308, "zero": -0.0},
        {1: "int key", "s": "str key"},
        {"text": "ˇ\x7f marker-like bytes \u02ff", "n": 2**63 - 1, "neg": -(2**63)},
        [messages[0], {"deep": [[{"m": messages[1]}]]}],
        {"in_ext": Send("node", {"b": b"\x01"}), "plain": b"\x02", "when": datetime.date(2024, 5, 6)},
    ]


def _record(
    value: Any, *, int_versions: bool = False, n: int = 0, seen: Any = None, sends: list[Any] | None = None
) -> CheckpointRecord:
    serde = serializer()
    version: Any = 3 if int_versions else "00000000000000000000000000000003.0.5"
    checkpoint = {
        "v": 4, "ts": "2024-01-01T00:00:00+00:00", "id": f"1ef00000-0000-6000-8000-{n:012d}",
        "channel_values": {"value": value, "counter": 1},
        "channel_versions": {"value": version, "counter": version},
        "versions_seen": {"node": {"value": version if seen is None else seen}}, "updated_channels": ["value"],
    }  # fmt: skip
    if sends is not None:  # a format v<4 checkpoint keeps its pending Sends in the checkpoint itself
        checkpoint |= {"v": 1, "pending_sends": sends}
    _, data = serde.dumps_typed(checkpoint)
    writes = tuple(
        PendingWrite("task", "", i, "value", Payload(*serde.dumps_typed(v))) for i, v in enumerate([value, None])
    )
    return CheckpointRecord(
        key=CheckpointKey("t", "", checkpoint["id"]),
        parent_checkpoint_id=None,
        checkpoint=Payload("msgpack", data),
        metadata=Payload("json", b'{"source": "loop", "step": 1, "parents": {}}'),
        writes=writes,
    )


def test_fast_documents_equal_the_exact_ones() -> None:
    from langgraph.types import Send

    cache: ExtCache = {}
    records = [_record(v, n=i) for i, v in enumerate(_values())]
    records += [_record(_messages(), int_versions=True, n=99), _record(_messages(), n=98, seen=2)]  # int versions
    when = datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC)  # v<4: Sends with a loss in the checkpoint
    records += [_record(when, n=97, sends=[Send("node", {"at": when})]), _record(when, n=96, sends=[])]
    for _ in range(2):  # the second round reads every message from the cache
        for record in records:
            fast_losses, exact_losses = Losses(), Losses()
            text, has_writes = encoded_checkpoint(record, fast_losses, cache)
            exact = checkpoint_document(record, exact_losses)
            assert json.loads(text) == json.loads(json.dumps(exact)) and has_writes is exact["has_writes"]
            for write in record.writes:
                fast = json.loads(encoded_write(record.key, write, fast_losses, cache))
                assert fast == json.loads(json.dumps(write_document(record.key, write, exact_losses)))
            assert fast_losses == exact_losses, record.checkpoint
    assert cache, "messages were cached"


@pytest.mark.parametrize(
    ("index", "fast", "lost"),
    [(0, True, 0), (2, True, 0), (3, True, 0), (5, True, 2), (6, True, 2), (7, True, 0), (8, False, 0), (9, False, 0)],
)
def test_the_fast_path_is_taken_only_where_it_is_exact(index: int, fast: bool, lost: int) -> None:
    """Non-finite floats and non-string keys go the exact way, bytes fail orjson later; lossy ext
    values (datetimes, dates, UUIDs, enums) take the fast path with their losses counted."""
    record, losses = _record(_values()[index]), Losses()
    assert (decoded_for_redis(record.checkpoint.data, {}, losses) is not None) is fast
    assert sum(losses.values()) == lost


def test_a_rerun_flags_an_existing_checkpoint_that_gains_writes(cli: Cli, official_db: Path) -> None:
    with redis_prefix() as url:
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        prefix = url.split("checkpoint_prefix=")[1].split("&")[0]
        client = redis.Redis.from_url(server_url("redis"), decode_responses=True)
        # prefix_write:thread:ns:id:task:idx; a subgraph namespace has ':' of its own, so take a root one
        write_key = next(k for k in client.scan_iter(match=f"{prefix}_write:*", count=1000) if k.count(":") == 5)
        thread, ns, checkpoint_id = write_key.split(":")[1:4]
        owner = f"{prefix}:{thread}:{ns}:{checkpoint_id}"
        assert client.json().get(owner, "$.has_writes") == [True]
        client.json().set(owner, "$.has_writes", False)
        client.delete(write_key)
        result = cli("migrate", sqlite_url(official_db), url, "-o", "json")
        report = json.loads(result.stdout)
        assert (report["checkpoints_written"], report["writes_written"]) == (0, 1)
        assert client.json().get(owner, "$.has_writes") == [True]
        assert client.exists(write_key) == 1
        with open_store(url) as store:
            assert store.count() == 29


def test_a_refused_command_aborts_its_whole_block() -> None:
    client = redis.Redis.from_url(server_url("redis"))
    key = f"ckpt_wire_test:{uuid.uuid4().hex}"
    try:
        block = Block()
        block.add("set", "SET", key, "1")
        block.add("bad", "GET", key, "too", "many")  # refused when queued: EXEC aborts the block
        pipeline = Pipeline(client)
        with pytest.raises(redis.ResponseError):
            pipeline.send(block)
            pipeline.finish()
        pipeline.close(failed=True)
        assert client.exists(key) == 0
        again = Pipeline(client)  # the pool hands out a working connection afterwards
        block = Block()
        block.add("set", "SET", key, "2")
        again.send(block)
        assert [(kind, bool(reply)) for kind, reply in again.finish()] == [("set", True)]
        again.close(failed=False)
        assert client.get(key) == b"2"
    finally:
        client.delete(key)
        client.close()


def _keys_and_values(client: redis.Redis, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in client.scan_iter(count=1000):
        name = key.decode()
        if name.startswith(f"{prefix}:") or name.startswith(f"{prefix}_"):
            out[name] = client.json().get(name) if client.type(key) == b"ReJSON-RL" else client.get(name)
        elif name.startswith("write_keys_zset:"):
            out[name] = client.zrange(name, 0, -1, withscores=True)
    return out


def test_a_batch_cut_short_between_blocks_is_completed_by_a_rerun(official_db: Path) -> None:
    """What a kill -9 between two pipelined blocks leaves (the first blocks applied) is filled in, once."""
    with open_store(sqlite_url(official_db)) as source:
        records = list(source.records())
    client = redis.Redis.from_url(server_url("redis"))
    with redis_prefix() as whole, redis_prefix() as cut:
        with open_store(whole, write=True) as store:
            store.write(records)
        with open_store(cut, write=True) as store:
            first = store.write(records[:10])  # the blocks that made it before the kill
            second = store.write(records)
        assert (first.checkpoints_written, second.checkpoints_written, second.checkpoints_skipped) == (10, 19, 10)
        assert second.writes_skipped == sum(len(r.writes) for r in records[:10]) > 0
        prefix_of = {url: url.split("checkpoint_prefix=")[1].split("&")[0] for url in (whole, cut)}

        def rename(value: Any) -> Any:  # latest pointers hold a key, with its prefix
            return (
                value.replace(prefix_of[cut].encode(), prefix_of[whole].encode()) if isinstance(value, bytes) else value
            )

        # write_keys_zset:* keys carry no prefix: both stores share them, so they are not compared
        got = {
            k.replace(prefix_of[cut], prefix_of[whole]): rename(v)
            for k, v in _keys_and_values(client, prefix_of[cut]).items()
            if not k.startswith("write_keys_zset:")
        }
        expected = _keys_and_values(client, prefix_of[whole])
        assert got == {k: v for k, v in expected.items() if not k.startswith("write_keys_zset:")}
        assert len(got) > 29 * 2
    client.close()
