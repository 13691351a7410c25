"""Deleting from a Redis store (prune's ``delete``, ``compact``), behind an integrity guard.

Redis cannot roll a batch back, so the guard runs before anything is deleted: a batch's keys are
planned, every one is checked against what it may take (prune: its checkpoint is in the batch;
compact: its checkpoint does not exist), and only then one MULTI/EXEC deletes them all. A failed
check raises ``IntegrityError`` and nothing of the batch is deleted. Latest pointers are WATCHed
from the moment they are read: a saver that moves one meanwhile makes the batch plan again
instead of having its new checkpoint hidden behind an old pointer.

Only this store's keys are touched. RedisSaver's write registries (``write_keys_zset:…``) do not
carry the store's prefix, so one may hold another prefix's entries: a registry is never deleted
whole, only this store's members of it are removed (``_TRIM``); Redis drops it with its last member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import redis

from ckpt.backends.core.base import CheckpointKey
from ckpt.backends.core.errors import IntegrityError, LockedError
from ckpt.backends.redis.schema import ZSET_PREFIX, KeySpace, Owner, scan_keys, stored_ns, tag_query

_plant_fault: Callable[[list[str]], list[str]] | None = None
"""TEST-ONLY fault injection: given a batch's planned delete keys (after planning, before the
guard), returns the keys the batch will delete. Tests add a key the guard must refuse. Never set
it anywhere else."""

_PAGE = 500
_CHUNK = 1000
"""Keys per DEL / per FT.SEARCH page."""
_ATTEMPTS = 3
_FIELDS = ("RETURN", 3, "thread_id", "checkpoint_ns", "checkpoint_id")

_TRIM = """
-- KEYS: write registries; ARGV[1]: '1' to count only; ARGV[i + 1]: the member stem of KEYS[i].
-- Per registry: how many members start with its stem; those are removed unless counting.
local found = {}
for i, zset in ipairs(KEYS) do
  local stem, mine = ARGV[i + 1], {}
  if redis.call('TYPE', zset).ok == 'zset' then
    for _, member in ipairs(redis.call('ZRANGE', zset, 0, -1)) do
      if string.sub(member, 1, #stem) == stem then mine[#mine + 1] = member end
    end
  end
  if ARGV[1] ~= '1' then
    for j = 1, #mine, 500 do
      redis.call('ZREM', zset, unpack(mine, j, math.min(j + 499, #mine)))
    end
  end
  found[i] = #mine
end
return found
"""
"""Atomic, so an entry another prefix adds to a shared registry meanwhile is never lost."""

Slot = tuple[str, str]
"""``(thread_id, checkpoint_ns)``: what one latest pointer stands for."""


@dataclass
class _Plan:
    doomed: set[Owner]
    named: dict[str, Owner] = field(default_factory=dict)
    """The batch's checkpoint keys and registry keys → their checkpoint (built, never parsed)."""
    kept: dict[str, Owner] = field(default_factory=dict)
    """Checkpoint key → checkpoint, for every checkpoint of the batch's threads that stays."""
    owners: dict[str, Owner] = field(default_factory=dict)
    """Write key → the checkpoint its document names."""
    slots: dict[str, list[Slot]] = field(default_factory=dict)
    """Latest pointer → the namespaces it stands for (two only where RedisSaver's keys collide)."""
    repoint: dict[str, str | None] = field(default_factory=dict)
    """Latest pointer → its new target (None: delete the pointer)."""

    by_slot: dict[Slot, tuple[str, Owner]] = field(default_factory=dict)
    """The newest checkpoint that stays, per namespace (``kept`` indexed once)."""

    def keep(self, kept: dict[str, Owner]) -> None:
        self.kept = kept
        for key, owner in kept.items():
            if owner[:2] not in self.by_slot or owner[2] > self.by_slot[owner[:2]][1][2]:
                self.by_slot[owner[:2]] = (key, owner)

    def newest_kept(self, pointer: str) -> tuple[str, Owner] | None:
        found = [self.by_slot[slot] for slot in self.slots.get(pointer, []) if slot in self.by_slot]
        return max(found, key=lambda ko: ko[1][2], default=None)


def _name(owner: Owner) -> str:
    return f"checkpoint thread={owner[0]!r} ns={owner[1]!r} id={owner[2]}"


def _doc_owner(doc: Any) -> Owner | None:
    if not isinstance(doc, dict) or not all(isinstance(doc.get(f), str) for f in ("thread_id", "checkpoint_id")):
        return None
    return doc["thread_id"], stored_ns(str(doc.get("checkpoint_ns") or "")), doc["checkpoint_id"]


def _refuse(key: str, problem: str) -> IntegrityError:
    return IntegrityError(f"integrity guard: refusing to delete {key}: {problem}; nothing of this batch was deleted")


class Janitor:
    """Deletes of one store: its client, key space and the saver's two search indexes."""

    def __init__(self, client: Any, keys: KeySpace, index: str, write_index: str) -> None:
        self._r, self.keys, self._index, self._write_index = client, keys, index, write_index

    # -- prune ---------------------------------------------------------------------

    def delete(self, doomed_keys: Iterable[CheckpointKey]) -> int:
        """Delete checkpoints with their writes and their entries in the write registries."""
        doomed = {(k.thread_id, k.checkpoint_ns, k.checkpoint_id) for k in doomed_keys}
        return self._run(doomed, {o[:2] for o in doomed}) if doomed else 0

    def _run(self, doomed: set[Owner], slots: set[Slot]) -> int:
        """Plan, guard and delete one batch; returns how many checkpoint documents went."""
        for _ in range(_ATTEMPTS):
            with self._r.pipeline(transaction=True) as pipe:
                try:
                    return self._run_once(pipe, doomed, slots)
                except redis.WatchError:
                    continue  # a saver moved a pointer: plan again from what is there now
        thread = min(slots)[0]
        raise LockedError(f"latest pointers of thread {thread!r} kept moving (a graph is running); nothing deleted")

    def _run_once(self, pipe: Any, doomed: set[Owner], slots: set[Slot]) -> int:
        plan = _Plan(doomed, owners=self._writes_of(doomed))
        plan.named = {self.keys.checkpoint(*o): o for o in doomed} | {self.keys.zset(*o): o for o in doomed}
        present = self._search(self._index, {t for t, _ in slots})
        plan.keep({k: o for k, o in present.items() if o not in doomed})
        self._plan_pointers(pipe, plan, slots)
        planned = [self.keys.checkpoint(*o) for o in sorted(doomed)] + list(plan.owners)
        planned += [self.keys.zset(*o) for o in sorted(doomed)]
        planned += [p for p, target in plan.repoint.items() if target is None]
        keys = _plant_fault(planned) if _plant_fault is not None else planned
        self._guard(plan, keys)
        pipe.multi()
        counted = self._queue(pipe, keys)
        for pointer, target in plan.repoint.items():
            if target is not None:
                pipe.set(pointer, target, keepttl=True)  # RedisSaver's TTL on the pointer stays
        return sum(pipe.execute()[:counted])

    def _writes_of(self, doomed: set[Owner]) -> dict[str, Owner]:
        """The write keys whose documents name a checkpoint of the batch."""
        found = self._search(self._write_index, {t for t, _, _ in doomed})
        return {k: o for k, o in found.items() if o in doomed}

    def _plan_pointers(self, pipe: Any, plan: _Plan, slots: set[Slot]) -> None:
        """Rewrite (or delete) exactly the pointers whose target is gone or going."""
        for slot in slots:
            plan.slots.setdefault(self.keys.latest(*slot), []).append(slot)
        pointers = sorted(plan.slots)
        pipe.watch(*pointers)
        targets = [t.decode() if t is not None else None for t in pipe.mget(pointers)]
        alive = self._exists([t for t in targets if t is not None])
        for pointer, target in zip(pointers, targets):
            if target is None or (alive[target] and target not in plan.named):
                continue  # no pointer (RedisSaver: no checkpoint), or it leads to one that stays
            newest = plan.newest_kept(pointer)
            plan.repoint[pointer] = newest[0] if newest else None

    def _guard(self, plan: _Plan, keys: list[str]) -> None:
        """Raise IntegrityError unless every key may go (and every pointer rewrite is needed)."""
        owners = plan.owners | self._owners([k for k in keys if self.keys.kind(k) == "write" and k not in plan.owners])
        for key in keys:
            problem = self._prune_problem(plan, owners, key)
            if problem:
                raise _refuse(key, problem)
        for pointer, target in plan.repoint.items():
            if target is not None and (target not in plan.kept or target in plan.named):
                raise _refuse(pointer, f"its new target {target} does not stay")

    def _prune_problem(self, plan: _Plan, owners: dict[str, Owner], key: str) -> str | None:
        kind = self.keys.kind(key)
        if kind == "latest":
            return self._pointer_problem(plan, key)
        if kind in ("checkpoint", "zset") and key in plan.named:
            return None
        owner = owners.get(key) if kind == "write" else self.keys.owner(key)  # parsed: for the message only
        if owner is None:
            return "it is no checkpoint, pending write or registry of this store"
        if kind == "write" and not key.startswith(self.keys.write_stem(*owner)):
            return f"its document names {_name(owner)}, its key another checkpoint"
        what = {"checkpoint": "it is", "write": "it is a pending write of", "zset": "it is the write registry of"}
        return None if owner in plan.doomed else f"{what[str(kind)]} {_name(owner)}, which this batch does not delete"

    def _pointer_problem(self, plan: _Plan, pointer: str) -> str | None:
        if pointer not in plan.repoint:
            thread_id, ns = self.keys.slot(pointer)
            return f"it is the latest pointer of thread={thread_id!r} ns={ns!r}, which stays valid"
        newest = plan.newest_kept(pointer)
        if newest:
            return f"{_name(newest[1])} stays, and RedisSaver finds it through this pointer"
        return None

    # -- compact -------------------------------------------------------------------

    def compact(self, idle_before: str, *, dry_run: bool = False) -> dict[str, int]:
        """Orphan writes and registry entries, stale latest pointers, unset ``has_writes`` flags.

        Only data older than ``idle_before`` counts as orphaned (a running graph writes its
        writes before the checkpoint they belong to, spec §8 rule 8).
        """
        removed = {"orphan_writes": 0, "orphan_zsets": 0, "stale_pointers": 0, "has_writes_fixed": 0}
        for page in scan_keys(self._r, f"{self.keys.write_prefix}:*"):
            orphans, unflagged = self._orphan_writes(page, idle_before)
            removed["orphan_writes"] += len(orphans)
            removed["has_writes_fixed"] += len(unflagged)
            if not dry_run:
                self._remove_orphans(orphans)
                self._set_flags(unflagged)
        for page in scan_keys(self._r, f"{ZSET_PREFIX}:*"):  # every prefix's registries: only ours are picked
            orphans = self._orphan_registries(page, idle_before)
            removed["orphan_zsets"] += len(orphans)
            if not dry_run:
                self._remove_orphans(orphans)
        for page in scan_keys(self._r, f"{self.keys.prefix}_latest:*"):
            stale = self._stale_pointers(page)
            removed["stale_pointers"] += len(stale)
            if not dry_run and stale:
                self._run(set(), {slot for p in stale for slot in self.keys.slots(p)})
        return removed

    def _orphan_writes(self, page: list[str], idle_before: str) -> tuple[dict[str, Owner], list[str]]:
        """(write key → its missing checkpoint, checkpoint keys whose ``has_writes`` is not set)."""
        owners = {
            k: o for k, o in self._owners(page).items()
            if o[2] < idle_before and k.startswith(self.keys.write_stem(*o))
        }  # fmt: skip
        checkpoints = sorted({self.keys.checkpoint(*o) for o in owners.values()})
        flags = dict(zip(checkpoints, self._r.json().mget(checkpoints, "$.has_writes") if checkpoints else []))
        orphans = {k: o for k, o in owners.items() if flags[self.keys.checkpoint(*o)] is None}
        return orphans, [k for k, flag in flags.items() if flag is not None and flag[:1] != [True]]

    def _orphan_registries(self, page: list[str], idle_before: str) -> dict[str, Owner]:
        """Registries of missing checkpoints of this store that hold entries of this store."""
        candidates = {z: o for z in page if (o := self.keys.owner(z)) is not None and o[2] < idle_before}
        alive = self._exists([self.keys.checkpoint(*o) for o in candidates.values()])
        candidates = {z: o for z, o in candidates.items() if not alive[self.keys.checkpoint(*o)]}
        counts = self._trim(self._r, list(candidates), count_only=True) if candidates else []
        return {z: o for (z, o), n in zip(candidates.items(), counts) if n}

    def _stale_pointers(self, page: list[str]) -> list[str]:
        targets = [t.decode() if t is not None else None for t in self._r.mget(page)]
        alive = self._exists([t for t in targets if t is not None])
        return [p for p, t in zip(page, targets) if t is not None and not alive[t]]

    def _remove_orphans(self, planned: dict[str, Owner]) -> None:
        """Delete orphan writes / registry entries, after proving again that their checkpoints are gone."""
        if not planned:
            return
        keys = _plant_fault(list(planned)) if _plant_fault is not None else list(planned)
        owners = planned | self._owners([k for k in keys if self.keys.kind(k) == "write" and k not in planned])
        for key in keys:
            kind = self.keys.kind(key)
            owner = owners.get(key) if kind == "write" else self.keys.owner(key)
            if kind not in ("write", "zset") or owner is None:
                raise _refuse(key, "compact removes only pending writes and registry entries of this store")
            if kind == "write" and not key.startswith(self.keys.write_stem(*owner)):
                raise _refuse(key, f"its document names {_name(owner)}, its key another checkpoint")
        checkpoints = sorted({self.keys.checkpoint(*o) for k in keys if (o := owners.get(k) or self.keys.owner(k))})
        with self._r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*checkpoints)  # (c) checked again just below, and held until EXEC
                if pipe.exists(*checkpoints):
                    self._raise_alive(keys, owners)
                pipe.multi()
                self._queue(pipe, keys)
                pipe.execute()
            except redis.WatchError:
                raise IntegrityError(
                    f"integrity guard: a checkpoint of {keys[0]}'s batch was written while compact ran; "
                    "nothing of this batch was deleted (run compact again)"
                ) from None

    def _raise_alive(self, keys: list[str], owners: dict[str, Owner]) -> NoReturn:
        for key in keys:
            owner = owners.get(key) or self.keys.owner(key)
            if owner is not None and self._r.exists(self.keys.checkpoint(*owner)):
                raise _refuse(key, f"it belongs to {_name(owner)}, which exists")
        raise _refuse(keys[0], "a checkpoint of this batch exists again")  # created between the two reads

    def _set_flags(self, checkpoints: list[str]) -> None:
        """``has_writes: true`` where writes exist: RedisSaver shows a checkpoint's writes only then."""
        pipe = self._r.pipeline(transaction=False)
        for key in checkpoints:
            pipe.execute_command("JSON.SET", key, "$.has_writes", "true")
        pipe.execute()

    # -- plumbing --------------------------------------------------------------------

    def _queue(self, pipe: Any, keys: list[str]) -> int:
        """Queue the deletes; returns how many of the first replies count checkpoint documents."""
        checkpoints = [k for k in keys if self.keys.kind(k) == "checkpoint"]
        zsets = [k for k in keys if self.keys.kind(k) == "zset"]
        others = [k for k in keys if self.keys.kind(k) in ("write", "latest")]
        for start in range(0, len(checkpoints), _CHUNK):
            pipe.delete(*checkpoints[start : start + _CHUNK])
        for start in range(0, len(others), _CHUNK):
            pipe.delete(*others[start : start + _CHUNK])
        if zsets:
            self._trim(pipe, zsets, count_only=False)
        return -(-len(checkpoints) // _CHUNK)

    def _trim(self, target: Any, zsets: list[str], *, count_only: bool) -> Any:
        """``_TRIM`` on these registries, each for the entries of the checkpoint it is named after."""
        stems = []
        for zset in zsets:
            owner = self.keys.owner(zset)
            assert owner is not None  # only registries of this store's key space get here
            stems.append(self.keys.write_stem(*owner))
        return target.eval(_TRIM, len(zsets), *zsets, "1" if count_only else "0", *stems)

    def _owners(self, keys: list[str]) -> dict[str, Owner]:
        """Write key → the checkpoint its document names (keys without a readable document are left out)."""
        found: dict[str, Owner] = {}
        for start in range(0, len(keys), _PAGE):
            chunk = keys[start : start + _PAGE]
            for key, doc in zip(chunk, self._r.json().mget(chunk, "$")):
                owner = _doc_owner(doc[0]) if doc else None
                if owner is not None:
                    found[key] = owner
        return found

    def _exists(self, keys: list[str]) -> dict[str, bool]:
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        return {k: bool(n) for k, n in zip(keys, pipe.execute() if keys else [])}

    def _search(self, index: str, threads: set[str]) -> dict[str, Owner]:
        """Key → checkpoint (its document's fields, as indexed) of every key the index lists for these threads.

        One pipelined FT.SEARCH per page, for all threads at once. Tag matches ignore case: keys
        of another thread differing in case only are left out here.
        """
        found: dict[str, Owner] = {}
        pending = {t: 0 for t in threads}
        while pending:
            pipe = self._r.pipeline(transaction=False)
            for thread_id, offset in sorted(pending.items()):
                query = tag_query("thread_id", thread_id)
                pipe.execute_command("FT.SEARCH", index, query, *_FIELDS, "LIMIT", offset, _CHUNK, "DIALECT", 2)
            full = {}
            for (thread_id, offset), reply in zip(sorted(pending.items()), pipe.execute()):
                for key, values in zip(reply[1::2], reply[2::2]):
                    fields = dict(zip(values[::2], values[1::2]))
                    owner = _doc_owner({k.decode(): v.decode() for k, v in fields.items()})
                    if owner is not None and owner[0] in threads:
                        found[key.decode()] = owner
                if len(reply) // 2 == _CHUNK:
                    full[thread_id] = offset + _CHUNK
            pending = full
        return found
