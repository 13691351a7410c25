"""The official saver's view of every checkpoint in a store, before and after a destructive command.

A delete is proven by what it kept, read back through the saver that owns the store: every
surviving checkpoint must load with the same channel values, metadata, parent and pending writes
as before (``assert_kept_unchanged``). Counting what was removed proves nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckpt.backends import open_store
from tests.support import official_saver, tuples_of

Key = tuple[str, str, str]


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
