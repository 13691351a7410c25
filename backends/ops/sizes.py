"""Where the bytes are: one streaming pass over a store's records.

Checkpoint bytes are split by channel by reading the byte spans of ``channel_values`` in the
msgpack checkpoint (no value is decoded). Memory holds the running totals, the top-N heaps and
one thread at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import groupby
from typing import Any

import ormsgpack

from ckpt.backends.core.base import CheckpointRecord, Selection, SizedCheckpoint, Store
from ckpt.backends.core.ids import checkpoint_time
from ckpt.backends.core.msgpack_raw import unpack
from ckpt.backends.core.msgpack_spans import MsgpackSpanError, map_entries

_OPTIONS = ormsgpack.OPT_NON_STR_KEYS

GROWTH_STEPS = 5
"""A thread whose root checkpoint grew at every one of at least this many steps is flagged."""


def channel_sizes(record: CheckpointRecord | SizedCheckpoint) -> dict[str, int]:
    """Bytes of each channel value inside the checkpoint (empty for opaque payloads)."""
    if record.checkpoint.type != "msgpack":
        return {}
    fast = _packed_sizes(record.checkpoint.data)
    return fast if fast is not None else walked_channel_sizes(record.checkpoint.data)


def _packed_sizes(data: bytes) -> dict[str, int] | None:
    """``walked_channel_sizes`` in C (one unpack, two packs), or ``None`` where it could differ.

    ormsgpack's encoding is compositional (a map is its header, then each key and value packed
    in order), so when the whole checkpoint packs back to exactly ``data``, each channel value
    packs to the very span the walker measures. Ext payloads stay packed (``ormsgpack.Ext``):
    nothing is imported. Non-canonical bytes (float32, non-minimal ints, duplicate keys) and
    anything odd go to the walker.
    """
    try:
        fields = ormsgpack.unpackb(data, ext_hook=ormsgpack.Ext, option=_OPTIONS)
        if not isinstance(fields, dict) or ormsgpack.packb(fields, option=_OPTIONS) != data:
            return None
        values = fields.get("channel_values")
        if not isinstance(values, dict):
            return None
        return {str(k): len(ormsgpack.packb(v, option=_OPTIONS)) for k, v in values.items()}
    except Exception:  # noqa: BLE001 - any doubt (malformed, unpackable key): the walker decides
        return None


def walked_channel_sizes(data: bytes) -> dict[str, int]:
    """The reference: byte spans of ``channel_values`` read from the msgpack framing."""
    try:
        for raw_key, start, _end in map_entries(data):
            if raw_key == b"\xaechannel_values":
                return {str(unpack(k)): e - s for k, s, e in map_entries(data, start)}
    except (MsgpackSpanError, ValueError):
        return {}
    return {}


@dataclass
class ThreadSize:
    thread_id: str
    bytes: int = 0
    checkpoints: int = 0
    namespaces: int = 0
    largest_checkpoint: int = 0
    growing: bool = False


@dataclass
class SizeReport:
    store_bytes: int = 0
    checkpoints: int = 0
    threads: int = 0
    top_threads: list[tuple[int, str]] = field(default_factory=list)
    namespaces: dict[str, int] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    largest_channel_value: dict[str, int] = field(default_factory=dict)
    per_day: dict[str, int] = field(default_factory=dict)
    growing_threads: list[str] = field(default_factory=list)

    def as_json(self, top: int = 20) -> dict[str, Any]:
        return {
            "store_bytes": self.store_bytes,
            "checkpoints": self.checkpoints,
            "threads": self.threads,
            "top_threads": [{"thread_id": t, "bytes": b} for b, t in sorted(self.top_threads, reverse=True)[:top]],
            "namespaces": _top(self.namespaces, top),
            "channels": _top(self.channels, top),
            "growth_per_day": dict(sorted(self.per_day.items())),
            "growing_threads": self.growing_threads,
        }


def _top(values: dict[str, int], top: int) -> list[dict[str, Any]]:
    return [{"name": k, "bytes": v} for k, v in sorted(values.items(), key=lambda kv: -kv[1])[:top]]


ThreadHook = Callable[[ThreadSize, list[SizedCheckpoint]], None]


def measure(
    store: Store, selection: Selection = Selection(), *, top: int = 20, on_thread: ThreadHook | None = None
) -> SizeReport:
    """Totals by thread, namespace kind, channel and day; ``on_thread`` sees each thread's
    checkpoints. No pending write is read where the store sums them itself (``Store.sized``)."""
    report = SizeReport()
    for thread_id, group in groupby(store.sized(selection), key=lambda r: r.key.thread_id):
        checkpoints = list(group)
        size = _thread_size(thread_id, checkpoints, report)
        _add_thread(report, size, top)
        if on_thread is not None:
            on_thread(size, checkpoints)
    return report


def _add_thread(report: SizeReport, size: ThreadSize, top: int) -> None:
    report.threads += 1
    heapq.heappush(report.top_threads, (size.bytes, size.thread_id))
    if len(report.top_threads) > top:
        heapq.heappop(report.top_threads)
    if size.growing:
        report.growing_threads.append(size.thread_id)


def _thread_size(thread_id: str, records: Sequence[SizedCheckpoint], report: SizeReport) -> ThreadSize:
    size = ThreadSize(thread_id, checkpoints=len(records), namespaces=len({r.key.checkpoint_ns for r in records}))
    channels, largest, per_day, namespaces = (
        report.channels,
        report.largest_channel_value,
        report.per_day,
        report.namespaces,
    )
    for record in records:
        nbytes = record.size  # a sum over the writes: computed once per record
        size.bytes += nbytes
        size.largest_checkpoint = max(size.largest_checkpoint, len(record.checkpoint.data))
        ns = record.key.checkpoint_ns
        ns_kind = "(root)" if ns == "" else ns.split(":", 1)[0]
        namespaces[ns_kind] = namespaces.get(ns_kind, 0) + nbytes
        for channel, value_bytes in channel_sizes(record).items():
            channels[channel] = channels.get(channel, 0) + value_bytes
            if value_bytes > largest.get(channel, -1):
                largest[channel] = value_bytes
        day = _day(record.key.checkpoint_id)
        if day is not None:
            per_day[day] = per_day.get(day, 0) + nbytes
    report.store_bytes += size.bytes
    report.checkpoints += len(records)
    root = [len(r.checkpoint.data) for r in records if r.key.checkpoint_ns == ""]
    size.growing = len(root) > GROWTH_STEPS and all(b > a for a, b in zip(root, root[1:]))
    return size


_DAYS: dict[int, str] = {}


def _day(checkpoint_id: str) -> str | None:
    """``YYYY-MM-DD`` (UTC) of a uuid6 id; one ``strftime`` per distinct day, not per checkpoint."""
    at = checkpoint_time(checkpoint_id)
    if at is None:
        return None
    number, into_day = divmod(at, 86400)
    if not 0.001 < into_day < 86399.999:  # fromtimestamp rounds to the microsecond: no cache near midnight
        return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d")
    day = _DAYS.get(int(number))
    if day is None:
        day = _DAYS[int(number)] = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d")
    return day
