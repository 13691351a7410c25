"""The C fast path of the PostgreSQL split is byte-identical to the span walker, or steps aside."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import ormsgpack
import pytest

from ckpt.backends import open_store
from ckpt.backends.core.base import Payload
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.msgpack_spans import map_header
from ckpt.backends.postgres.layout import _fast_split, _split, _walk_split, split
from tests.conftest import sqlite_url

OPT = ormsgpack.OPT_NON_STR_KEYS
V1 = "00000000000000000000000000000001.0.25"


def _pack(obj: Any) -> bytes:
    return ormsgpack.packb(obj, option=OPT)


def _checkpoint(values: dict[str, Any], versions: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {
        "v": 4,
        "ts": "2026-11-27T00:00:00+00:00",
        "id": "1f0c0000-0000-6000-8000-000000000000",
        "channel_values": values,
        "channel_versions": versions if versions is not None else dict.fromkeys(values, V1),
        "versions_seen": {"__input__": {}},
        **more,
    }


def _raw_checkpoint(raw_values: list[tuple[str, bytes]]) -> bytes:
    """A checkpoint whose channel values are given as raw (possibly non-canonical) msgpack bytes."""
    body = map_header(len(raw_values)) + b"".join(_pack(k) + v for k, v in raw_values)
    fields = _checkpoint({})
    fields["channel_versions"] = {k: V1 for k, _ in raw_values}
    parts = [map_header(len(fields))]
    for key, value in fields.items():
        parts += [_pack(key), body if key == "channel_values" else _pack(value)]
    return b"".join(parts)


def test_every_real_checkpoint_takes_the_fast_path_and_matches(official_db: Path) -> None:
    with open_store(sqlite_url(official_db)) as store:
        payloads = [r.checkpoint.data for r in store.records()]
    assert len(payloads) == 29
    for data in payloads:
        fast = _fast_split(data)
        assert fast is not None and fast == _walk_split(data)
    assert any(_walk_split(d).blobs for d in payloads)  # the blob path is exercised too


@pytest.mark.parametrize(
    "values",
    [
        {"messages": [ormsgpack.Ext(5, b"\x93\xa1a\xa1b\x80"), ormsgpack.Ext(0, b"x" * 300)]},
        {"n": 3, "s": "text", "f": 1.5, "t": True, "none": None, "big": 2**63 + 5},
        {"nan": math.nan, "inf": -math.inf},  # JSONB has no NaN/Infinity: blobs
        {"nul": "a\x00b", "raw": b"\x00\xff" * 40},  # \u0000 is not JSONB text; bytes are "bytes" blobs
        {"nested": {"a": [1, {"b": b"x"}], 3: "int key"}},
    ],
    ids=["ext-values", "primitives", "nan", "nul-and-bytes", "nested"],
)
def test_canonical_checkpoints_take_the_fast_path_byte_identically(values: dict[str, Any]) -> None:
    data = _pack(_checkpoint(values, pending_sends=[ormsgpack.Ext(5, b"\x90")]))
    fast = _fast_split(data)
    assert fast is not None
    assert fast == _walk_split(data)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xd9\x03abc",  # str8 for a 3-byte string (canonical is fixstr)
        b"\xca\x3f\xc0\x00\x00",  # float32 1.5 (ormsgpack writes float64)
        b"\xcd\x00\x05",  # uint16 for 5
        b"\xde\x00\x01\xa1k\x01",  # map16 for a 1-entry map
        b"\xc5\x00\x02ab",  # bin16 for 2 bytes
        b"\x82\xa1k\x01\xa1k\x02",  # a duplicate key
    ],
)
def test_non_canonical_msgpack_falls_back_to_the_walker(raw: bytes) -> None:
    data = _raw_checkpoint([("a", b"\x01"), ("odd", raw)])
    assert _fast_split(data) is None
    walked = _walk_split(data)
    assert _split(data) == walked
    blob = {c: b for c, _v, _t, b in walked.blobs}.get("odd")
    if blob is not None:  # the exact source bytes (a bin's payload), never a re-encoding
        assert blob == (raw[3:] if raw.startswith(b"\xc5") else raw)


def test_delta_snapshots_and_int_versions_fall_back() -> None:
    delta = _pack(_checkpoint({"messages": ormsgpack.Ext(7, b"\x90")}))
    assert _fast_split(delta) is None
    assert _split(delta).checkpoint_json.count('"messages":true') == 1  # the saver's marker
    ints = _pack(_checkpoint({"messages": [1, 2], "n": 1}, {"messages": 2, "n": 1}))
    assert _fast_split(ints) is None
    assert _split(ints) == _walk_split(ints)
    assert all(not v.isdigit() for _c, v, _t, _b in _split(ints).blobs)  # padded strings, not ints


def test_what_the_walker_refuses_is_still_refused() -> None:
    no_version = _pack(_checkpoint({"nan": math.nan}, {}))
    ext_outside = _pack(_checkpoint({"n": 1}, versions_seen={"x": ormsgpack.Ext(5, b"\x90")}))
    for data in (no_version, ext_outside):
        assert _fast_split(data) is None
        with pytest.raises((ValueError, TypeError)):
            _walk_split(data)


def test_split_reports_corrupt_records_by_key(official_db: Path) -> None:
    with open_store(sqlite_url(official_db)) as store:
        record = next(iter(store.records()))
    broken = replace(record, checkpoint=Payload("msgpack", record.checkpoint.data[:-3]))
    with pytest.raises(CorruptRecordError, match="cannot decode"):
        split(broken)
