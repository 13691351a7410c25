"""``to_string_versions`` answers the same with its byte check as with a full unpack (issue #24).

The check (``_strings_already``) lets a checkpoint whose versions are strings through untouched
without unpacking it; it must never let through one the full path would convert. Checkpoints
here put ``channel_versions`` where a byte search finds it without it being the field: in a
message's text, as a key of a nested map with integer values, in a bin payload, framed as str8.
"""

from __future__ import annotations

from typing import Any

import ormsgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckpt.backends.core import versions
from ckpt.backends.core.versions import _strings_already, to_string_versions

VERSION = st.one_of(
    st.integers(min_value=0, max_value=2**40),
    st.text(min_size=1, max_size=40),
    st.floats(allow_nan=False),
    st.none(),
)
DECOYS = st.lists(
    st.one_of(
        st.just("channel_versions"),
        st.just({"channel_versions": {"x": 3}}),
        st.just({"channel_versions": {"x": "a"}}),
        st.just(b"\xb0channel_versions\x81\xa1x\x05"),
        st.text(max_size=30).map(lambda t: f"{t}channel_versions{t}"),
    ),
    max_size=3,
)


def _slow(data: bytes) -> bytes:
    """``to_string_versions`` on its full path only (the unpack)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(versions, "_strings_already", lambda _data: False)
        return to_string_versions(data)


@settings(max_examples=300, deadline=None)
@given(
    first=st.dictionaries(st.text(max_size=8), VERSION, max_size=4),
    decoys=DECOYS,
    versions_first=st.booleans(),
    with_versions=st.booleans(),
)
def test_the_byte_check_never_skips_a_conversion(
    first: dict[str, Any], decoys: list[Any], versions_first: bool, with_versions: bool
) -> None:
    values = {f"c{i}": decoy for i, decoy in enumerate(decoys)}
    fields: dict[str, Any] = {"v": 4, "id": "1f0-x"}
    if with_versions and versions_first:
        fields["channel_versions"] = first
    fields["channel_values"] = values
    if with_versions and not versions_first:
        fields["channel_versions"] = first
    fields["versions_seen"] = {"node": dict(first)}
    data = ormsgpack.packb(fields)
    assert to_string_versions(data) == _slow(data)


def test_a_str8_framed_key_is_found_too() -> None:
    """A writer other than ormsgpack may frame the key as str8: the value after it still decides."""
    body = b"\xd9\x10channel_versions" + b"\x81\xa1a\x03" + b"\xaechannel_values" + b"\x80"
    data = b"\x82" + body
    assert not _strings_already(data)
    assert to_string_versions(data) == _slow(data) != data


@pytest.mark.parametrize(
    ("fields", "skips"),
    [
        ({"channel_versions": {"a": "0001.0.5"}}, True),
        ({"channel_versions": {}}, True),
        ({"channel_values": {"m": "channel_versions"}}, False),  # nothing after it to judge: the full path decides
        ({"channel_values": {"m": "channel_versions!"}}, True),  # "!" is no map: not versions
        ({"channel_versions": {"a": 1}}, False),
        ({"channel_versions": {"a": 1.5}}, False),
        ({"channel_values": {"m": {"channel_versions": {"a": 2}}}, "channel_versions": {"a": "x"}}, False),
    ],
)
def test_what_the_byte_check_lets_through(fields: dict[str, Any], skips: bool) -> None:
    assert _strings_already(ormsgpack.packb(fields)) is skips
