"""``ckpt check --integrity``: kept checkpoints whose referenced values are gone.

An earlier prune (ckpt's own before issue #17, a hand-written script, a TTL that expired a blob
before its checkpoint) can leave a checkpoint whose ``channel_versions`` names a version of a
channel whose value is no longer stored: the saver then loads the checkpoint without that channel
(``messages`` gone, the input of ``__start__`` gone) and says nothing. No single row shows it, so
the scan reads each namespace's checkpoints as the saver would assemble them and flags a channel
missing from a checkpoint when

* ``same version elsewhere``: another checkpoint of the namespace holds a value for that very
  ``(channel, version)``: one version is one value, so this checkpoint lost it; or
* ``written at this version``: the checkpoint that moved the channel to this version lists it in
  ``updated_channels`` (LangGraph records a channel there only when the step left it with a
  value; a trigger consumed to nothing is not recorded), so a value was stored; or
* ``state channel without value``: a channel that holds a value at other versions of the
  namespace and is not one of LangGraph's triggers (``branch:…``, ``__start__``, ``__pregel_…``,
  ``start:…``, ``join:…``, and in LangGraph 0.2 the channel named after each node, emptied when
  read) lost its value (state channels never go back to empty). A weaker sign: reported as
  ``likely``.

Memory holds one namespace of one thread at a time; checkpoints are decoded, nothing is executed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from ckpt.backends.core.base import CheckpointRecord, Selection, Store
from ckpt.formats.payloads import PayloadDecoder

_TRIGGERS = ("branch:", "__", "start:", "join:")


@dataclass(frozen=True)
class Damage:
    """One channel value a checkpoint names and the store no longer has."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    channel: str
    version: str
    why: str
    certain: bool

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class IntegrityReport:
    checkpoints: int = 0
    damaged: list[Damage] = field(default_factory=list)
    undecodable: int = 0

    @property
    def ok(self) -> bool:
        return not self.damaged

    @property
    def threads(self) -> list[str]:
        return sorted({d.thread_id for d in self.damaged})

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checkpoints": self.checkpoints,
            "undecodable": self.undecodable,
            "damaged_threads": self.threads,
            "damaged": [d.as_json() for d in self.damaged],
        }


@dataclass(frozen=True)
class _Seen:
    """What the scan needs of one decoded checkpoint."""

    checkpoint_id: str
    versions: dict[str, str]
    valued: frozenset[str]
    updated: frozenset[str]
    nodes: frozenset[str]


def scan(store: Store, selection: Selection = Selection(), decoder: PayloadDecoder | None = None) -> IntegrityReport:
    """Every checkpoint of the selection, namespace by namespace, checked as described above."""
    report = IntegrityReport()
    decode = decoder or PayloadDecoder()
    records = store.records(selection)
    for (thread_id, ns), group in groupby(records, key=lambda r: (r.key.thread_id, r.key.checkpoint_ns)):
        seen = list(_decoded(group, decode, report))
        report.checkpoints += len(seen)
        report.damaged += _namespace_damage(thread_id, ns, seen)
    return report


def _decoded(records: Iterator[CheckpointRecord], decoder: PayloadDecoder, report: IntegrityReport) -> Iterator[_Seen]:
    for record in records:
        try:
            checkpoint = decoder.decode(record.checkpoint)
        except Exception:  # counted, not fatal: doctor names undecodable rows
            report.undecodable += 1
            continue
        if not isinstance(checkpoint, dict):
            report.undecodable += 1
            continue
        versions = checkpoint.get("channel_versions")
        values = checkpoint.get("channel_values")
        updated = checkpoint.get("updated_channels")
        seen = checkpoint.get("versions_seen")
        yield _Seen(
            record.key.checkpoint_id,
            {str(k): str(v) for k, v in versions.items()} if isinstance(versions, dict) else {},
            frozenset(str(k) for k in values) if isinstance(values, dict) else frozenset(),
            frozenset(str(c) for c in updated) if isinstance(updated, list) else frozenset(),
            frozenset(str(n) for n in seen) if isinstance(seen, dict) else frozenset(),
        )


def _namespace_damage(thread_id: str, ns: str, seen: list[_Seen]) -> list[Damage]:
    has_value = {(ch, s.versions[ch]) for s in seen for ch in s.valued if ch in s.versions}
    written = {(ch, s.versions[ch]) for s in seen for ch in s.updated if ch in s.versions}
    nodes = {node for s in seen for node in s.nodes}
    valued_channels = {ch for ch, _ in has_value} - nodes  # LangGraph 0.2's node channels empty when read
    found = []
    for s in seen:
        for channel, version in s.versions.items():
            if channel in s.valued:
                continue
            why = _why_missing(channel, version, has_value, written, valued_channels)
            if why is not None:
                found.append(Damage(thread_id, ns, s.checkpoint_id, channel, version, why, why != _LIKELY))
    return found


_LIKELY = "state channel without value (likely)"


def _why_missing(
    channel: str,
    version: str,
    has_value: set[tuple[str, str]],
    written: set[tuple[str, str]],
    valued_channels: set[str],
) -> str | None:
    if (channel, version) in has_value:
        return "same version has a value elsewhere"
    if (channel, version) in written:
        return "written at this version"
    if channel in valued_channels and not channel.startswith(_TRIGGERS):
        return _LIKELY
    return None
