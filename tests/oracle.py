"""The official saver's view of every checkpoint in a store, before and after a destructive command.

A delete is proven by what it kept, read back through the saver that owns the store: every
surviving checkpoint must load with the same channel values, metadata, parent and pending writes
as before (``assert_kept_unchanged``). Counting what was removed proves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from ckpt.backends import open_store
from tests.servers import fresh_redis, fresh_redis_cluster, mongo_database, postgres_schema
from tests.support import official_saver, tuples_of

Key = tuple[str, str, str]
Target = tuple[str, "Path | str"]
"""(the URL ckpt opens, the location the official saver opens) of an empty store."""


@contextmanager
def _sqlite(tmp: Path) -> Iterator[Target]:
    path = tmp / "gen.db"
    path.unlink(missing_ok=True)  # hypothesis runs a test body several times in one tmp_path
    yield f"sqlite:///{path}", path


@contextmanager
def _postgres(tmp: Path) -> Iterator[Target]:
    with postgres_schema() as (url, libpq):
        yield url, libpq


@contextmanager
def _mongodb(tmp: Path) -> Iterator[Target]:
    with mongo_database() as url:
        yield url, url


@contextmanager
def _redis(tmp: Path) -> Iterator[Target]:
    with fresh_redis() as url:
        yield url, url


@contextmanager
def _redis_cluster(tmp: Path) -> Iterator[Target]:
    with fresh_redis_cluster() as url:
        yield url, url


TARGETS: dict[str, Callable[[Path], AbstractContextManager[Target]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
    "mongodb": _mongodb,
    "redis": _redis,
    "redis-cluster": _redis_cluster,
}
"""An empty store of each kind a destructive command can change, for the official saver to fill."""


def populate(location: Path | str, seed: int, threads: int = 10) -> list[str]:
    """Generated histories (``tests/histories.py``) written through the store's official saver."""
    from tests.histories import write_histories

    with official_saver(location) as saver:
        if not type(saver).__name__.startswith("MongoDB"):
            saver.setup()
        return write_histories(saver, seed, threads=threads)


def store_keys(url: str) -> list[Key]:
    with open_store(url) as store:
        return [h.key_tuple for h in store.headers()]


def snapshot(url: str, location: Path | str) -> dict[Key, Any]:
    """``get_tuple`` of every checkpoint ckpt lists in the store, as the official saver loads it."""
    keys = store_keys(url)
    with official_saver(location) as saver:
        return {tuple(view[:3]): view[3:] for view in tuples_of(saver, keys)}  # type: ignore[misc]


def assert_kept_unchanged(url: str, location: Path | str, before: dict[Key, Any]) -> list[Key]:
    """Every checkpoint still in the store reads exactly as before; returns the kept keys."""
    after = snapshot(url, location)
    assert set(after) <= set(before), f"checkpoints appeared: {sorted(set(after) - set(before))[:3]}"
    changed = [key for key, view in after.items() if view != before[key]]
    assert not changed, f"{len(changed)} of {len(after)} kept checkpoints changed, e.g. {changed[0]}: " + _diff(
        before[changed[0]], after[changed[0]]
    )
    return sorted(after)


def _diff(before: list[Any], after: list[Any]) -> str:
    names = ("parent", "channel_values", "metadata", "pending_writes")
    parts = []
    for name, old, new in zip(names, before, after):
        if old != new:
            if isinstance(old, dict) and isinstance(new, dict):
                parts.append(f"{name}: lost {sorted(set(old) - set(new))}, gained {sorted(set(new) - set(old))}")
            else:
                parts.append(f"{name}: {old!r:.200} -> {new!r:.200}")
    return "; ".join(parts)


def non_contiguous(before: dict[Key, Any], kept: list[Key]) -> bool:
    """Whether some namespace kept a checkpoint while an older and a newer one around it went."""
    by_ns: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    kept_set = set(kept)
    for key in before:
        by_ns.setdefault(key[:2], []).append((key[2], key in kept_set))
    for rows in by_ns.values():
        flags = [k for _, k in sorted(rows)]
        first_kept = flags.index(True) if True in flags else len(flags)
        if False in flags[first_kept:]:
            return True
    return False
