"""``migrate --verify``: do two stores hold the same checkpoints, as the official savers see them?

Both stores are streamed in key order and merge-joined, so memory stays flat. Between two
byte-exact stores the exact payload bytes are compared; otherwise the semantic form
(``ckpt.formats.semantic``): what the savers would load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ckpt.backends.core.base import Capability, CheckpointRecord, Selection, Store
from ckpt.formats.semantic import byte_digest, semantic_digest

MAX_EXAMPLES = 20


@dataclass
class VerifyReport:
    mode: str
    threads: int = 0
    checkpoints: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    threads_with_differences: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def note(self, thread_id: str, message: str) -> None:
        self.threads_with_differences.add(thread_id)
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(message)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "threads": self.threads,
            "checkpoints": self.checkpoints,
            "missing_in_target": self.missing,
            "extra_in_target": self.extra,
            "different": self.different,
            "threads_with_differences": sorted(self.threads_with_differences),
            "examples": self.examples,
        }


def _key(record: CheckpointRecord) -> tuple[str, str, str]:
    return (record.key.thread_id, record.key.checkpoint_ns, record.key.checkpoint_id)


def verify(source: Store, target: Store, selection: Selection = Selection()) -> VerifyReport:
    """Compare ``selection`` in both stores checkpoint by checkpoint."""
    exact = Capability.BYTE_EXACT in source.capabilities and Capability.BYTE_EXACT in target.capabilities
    digest = byte_digest if exact else semantic_digest
    report = VerifyReport(mode="bytes" if exact else "semantic")
    left, right = source.records(selection), target.records(selection)
    a, b = next(left, None), next(right, None)
    last_thread = None
    while a is not None or b is not None:
        if b is None or (a is not None and _key(a) < _key(b)):
            assert a is not None
            report.missing += 1
            report.note(a.key.thread_id, f"missing in target: {a.key}")
            current, a = a, next(left, None)
        elif a is None or _key(b) < _key(a):
            report.extra += 1
            report.note(b.key.thread_id, f"only in target: {b.key}")
            current, b = b, next(right, None)
        else:
            if digest(target.stored_form(a)) != digest(b):
                report.different += 1
                report.note(a.key.thread_id, f"different: {a.key}")
            current, a, b = a, next(left, None), next(right, None)
        report.checkpoints += 1
        if current.key.thread_id != last_thread:
            report.threads, last_thread = report.threads + 1, current.key.thread_id
    return report
