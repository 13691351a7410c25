"""msgpack ↔ tagged JSON must be lossless: property tests plus every real blob."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import ormsgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt.formats import tagged

OPTIONS = ormsgpack.OPT_NON_STR_KEYS

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, st.text(max_size=300), st.binary(max_size=300))
keys = st.one_of(
    st.text(max_size=20), st.integers(-1000, 1000), st.booleans(), st.none(), st.text(max_size=5).map(lambda s: "$" + s)
)


def _ext(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    payload = st.tuples(st.text(max_size=20), st.text(max_size=20), children).map(list)
    return st.builds(
        lambda code, value: ormsgpack.Ext(code, ormsgpack.packb(value, option=OPTIONS)), st.integers(0, 7), payload
    )


values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
        _ext(children),
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_decode_then_encode_is_byte_identical(value: Any) -> None:
    packed = ormsgpack.packb(value, option=OPTIONS)
    decoded = tagged.decode(packed)
    assert tagged.encode(decoded) == packed


@settings(max_examples=200, deadline=None)
@given(values)
def test_tagged_form_survives_json(value: Any) -> None:
    """The tagged form goes through JSON files (``export --decode``) and still re-encodes exactly."""
    packed = ormsgpack.packb(value, option=OPTIONS)
    through_json = orjson.loads(orjson.dumps(tagged.decode(packed)))
    assert tagged.encode(through_json) == packed


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        value = tagged.decode_exact(data)
    except ValueError:
        return
    assert tagged.encode(value) == data


def test_every_blob_of_the_official_store_round_trips(official_db: Path) -> None:
    conn = sqlite3.connect(f"file:{official_db}?mode=ro", uri=True)
    blobs = [row[0] for row in conn.execute("SELECT checkpoint FROM checkpoints")]
    blobs += [row[0] for row in conn.execute("SELECT value FROM writes WHERE type = 'msgpack'")]
    conn.close()
    assert len(blobs) > 100
    for blob in blobs:
        value = tagged.decode_exact(blob)
        assert "$raw" not in value if isinstance(value, dict) else True
        assert tagged.encode(value) == blob


def test_known_forms() -> None:
    assert tagged.decode(bytes.fromhex("c70307920001")) == {"$ext": 7, "v": [0, 1]}
    assert tagged.decode(ormsgpack.packb({1: "a"}, option=OPTIONS)) == {"$map": [[1, "a"]]}
    assert tagged.decode(ormsgpack.packb({"$x": 1})) == {"$map": [["$x", 1]]}
    assert tagged.decode(ormsgpack.packb(b"\x00\x01")) == {"$bin": "AAE="}
    nan = tagged.decode(ormsgpack.packb(float("nan")))
    assert nan == {"$float": "nan"} and math.isnan(tagged.from_tagged(nan))
    assert tagged.decode(ormsgpack.packb(-0.0)) == -0.0 and str(tagged.decode(ormsgpack.packb(-0.0))) == "-0.0"


def test_non_canonical_encoding_falls_back_to_raw_bytes() -> None:
    float32 = b"\xca\x3f\x80\x00\x00"  # 1.0 as float32: ormsgpack would write float64
    value = tagged.decode_exact(float32)
    assert value == {"$raw": "yj+AAAA=", "view": 1.0}
    assert tagged.encode(value) == float32


def test_semantic_form_ignores_map_and_set_order() -> None:
    from ckpt.backends import CheckpointKey, CheckpointRecord, Payload
    from ckpt.formats.semantic import semantic_digest

    def record(value: Any) -> CheckpointRecord:
        data = ormsgpack.packb(value, option=OPTIONS)
        return CheckpointRecord(CheckpointKey("t", "", "1"), None, Payload("msgpack", data), Payload("json", b"{}"))

    def a_set(*items: str) -> ormsgpack.Ext:
        return ormsgpack.Ext(0, ormsgpack.packb(["builtins", "set", list(items)]))

    one = {"channel_values": {"a": 1, "tags": a_set("x", "y")}, "channel_versions": {"a": "0003.5"}}
    two = {"channel_versions": {"a": 3}, "channel_values": {"tags": a_set("y", "x"), "a": 1}}
    assert semantic_digest(record(one)) == semantic_digest(record(two))
    assert semantic_digest(record(one)) != semantic_digest(record({**one, "channel_values": {"a": 2}}))
    lists = {"channel_values": {"l": ["x", "y"]}}
    assert semantic_digest(record(lists)) != semantic_digest(record({"channel_values": {"l": ["y", "x"]}}))
