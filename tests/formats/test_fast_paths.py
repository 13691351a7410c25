"""The C fast paths of doctor, size and import give the reference walkers' answers, on awkward bytes too.

Each fast path is compared with the slow code it stands in for: ``tagged.check`` with ``tagged.decode``
(does it raise?), ``PayloadDecoder.check`` with ``PayloadDecoder.decode``, ``sizes._packed_sizes`` with
the span walker, and the JSONL line reader's fast path with its checked path.
"""

from __future__ import annotations

import base64
import pickle
import struct
from typing import Any

import orjson
import ormsgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt.backends.core.base import CheckpointKey, CheckpointRecord, Payload, PendingWrite
from ckpt.backends.core.errors import CkptError, FormatError
from ckpt.backends.jsonl import lines
from ckpt.backends.ops import sizes
from ckpt.backends.ops.doctor import _check_record
from ckpt.formats import tagged
from ckpt.formats.payloads import PayloadDecoder
from ckpt.formats.state import decode_record
from tests.formats.test_tagged import OPTIONS, values

EXT = ormsgpack.Ext
# Bytes ormsgpack never writes, each still well-formed msgpack (or not, where named).
AWKWARD = [
    b"\xca\x3f\x80\x00\x00",  # float32 1.0
    b"\xcd\x00\x01",  # uint16 for 1: not minimal
    b"\xd3" + struct.pack(">q", -1),  # int64 for -1
    b"\xcf" + struct.pack(">Q", 2**64 - 1),  # the largest uint64
    b"\xd3" + struct.pack(">q", -(2**63)),  # the smallest int64
    b"\xd9\x01a",  # str8 for a one-byte string
    b"\xde\x00\x01\xa1a\x01",  # map16 with one entry
    b"\x82\xa1a\x01\xa1a\x02",  # a duplicate key
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01",  # a NaN with payload bits
    b"\xc7\x00\x05",  # ext8 with an empty payload: not msgpack inside
    b"\xd4\x05\xc1",  # fixext1 holding the never-used marker 0xc1
    b"\xd6\xff\x00\x00\x00\x01",  # a timestamp ext (-1): its payload is not msgpack
    b"\x81\xd4\x03\x01\x01",  # an ext as a map key
    b"\x92\x01",  # truncated array
    b"\x01\x02",  # trailing bytes
    b"\xc1",  # never-used marker
    b"",
    ormsgpack.packb(EXT(0, ormsgpack.packb(["m", "C", EXT(5, b"\xc1")])), option=OPTIONS),  # bad nested ext
    ormsgpack.packb(EXT(0, ormsgpack.packb(["m", "C", EXT(5, b"\x91\x01")])), option=OPTIONS),  # good nested ext
    b"\x91" * 300 + b"\x01",  # nested 300 deep
]


def _raises(fn: Any, *args: Any) -> bool:
    try:
        fn(*args)
    except (ValueError, CkptError):
        return False
    return True


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with one byte changed, cut short, or extended: odd and malformed msgpack."""
    if not data:
        return st.just(data)
    at = st.integers(0, len(data) - 1)
    flip = st.tuples(at, st.integers(0, 255)).map(lambda p: data[: p[0]] + bytes([p[1]]) + data[p[0] + 1 :])
    cut = at.map(lambda i: data[:i])
    return st.one_of(flip, cut, st.binary(max_size=3).map(lambda tail: data + tail))


awkward_bytes = st.one_of(
    st.sampled_from(AWKWARD),
    values.map(lambda v: ormsgpack.packb(v, option=OPTIONS)).flatmap(_mutations),
    st.binary(max_size=40),
)


@pytest.mark.parametrize("data", AWKWARD)
def test_check_fails_exactly_where_decode_does_on_awkward_bytes(data: bytes) -> None:
    assert _raises(tagged.check, data) == _raises(tagged.decode, data)


@settings(max_examples=600, deadline=None)
@given(awkward_bytes)
def test_check_fails_exactly_where_decode_does(data: bytes) -> None:
    assert _raises(tagged.check, data) == _raises(tagged.decode, data)


_AES_KEY = b"k" * 16


def _encrypted(data: bytes, key: bytes = _AES_KEY) -> bytes:
    from Crypto.Cipher import AES

    cipher = AES.new(key, AES.MODE_EAX)
    ciphertext, tag = cipher.encrypt_and_digest(data)
    return bytes(cipher.nonce) + tag + ciphertext


class _Bomb:
    def __reduce__(self) -> Any:
        return (pytest.fail, ("a pickle was loaded",))


PAYLOADS = [
    Payload("pickle", pickle.dumps(_Bomb())),  # opaque: never unpickled, so never fails
    Payload("weird", b"\x00\x01"),
    Payload("null", b""),
    Payload("bytes", b"\xc1"),
    Payload("bytearray", b"x"),
    Payload("json", b""),
    Payload("json", b'{"a": 1}'),
    Payload("json", b"{nope"),
    Payload("msgpack+aes", _encrypted(ormsgpack.packb({"a": EXT(0, b"\x91\x01")}))),
    Payload("msgpack+aes", _encrypted(b"\xc1")),
    Payload("msgpack+aes", _encrypted(b"\x01", key=b"w" * 16)),  # wrong key
    Payload("msgpack+aes", b"short"),
    Payload("msgpack+rot13", b"\xc1"),  # unknown cipher: opaque
    Payload("pickle+aes", _encrypted(pickle.dumps(_Bomb()))),
    *(Payload("msgpack", data) for data in AWKWARD),
]


@pytest.mark.parametrize("aes_key", [None, _AES_KEY])
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.type)
def test_payload_check_agrees_with_decode(payload: Payload, aes_key: bytes | None) -> None:
    decoder = PayloadDecoder(aes_key)
    assert _raises(decoder.check, payload) == _raises(decoder.decode, payload)


def _record(*payloads: Payload) -> CheckpointRecord:
    checkpoint, metadata, *writes = payloads
    return CheckpointRecord(
        CheckpointKey("t", "", "1"),
        None,
        checkpoint,
        metadata,
        tuple(PendingWrite("task", "", i, "c", p) for i, p in enumerate(writes)),
    )


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.type)
def test_doctor_words_a_bad_record_as_the_reference_does(payload: Payload) -> None:
    record = _record(Payload("msgpack", ormsgpack.packb({"v": 4})), Payload("json", b"{}"), payload)
    decoder = PayloadDecoder(_AES_KEY)
    try:
        decode_record(record, decoder)
        expected = None
    except CkptError as exc:
        expected = str(exc)
    try:
        _check_record(record, decoder)
        found = None
    except CkptError as exc:
        found = str(exc)
    assert found == expected


channel_values = st.dictionaries(st.one_of(st.text(max_size=10), st.integers(-5, 5)), values, max_size=6)
checkpoints = st.builds(
    lambda cv, extra: {"v": 4, "id": "x", "channel_values": cv, "channel_versions": {"a": "1.0"}, **extra},
    channel_values,
    st.dictionaries(st.text(max_size=5), values, max_size=2),
)


def _sizes_agree(data: bytes) -> None:
    fast = sizes._packed_sizes(data)
    assert fast is None or fast == sizes.walked_channel_sizes(data)
    assert sizes.channel_sizes(_record(Payload("msgpack", data), Payload("json", b"{}"))) == (
        sizes.walked_channel_sizes(data)
    )


@settings(max_examples=400, deadline=None)
@given(checkpoints)
def test_packed_channel_sizes_are_the_walkers(checkpoint: dict[str, Any]) -> None:
    data = ormsgpack.packb(checkpoint, option=OPTIONS)
    assert sizes._packed_sizes(data) is not None  # canonical: the fast path answers
    _sizes_agree(data)


@settings(max_examples=400, deadline=None)
@given(checkpoints.map(lambda c: ormsgpack.packb(c, option=OPTIONS)).flatmap(_mutations))
def test_channel_sizes_of_odd_checkpoints_are_the_walkers(data: bytes) -> None:
    _sizes_agree(data)


@pytest.mark.parametrize("value", AWKWARD)
def test_channel_sizes_with_an_awkward_channel_value_are_the_walkers(value: bytes) -> None:
    head = ormsgpack.packb({"v": 4, "channel_values": {"a": 1, "b": None}})
    data = head.replace(b"\xa1b\xc0", b"\xa1b" + value)
    _sizes_agree(data)
    float32 = head.replace(b"\xa1a\x01", b"\xa1a\xca\x3f\x80\x00\x00")
    assert sizes._packed_sizes(float32) is None and sizes.channel_sizes(
        _record(Payload("msgpack", float32), Payload("json", b"{}"))
    ) == {"a": 5, "b": 1}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _line() -> dict[str, Any]:
    payload = {"type": "msgpack", "data": _b64(b"\x81\xa1a\x01")}
    write = {"task_id": "t", "task_path": "", "idx": 0, "channel": "c", "value": payload}
    return {
        "thread_id": "t",
        "checkpoint_ns": "",
        "checkpoint_id": "1",
        "parent_checkpoint_id": None,
        "checkpoint": payload,
        "metadata": {"type": "json", "data": _b64(b'{"step": 1}')},
        "writes": [write, {**write, "idx": 1}],
        "extra": {"redis.has_writes": True},
    }


_ODD: list[Any] = [None, True, 1, 1.5, "x", "é", "@@@", "QQ=", [], {}, {"type": "json"}, {"type": 1, "data": ""}]
_FIELDS = [
    ("thread_id",),
    ("parent_checkpoint_id",),
    ("checkpoint",),
    ("checkpoint", "data"),
    ("checkpoint", "type"),
    ("metadata",),
    ("metadata", "data"),
    ("metadata", "type"),
    ("writes",),
    ("writes", 0),
    ("writes", 0, "idx"),
    ("writes", 1, "channel"),
    ("writes", 1, "value", "data"),
    ("extra",),
]


def _outcome(fn: Any, obj: dict[str, Any]) -> Any:
    try:
        return fn("f.jsonl", 3, obj)
    except (FormatError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _spoiled(path: tuple[Any, ...], odd: Any) -> dict[str, Any]:
    """A good line with the field at ``path`` replaced by ``odd`` (removed for ``KeyError``)."""
    obj: dict[str, Any] = orjson.loads(orjson.dumps(_line()))
    holder: Any = obj
    for step in path[:-1]:
        holder = holder[step]
    if odd is KeyError:
        if isinstance(holder, dict):
            del holder[path[-1]]
    else:
        holder[path[-1]] = odd
    return obj


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_FIELDS), st.one_of(st.sampled_from(_ODD), st.just(KeyError)))
def test_jsonl_fast_reader_reads_what_the_checked_one_reads(path: tuple[Any, ...], odd: Any) -> None:
    obj = _spoiled(path, odd)
    assert _outcome(lines.record_from, obj) == _outcome(lines._record_from, obj)


def test_jsonl_fast_reader_on_a_good_line() -> None:
    obj = orjson.loads(orjson.dumps(_line()))
    assert lines._record_fast(obj) == lines._record_from("f.jsonl", 2, obj)


def _checked(obj: dict[str, Any]) -> Any:
    line = orjson.dumps(obj)
    try:
        lines.check_line("f.jsonl", 3, line)
    except (FormatError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return _outcome(lines._record_from, obj)  # accepted: the checked path must accept it too


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_FIELDS), st.one_of(st.sampled_from(_ODD), st.just(KeyError)))
def test_jsonl_line_check_fails_where_the_checked_reader_does(path: tuple[Any, ...], odd: Any) -> None:
    obj = _spoiled(path, odd)
    assert _checked(obj) == _outcome(lines._record_from, obj)
