"""Where the bytes are: one streaming pass over a store's records.

Checkpoint bytes are split by channel by reading the byte spans of ``channel_values`` in the
msgpack checkpoint (no value is decoded). Memory holds the running totals, the top-N heaps and
one thread at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import groupby
from typing import Any

from ckpt.backends.core.base import CheckpointRecord, Selection, Store
from ckpt.backends.core.ids import checkpoint_time
from ckpt.backends.core.msgpack_raw import unpack
from ckpt.backends.core.msgpack_spans import MsgpackSpanError, map_entries

GROWTH_STEPS = 5
"""A thread whose root checkpoint grew at every one of at least this many steps is flagged."""


def channel_sizes(record: CheckpointRecord) -> dict[str, int]:
    """Bytes of each channel value inside the checkpoint (empty for opaque payloads)."""
    if record.checkpoint.type != "msgpack":
        return {}
    data = record.checkpoint.data
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


ThreadHook = Callable[[ThreadSize, list[CheckpointRecord]], None]


def measure(
    store: Store, selection: Selection = Selection(), *, top: int = 20, on_thread: ThreadHook | None = None
) -> SizeReport:
    """Totals by thread, namespace kind, channel and day; ``on_thread`` sees each thread's records."""
    report = SizeReport()
    for thread_id, group in groupby(store.records(selection), key=lambda r: r.key.thread_id):
        records = list(group)
        size = _thread_size(thread_id, records, report)
        report.threads += 1
        heapq.heappush(report.top_threads, (size.bytes, thread_id))
        if len(report.top_threads) > top:
            heapq.heappop(report.top_threads)
        if size.growing:
            report.growing_threads.append(thread_id)
        if on_thread is not None:
            on_thread(size, records)
    return report


def _thread_size(thread_id: str, records: list[CheckpointRecord], report: SizeReport) -> ThreadSize:
    size = ThreadSize(thread_id, checkpoints=len(records), namespaces=len({r.key.checkpoint_ns for r in records}))
    for record in records:
        size.bytes += record.size
        size.largest_checkpoint = max(size.largest_checkpoint, len(record.checkpoint.data))
        report.store_bytes += record.size
        report.checkpoints += 1
        ns_kind = "(root)" if record.key.checkpoint_ns == "" else record.key.checkpoint_ns.split(":", 1)[0]
        report.namespaces[ns_kind] = report.namespaces.get(ns_kind, 0) + record.size
        for channel, nbytes in channel_sizes(record).items():
            report.channels[channel] = report.channels.get(channel, 0) + nbytes
            report.largest_channel_value[channel] = max(report.largest_channel_value.get(channel, 0), nbytes)
        at = checkpoint_time(record.key.checkpoint_id)
        if at is not None:
            day = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d")
            report.per_day[day] = report.per_day.get(day, 0) + record.size
    root = [len(r.checkpoint.data) for r in records if r.key.checkpoint_ns == ""]
    size.growing = len(root) > GROWTH_STEPS and all(b > a for a, b in zip(root, root[1:]))
    return size
