"""A payload a reader packed (``Payload.decoded``: Redis) is written as its bytes would be.

PostgreSQL's split and SQLite's version check read the reader's fields instead of decoding the
payload; for every kind of checkpoint they must give the rows (or the error) its bytes give.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import ormsgpack
import pytest

from ckpt.backends import CheckpointRecord, open_store
from ckpt.backends.core.base import Payload
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.msgpack_raw import RawExt, pack, packed
from ckpt.backends.postgres.layout import split
from ckpt.backends.sqlite.rows import checkpoint_row
from tests.backends.test_pg_split import _checkpoint
from tests.conftest import sqlite_url

DECODED_CASES = {
    "messages, bytes, NaN, NUL": _checkpoint(
        {"m": [ormsgpack.Ext(5, b"\x90"), {"k": 1}], "b": b"\x00\x01", "nan": math.nan, "nul": "a\x00b", "n": 2},
        pending_sends=[ormsgpack.Ext(5, b"\x90")],
    ),
    "kept ext (RawExt)": _checkpoint({"m": RawExt(5, b"\x91\x01"), "deep": [RawExt(7, b"\x90")]}),
    "delta snapshot (ormsgpack.Ext)": _checkpoint({"messages": ormsgpack.Ext(7, b"\x90")}),
    "delta snapshot (RawExt)": _checkpoint({"messages": RawExt(7, b"\x90")}),
    "int versions": _checkpoint({"messages": [1, 2], "n": 1}, {"messages": 2, "n": 1}),
    "no version": _checkpoint({"nan": math.nan}, {}),
    "ext outside channel values": _checkpoint({"n": 1}, versions_seen={"x": ormsgpack.Ext(5, b"\x90")}),
}


def _pair(official_db: Path, fields: dict[str, Any]) -> tuple[CheckpointRecord, CheckpointRecord]:
    """A record whose checkpoint was packed from ``fields``, and the same read from its bytes."""
    with open_store(sqlite_url(official_db)) as store:
        record = next(iter(store.records()))
    with_fields = replace(record, checkpoint=packed(fields))
    from_bytes = replace(record, checkpoint=Payload("msgpack", with_fields.checkpoint.data))
    assert with_fields.checkpoint.decoded is fields and from_bytes.checkpoint.decoded is None
    assert with_fields.checkpoint == from_bytes.checkpoint
    return with_fields, from_bytes


@pytest.mark.parametrize("name", DECODED_CASES)
def test_a_packed_payload_splits_as_its_bytes_do(official_db: Path, name: str) -> None:
    fields = DECODED_CASES[name]
    with_fields, from_bytes = _pair(official_db, fields)
    try:
        expected = split(from_bytes)
    except CorruptRecordError as error:
        with pytest.raises(CorruptRecordError, match=str(error).split(":")[0]):
            split(with_fields)
        return
    assert split(with_fields) == expected
    assert pack(fields) == with_fields.checkpoint.data  # the reader's fields left as they were


def test_the_decoded_form_never_outlives_its_bytes() -> None:
    payload = packed({"v": 4})
    assert replace(payload, data=b"\x80").decoded is None
    assert replace(payload).decoded is None
    assert Payload(payload.type, payload.data) == payload
    assert hash(Payload(payload.type, payload.data)) == hash(payload)
    assert "decoded" not in repr(payload)


@pytest.mark.parametrize("name", [*DECODED_CASES, "empty versions"])
def test_a_packed_payload_gives_the_sqlite_row_its_bytes_give(official_db: Path, name: str) -> None:
    fields = DECODED_CASES.get(name) or _checkpoint({"n": 1}, {})
    with_fields, from_bytes = _pair(official_db, fields)
    assert checkpoint_row(with_fields) == checkpoint_row(from_bytes)
    if name == "int versions":  # SqliteSaver's padded strings, not the packed ints
        assert checkpoint_row(with_fields)[5] != with_fields.checkpoint.data
