"""``ckpt doctor``: what a store is, and what is wrong with it. Findings, never fixes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ckpt.backends.core.base import Capability, CheckpointRecord, Store
from ckpt.backends.core.collector import fewer_collections
from ckpt.backends.core.errors import CkptError
from ckpt.backends.core.memory import MemoryStore
from ckpt.backends.ops.sends import repaired
from ckpt.formats.payloads import PayloadDecoder, PayloadError
from ckpt.formats.state import decode_record

MAX_LISTED = 20


@dataclass
class Diagnosis:
    kind: str
    layout: dict[str, Any]
    capabilities: list[str]
    checkpoints: int = 0
    findings: list[str] = field(default_factory=list)
    undecodable: int = 0
    generation: str | None = None
    """The layout generation the driver recognised (``None``: not one ``ckpt upgrade`` knows)."""
    sends_to_inline: int = 0
    memory: dict[str, Any] | None = None
    """The long-term memory store in the same place, when there is one (``ckpt memory``)."""

    @property
    def healthy(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, **self.__dict__}


def diagnose(
    store: Store, idle_before: str, decoder: PayloadDecoder | None = None, memory: MemoryStore | None = None
) -> Diagnosis:
    """Layout and drift, orphans, undecodable rows and keys without a TTL, in one read-only pass;
    with ``memory``, that store's layout, size, vector index and findings too."""
    layout = store.layout()
    report = Diagnosis(store.kind, layout, sorted(c.value for c in store.capabilities))
    report.findings += [f"schema drift: {d}" for d in layout.get("drift", [])]
    found = store.layout_upgrade()
    report.generation = found.generation if found is not None else None
    if found is not None and not found.current:
        steps = [step.description for step in (*found.steps, *found.after)]
        steps += ["store every checkpoint again in the current form"] if found.rewrite_all else []
        report.findings.append(f"layout {found.generation}: `ckpt upgrade` brings it current ({'; '.join(steps)})")
    _orphans(store, idle_before, report)
    _decode_everything(store, decoder or PayloadDecoder(), report)
    if Capability.TTL in store.capabilities:
        missing = sum(t.keys_without_ttl or 0 for t in store.threads())
        if missing:
            report.findings.append(f"{missing} checkpoint(s) have no TTL")
    report.findings += store.read_problems()
    if memory is not None:
        _memory(memory, report)
    return report


def _memory(memory: MemoryStore, report: Diagnosis) -> None:
    namespaces = items = 0
    for summary in memory.namespaces():
        namespaces += 1
        items += summary.items
    index = memory.index()
    report.memory = {
        "layout": memory.layout(),
        "namespaces": namespaces,
        "items": items,
        "index": None if index is None else index.as_json(),
    }
    report.findings += [f"memory: {finding}" for finding in memory.findings()]


def _orphans(store: Store, idle_before: str, report: Diagnosis) -> None:
    if Capability.DELETE not in store.capabilities:
        return
    try:
        counts = store.compact(idle_before, dry_run=True)
    except CkptError:
        return
    for kind, count in counts.items():
        if count:
            report.findings.append(f"{count} {kind.replace('_', ' ')} (ckpt compact removes them)")


def _decode_everything(store: Store, decoder: PayloadDecoder, report: Diagnosis) -> None:
    with fewer_collections():
        for record, changed in repaired(store):
            report.checkpoints += 1
            report.sends_to_inline += changed
            try:
                _check_record(record, decoder)
            except CkptError as exc:
                report.undecodable += 1
                if report.undecodable <= MAX_LISTED:
                    report.findings.append(f"undecodable: {exc}")
    if report.undecodable > MAX_LISTED:
        report.findings.append(f"… and {report.undecodable - MAX_LISTED} more undecodable checkpoint(s)")
    if report.sends_to_inline:
        report.findings.append(
            f"{report.sends_to_inline} checkpoint(s) of format v<4 keep their pending Sends where this store's "
            "saver does not look: the fan-out is lost on resume (`ckpt upgrade` stores them where it does)"
        )


def _check_record(record: CheckpointRecord, decoder: PayloadDecoder) -> None:
    """Raise what ``decode_record`` raises for ``record``, without building its tagged JSON.

    ``PayloadDecoder.check`` gives the same verdict in C; only a record it finds wrong is decoded
    the reference way, so a finding is worded exactly as ``show``/``export --decode`` word it.
    """
    try:
        for payload in (record.checkpoint, record.metadata, *(w.value for w in record.writes)):
            decoder.check(payload)
    except PayloadError:
        decode_record(record, decoder)
