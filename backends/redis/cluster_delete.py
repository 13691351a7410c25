"""Deletes on a Redis Cluster (``cluster_store.py``): prune's ``delete``, ``delete_threads``, the
residue scan and ``compact``, as single-key steps.

A checkpoint's keys lie in different slots, so nothing here can be one transaction, and the
standalone driver's guard (WATCH over a batch's pointers, MULTI/EXEC, multi-key scripts) cannot
run. What stands in for it is the order of the steps, each safe to repeat: first every latest
pointer that names a doomed checkpoint is moved to the newest surviving checkpoint of its thread
and namespace (or deleted when none survives), then the checkpoint documents go, then their write
documents, then this store's members of their write registries (``ZREM``; Redis drops an emptied
registry; other prefixes' members are left). A reader therefore never follows a pointer to a
missing document, and a killed run is finished by running it again. Only keys that belong to a
doomed checkpoint are deleted, by construction (a write key carries its checkpoint's stem), which
is the guard's rule: nothing a remaining checkpoint names goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ckpt.backends.core.base import CheckpointKey
from ckpt.backends.redis.cluster import NodeBatch, glob_escape, scan
from ckpt.backends.redis.schema import ZSET_PREFIX, KeySpace, Owner, stored_ns

_FAMILIES = ("checkpoints", "latest_pointers", "writes", "registry_entries")


class ClusterJanitor:
    def __init__(self, client: Any, keys: KeySpace) -> None:
        self._r, self.keys = client, keys

    # -- reading what is there ---------------------------------------------------------

    def _thread_keys(self, thread_id: str) -> dict[str, list[str]]:
        """Every key of one thread by family (registries: those holding a member of this store)."""
        t, k = glob_escape(thread_id), self.keys
        found: dict[str, list[str]] = {family: [] for family in _FAMILIES}
        patterns = {
            "checkpoints": f"{glob_escape(k.prefix)}:{t}:*",
            "latest_pointers": f"{glob_escape(k.prefix)}_latest:{t}:*",
            "writes": f"{glob_escape(k.write_prefix)}:{t}:*",
            "registry_entries": f"{ZSET_PREFIX}:{t}:*",
        }
        heads = {
            "checkpoints": f"{k.prefix}:{thread_id}:",
            "latest_pointers": f"{k.prefix}_latest:{thread_id}:",
            "writes": f"{k.write_prefix}:{thread_id}:",
            "registry_entries": f"{ZSET_PREFIX}:{thread_id}:",
        }
        for family, pattern in patterns.items():
            for page in scan(self._r, pattern):
                found[family] += [key for key in page if key.startswith(heads[family])]
        return found

    def _members(self, zsets: list[str], stem: str) -> dict[str, list[str]]:
        """This store's members (starting with ``stem``) of each registry."""
        batch = NodeBatch(self._r)
        for zset in zsets:
            batch.add(zset, "ZRANGE", zset, 0, -1)
        out: dict[str, list[str]] = {}
        for zset, reply in zip(zsets, batch.run()):
            mine = [m.decode("utf-8", "surrogateescape") for m in reply or ()]
            out[zset] = [m for m in mine if m.startswith(stem)]
        return out

    def _exists(self, keys: Sequence[str]) -> list[bool]:
        batch = NodeBatch(self._r)
        for key in keys:
            batch.add(key, "EXISTS", key)
        return [bool(r) for r in batch.run()]

    def _get(self, keys: Sequence[str]) -> list[str | None]:
        batch = NodeBatch(self._r)
        for key in keys:
            batch.add(key, "GET", key)
        return [None if r is None else r.decode("utf-8", "surrogateescape") for r in batch.run()]

    # -- deleting ----------------------------------------------------------------------

    def _run(self, *steps: tuple[str, Iterable[tuple[str, ...]]]) -> list[int]:
        """Each step a batch of single-key commands (``(key, *args)``), in order; replies summed per step."""
        totals = []
        for _, commands in steps:
            batch = NodeBatch(self._r)
            for command in commands:
                batch.add(command[0], *command[1:])
            totals.append(sum(int(r or 0) for r in batch.run() if isinstance(r, int)))
        return totals

    def _repoint(self, doomed: set[Owner]) -> None:
        """Latest pointers naming a doomed checkpoint: to the newest survivor of their namespace, or gone."""
        names = {self.keys.checkpoint(*o): o for o in doomed}
        pointers = sorted({self.keys.latest(t, ns) for t, ns, _ in doomed})
        stale = [(p, names[target]) for p, target in zip(pointers, self._get(pointers)) if target in names]
        if not stale:
            return
        survivors: dict[tuple[str, str], str] = {}
        for thread_id in sorted({o[0] for _, o in stale}):
            for key in self._thread_keys(thread_id)["checkpoints"]:
                owner = self.keys.owner(key)
                if owner is None or owner in doomed:
                    continue
                slot = (owner[0], owner[1])
                if slot not in survivors or owner[2] > survivors[slot].rpartition(":")[2]:
                    survivors[slot] = key
        batch = NodeBatch(self._r)
        for pointer, (thread_id, ns, _) in stale:
            newest = survivors.get((thread_id, ns))
            batch.add(pointer, *(("SET", pointer, newest) if newest else ("DEL", pointer)))
        batch.run()

    def delete(self, doomed_keys: Iterable[CheckpointKey]) -> int:
        doomed = {_owner(k) for k in doomed_keys}
        if not doomed:
            return 0
        self._repoint(doomed)
        owners = sorted(doomed)
        zsets = [self.keys.zset(*o) for o in owners]
        members: dict[str, list[str]] = {}
        for owner, zset in zip(owners, zsets):
            members |= {zset: self._members([zset], self.keys.write_stem(*owner))[zset]}
        checkpoints = [self.keys.checkpoint(*o) for o in owners]
        writes = [m for zset in zsets for m in members[zset]]
        gone, _, _ = self._run(
            ("checkpoints", [(key, "DEL", key) for key in checkpoints]),
            ("writes", [(key, "DEL", key) for key in writes]),
            ("registries", [(z, "ZREM", z, *members[z]) for z in zsets if members[z]]),
        )
        return gone

    def delete_threads(self, thread_ids: Sequence[str]) -> int:
        deleted = 0
        for thread_id in thread_ids:
            found = self._thread_keys(thread_id)
            mine = self._members(found["registry_entries"], f"{self.keys.write_prefix}:{thread_id}:")
            _, gone, _, _ = self._run(
                ("pointers", [(k, "DEL", k) for k in found["latest_pointers"]]),
                ("checkpoints", [(k, "DEL", k) for k in found["checkpoints"]]),
                ("writes", [(k, "DEL", k) for k in found["writes"]]),
                ("registries", [(z, "ZREM", z, *m) for z, m in mine.items() if m]),
            )
            deleted += gone
        return deleted

    def residue(self, thread_ids: Sequence[str], doomed: Sequence[CheckpointKey]) -> dict[str, int]:
        found = {family: 0 for family in _FAMILIES}
        for thread_id in thread_ids:
            keys = self._thread_keys(thread_id)
            for family in ("checkpoints", "latest_pointers", "writes"):
                found[family] += len(keys[family])
            mine = self._members(keys["registry_entries"], f"{self.keys.write_prefix}:{thread_id}:")
            found["registry_entries"] += sum(len(m) for m in mine.values())
        rest = sorted({_owner(k) for k in doomed if k.thread_id not in thread_ids})
        if rest:
            names = [self.keys.checkpoint(*o) for o in rest]
            found["checkpoints"] += sum(self._exists(names))
            for owner in rest:
                zset = self.keys.zset(*owner)
                entries = self._members([zset], self.keys.write_stem(*owner))[zset]
                found["registry_entries"] += len(entries)
                found["writes"] += sum(self._exists(entries))
            pointers = sorted({self.keys.latest(t, ns) for t, ns, _ in rest})
            found["latest_pointers"] += sum(1 for target in self._get(pointers) if target in set(names))
        return found

    def compact(self, idle_before: str, *, dry_run: bool = False) -> dict[str, int]:
        """Orphan write documents and registry entries (their checkpoint is gone, and older than
        ``idle_before``), latest pointers to a missing checkpoint, unset ``has_writes`` flags."""
        removed = {"orphan_writes": 0, "orphan_zsets": 0, "stale_pointers": 0, "has_writes_fixed": 0}
        for page in scan(self._r, f"{glob_escape(self.keys.write_prefix)}:*"):
            owners = {k: o for k in page if (o := _write_owner(self.keys, k)) and o[2] < idle_before}
            checkpoints = sorted({self.keys.checkpoint(*o) for o in owners.values()})
            flags = dict(zip(checkpoints, self._flags(checkpoints)))
            orphans = [k for k, o in owners.items() if flags[self.keys.checkpoint(*o)] is None]
            unflagged = [k for k, flag in flags.items() if flag is not None and flag != b"[true]"]
            removed["orphan_writes"] += len(orphans)
            removed["has_writes_fixed"] += len(unflagged)
            if not dry_run:
                self._run(("writes", [(k, "DEL", k) for k in orphans]))
                self._run(("flags", [(k, "JSON.SET", k, "$.has_writes", "true") for k in unflagged]))
        for page in scan(self._r, f"{ZSET_PREFIX}:*"):
            owners = {z: o for z in page if (o := self.keys.owner(z)) is not None and o[2] < idle_before}
            alive = dict(zip(owners, self._exists([self.keys.checkpoint(*o) for o in owners.values()])))
            dead = [z for z in owners if not alive[z]]
            mine = {z: m for z, m in self._members(dead, f"{self.keys.write_prefix}:").items() if m}
            removed["orphan_zsets"] += len(mine)
            if not dry_run:
                self._run(("registries", [(z, "ZREM", z, *m) for z, m in mine.items()]))
        for page in scan(self._r, f"{glob_escape(self.keys.prefix)}_latest:*"):
            targets = self._get(page)
            present = self._exists([t for t in targets if t is not None])
            missing = {t for t, ok in zip([t for t in targets if t is not None], present) if not ok}
            stale = [(p, t) for p, t in zip(page, targets) if t in missing]
            removed["stale_pointers"] += len(stale)
            if not dry_run and stale:
                self._repoint({o for _, t in stale if (o := self.keys.owner(t or "")) is not None})
        return removed

    def _flags(self, checkpoints: list[str]) -> list[bytes | None]:
        batch = NodeBatch(self._r)
        for key in checkpoints:
            batch.add(key, "JSON.GET", key, "$.has_writes")
        return [r if r is None else bytes(r) for r in batch.run()]


def _write_owner(keys: KeySpace, key: str) -> Owner | None:
    """``(thread, ns, checkpoint id)`` of a write key ``{write_prefix}:{thread}:{ns}:{id}:{task}:{idx}``."""
    head = f"{keys.write_prefix}:"
    if not key.startswith(head):
        return None
    thread_id, _, rest = key[len(head) :].partition(":")
    parts = rest.rsplit(":", 3)
    return (thread_id, stored_ns(parts[0]), parts[1]) if len(parts) == 4 else None


def _owner(key: CheckpointKey) -> Owner:
    return (key.thread_id, key.checkpoint_ns, key.checkpoint_id)
