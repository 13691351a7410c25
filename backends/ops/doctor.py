"""``ckpt doctor``: what a store is, and what is wrong with it. Findings, never fixes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ckpt.backends.core.base import Capability, Store
from ckpt.backends.core.errors import CkptError
from ckpt.formats.payloads import PayloadDecoder
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

    @property
    def healthy(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, **self.__dict__}


def diagnose(store: Store, idle_before: str, decoder: PayloadDecoder | None = None) -> Diagnosis:
    """Layout and drift, orphans, undecodable rows and keys without a TTL, in one read-only pass."""
    layout = store.layout()
    report = Diagnosis(store.kind, layout, sorted(c.value for c in store.capabilities))
    report.findings += [f"schema drift: {d}" for d in layout.get("drift", [])]
    _orphans(store, idle_before, report)
    _decode_everything(store, decoder or PayloadDecoder(), report)
    if Capability.TTL in store.capabilities:
        missing = sum(t.keys_without_ttl or 0 for t in store.threads())
        if missing:
            report.findings.append(f"{missing} checkpoint(s) have no TTL")
    report.findings += store.read_problems()
    return report


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
    for record in store.records():
        report.checkpoints += 1
        try:
            decode_record(record, decoder)
        except CkptError as exc:
            report.undecodable += 1
            if report.undecodable <= MAX_LISTED:
                report.findings.append(f"undecodable: {exc}")
    if report.undecodable > MAX_LISTED:
        report.findings.append(f"… and {report.undecodable - MAX_LISTED} more undecodable checkpoint(s)")
