"""Size budgets for CI: read from ``pyproject.toml`` (``[tool.ckpt.budget]``) or ``ckpt.toml`` (``[budget]``).

```toml
[tool.ckpt.budget]
max_checkpoint_bytes = "256KiB"     # one serialized checkpoint
max_thread_bytes = "20MiB"          # a thread: checkpoints, metadata and pending writes
max_channel_bytes = "128KiB"        # one channel's value inside one checkpoint
max_checkpoints_per_thread = 500
max_store_bytes = "2GiB"
# long-term memory (a BaseStore in the same database; ckpt memory):
max_memory_bytes = "500MiB"         # every item's value
max_memory_items = 1000000
max_namespace_bytes = "10MiB"       # one namespace, e.g. users/42/memories
max_namespace_items = 10000
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpt.backends.core.base import Selection, SizedCheckpoint, Store
from ckpt.backends.core.errors import UsageError
from ckpt.backends.core.memory import MemoryStore, namespace_path
from ckpt.backends.core.toml import load_toml
from ckpt.backends.ops.sizes import ThreadSize, channel_sizes, measure

MEMORY_KEYS = ("max_memory_bytes", "max_memory_items", "max_namespace_bytes", "max_namespace_items")
KEYS = (
    "max_checkpoint_bytes",
    "max_thread_bytes",
    "max_channel_bytes",
    "max_checkpoints_per_thread",
    "max_store_bytes",
    *MEMORY_KEYS,
)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(value: Any, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise UsageError(f"budget {key}: cannot read size {value!r} (use bytes or e.g. 256KiB, 20MB)")
    return int(float(match[1]) * _UNITS[(match[2] or "").lower()])


def load_budgets(path: Path | None = None) -> tuple[dict[str, int], str]:
    """Budgets and where they came from: an explicit file, else ./ckpt.toml, else ./pyproject.toml."""
    candidates = [path] if path else [Path("ckpt.toml"), Path("pyproject.toml")]
    for candidate in candidates:
        if candidate is None or not candidate.is_file():
            continue
        data = load_toml(candidate)
        table = (
            data.get("tool", {}).get("ckpt", {}).get("budget")
            if candidate.name == "pyproject.toml"
            else data.get("budget")
        )
        if table is None:
            if path:
                raise UsageError(f"{candidate} has no budget table ([budget] or [tool.ckpt.budget])")
            continue
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise UsageError(f"{candidate}: unknown budget key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
        return {k: parse_size(v, k) for k, v in table.items()}, str(candidate)
    raise UsageError("no budgets found: add [tool.ckpt.budget] to pyproject.toml or [budget] to ckpt.toml")


@dataclass
class Breach:
    budget: str
    limit: int
    actual: int
    where: dict[str, str]

    @property
    def key(self) -> str:
        return self.budget + ":" + ":".join(f"{k}={v}" for k, v in sorted(self.where.items()))

    def as_json(self) -> dict[str, Any]:
        return {"budget": self.budget, "limit": self.limit, "actual": self.actual, **self.where}


@dataclass
class CheckReport:
    budgets: dict[str, int]
    source: str
    breaches: list[Breach] = field(default_factory=list)
    store_bytes: int = 0
    threads: int = 0
    checkpoints: int = 0
    tolerated: int = 0
    """Breaches that the baseline already had at the same size or larger."""
    memory_bytes: int | None = None
    memory_items: int | None = None

    @property
    def ok(self) -> bool:
        return not self.breaches

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "budgets": self.budgets,
            "source": self.source,
            "store_bytes": self.store_bytes,
            "threads": self.threads,
            "checkpoints": self.checkpoints,
            "breaches": [b.as_json() for b in self.breaches],
            "tolerated_by_baseline": self.tolerated,
            **(
                {"memory_bytes": self.memory_bytes, "memory_items": self.memory_items}
                if self.memory_bytes is not None
                else {}
            ),
            "measurements": {b.key: b.actual for b in self.breaches},
        }


def check(
    store: Store,
    budgets: dict[str, int],
    source: str,
    baseline: dict[str, int] | None = None,
    memory: MemoryStore | None = None,
) -> CheckReport:
    """Measure the store once and list every budget it exceeds (the largest offender per thread);
    the memory budgets are checked against ``memory`` (its namespaces' aggregates) when given."""
    report = CheckReport(budgets, source)
    if memory is not None:
        _memory_breaches(report, budgets, memory)

    def on_thread(size: ThreadSize, records: list[SizedCheckpoint]) -> None:
        _thread_breaches(report, budgets, size, records)

    measured = measure(store, Selection(), on_thread=on_thread)
    report.store_bytes, report.threads, report.checkpoints = (
        measured.store_bytes,
        measured.threads,
        measured.checkpoints,
    )
    if "max_store_bytes" in budgets and measured.store_bytes > budgets["max_store_bytes"]:
        report.breaches.append(Breach("max_store_bytes", budgets["max_store_bytes"], measured.store_bytes, {}))
    if baseline is not None:
        kept = [b for b in report.breaches if b.actual > baseline.get(b.key, -1)]
        report.tolerated = len(report.breaches) - len(kept)
        report.breaches = kept
    return report


def _thread_breaches(
    report: CheckReport, budgets: dict[str, int], size: ThreadSize, records: list[SizedCheckpoint]
) -> None:
    thread = {"thread_id": size.thread_id}
    if "max_thread_bytes" in budgets and size.bytes > budgets["max_thread_bytes"]:
        report.breaches.append(Breach("max_thread_bytes", budgets["max_thread_bytes"], size.bytes, thread))
    if "max_checkpoints_per_thread" in budgets and size.checkpoints > budgets["max_checkpoints_per_thread"]:
        limit = budgets["max_checkpoints_per_thread"]
        report.breaches.append(Breach("max_checkpoints_per_thread", limit, size.checkpoints, thread))
    if "max_checkpoint_bytes" in budgets:
        worst = max(records, key=lambda r: len(r.checkpoint.data))
        if len(worst.checkpoint.data) > budgets["max_checkpoint_bytes"]:
            where = {**thread, "checkpoint_ns": worst.key.checkpoint_ns, "checkpoint_id": worst.key.checkpoint_id}
            report.breaches.append(
                Breach("max_checkpoint_bytes", budgets["max_checkpoint_bytes"], len(worst.checkpoint.data), where)
            )
    if "max_channel_bytes" in budgets:
        largest: dict[str, tuple[int, str]] = {}
        for record in records:
            for channel, nbytes in channel_sizes(record).items():
                if nbytes > largest.get(channel, (0, ""))[0]:
                    largest[channel] = (nbytes, record.key.checkpoint_id)
        for channel, (nbytes, checkpoint_id) in sorted(largest.items()):
            if nbytes > budgets["max_channel_bytes"]:
                where = {**thread, "channel": channel, "checkpoint_id": checkpoint_id}
                report.breaches.append(Breach("max_channel_bytes", budgets["max_channel_bytes"], nbytes, where))


def _memory_breaches(report: CheckReport, budgets: dict[str, int], memory: MemoryStore) -> None:
    total_bytes = total_items = 0
    for summary in memory.namespaces():  # one aggregate row per namespace: no value is read
        total_bytes += summary.bytes
        total_items += summary.items
        where = {"namespace": namespace_path(summary.namespace)}
        for key, actual in (("max_namespace_bytes", summary.bytes), ("max_namespace_items", summary.items)):
            if key in budgets and actual > budgets[key]:
                report.breaches.append(Breach(key, budgets[key], actual, where))
    report.memory_bytes, report.memory_items = total_bytes, total_items
    for key, actual in (("max_memory_bytes", total_bytes), ("max_memory_items", total_items)):
        if key in budgets and actual > budgets[key]:
            report.breaches.append(Breach(key, budgets[key], actual, {}))


def wants_memory(budgets: dict[str, int]) -> bool:
    """Whether any memory budget is set (then ``check`` opens the memory store too)."""
    return any(key in budgets for key in MEMORY_KEYS)
