"""``--shard K/N``: which threads shard K of N takes, as a pure function of the thread id.

Pods of a Kubernetes Indexed Job start at different times and each decides its part alone, so the
split cannot come from sampled or counted ranges (they change as the store changes; see
docs/research-23.md §2). A thread belongs to shard ``h(thread_id) mod N`` where ``h`` is the first
60 bits of the MD5 of the id's UTF-8 bytes: disjoint and covering for every N by construction,
the same in every process and in PostgreSQL (``md5(convert_to(thread_id, 'UTF8'))``), and all of
a thread's namespaces and writes go with it. 60 bits rather than 64 keep the value a positive
``bigint`` in SQL, so ``%`` agrees with Python's.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ckpt.backends.core.errors import UsageError

HASH = "md5-60"
"""The name of the hash, written into reports and export headers (a reader refuses another)."""

INDEX_ENV = "JOB_COMPLETION_INDEX"
"""Where ``--shard auto/N`` finds K: what a Kubernetes Indexed Job sets in each pod."""


@lru_cache(maxsize=65536)  # a store reads a thread's rows together: ids repeat in runs
def thread_hash(thread_id: str) -> int:
    """The first 60 bits of ``md5(utf-8(thread_id))`` as an int (surrogates kept as they are)."""
    digest = hashlib.md5(thread_id.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()
    return int(digest[:15], 16)


def shard_of(thread_id: str, count: int) -> int:
    """The shard (0-based) of ``count`` that holds ``thread_id``."""
    return thread_hash(thread_id) % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based, as ``JOB_COMPLETION_INDEX``) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"--shard takes K/N with 0 <= K < N, got {self.index}/{self.count}")

    def holds(self, thread_id: str) -> bool:
        return self.count == 1 or thread_hash(thread_id) % self.count == self.index

    @property
    def label(self) -> str:
        """``2-of-7``: for lock names and file names."""
        return f"{self.index}-of-{self.count}"

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "hash": HASH}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def split_shard(shard: Shard | None, part: int, parts: int) -> Shard:
    """Part ``part`` of ``parts`` of ``shard``'s threads (of every thread when ``None``): shard K
    of M split N ways is shard ``K + M*part`` of ``M*N`` (``h mod MN = K + M*part`` exactly when
    ``h mod M = K`` and ``(h // M) mod N = part``), so the parts are disjoint and cover ``shard``."""
    if shard is None:
        return Shard(part, parts)
    return Shard(shard.index + shard.count * part, shard.count * parts)


def parse_shard(text: str, environ: dict[str, str] | None = None) -> Shard:
    """``K/N``, or ``auto/N`` taking K from ``$JOB_COMPLETION_INDEX``."""
    env = os.environ if environ is None else environ
    index_text, sep, count_text = text.strip().partition("/")
    if not sep:
        raise UsageError(f"--shard takes K/N or auto/N (e.g. 0/4), got {text!r}")
    if index_text.strip() == "auto":
        index_text = env.get(INDEX_ENV, "")
        if not index_text.strip():
            raise UsageError(f"--shard {text}: auto needs ${INDEX_ENV} (set in each pod of an Indexed Job)")
    try:
        return Shard(int(index_text), int(count_text))
    except ValueError:
        raise UsageError(f"--shard takes whole numbers K/N, got {text!r}") from None


def shard_lock_name(name: str, shard: Shard | None) -> str:
    """A shard holds only its own lock: ``prune.shard-2-of-7``; unsharded runs keep ``prune``."""
    return name if shard is None else f"{name}.shard-{shard.label}"


def shard_path(path: str, shard: Shard | None) -> str:
    """``{shard}`` in an output path becomes ``2-of-7`` (one file per shard)."""
    if "{shard}" not in path:
        return path
    if shard is None:
        raise UsageError(f"{path!r} names a {{shard}} but no --shard was given")
    return path.replace("{shard}", shard.label)
