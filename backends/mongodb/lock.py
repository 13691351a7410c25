"""MongoDB's lock for destructive work: a document in ``ckpt_locks`` with a token and an expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError

from ckpt.backends.core.errors import LockedError
from ckpt.backends.core.locks import holder_of, lock_ttl, new_token, renewed


@contextmanager
def document_lock(locks: Any, lock_id: str, name: str, shown_url: str) -> Iterator[None]:
    """A document ``{_id: <collection>:<name>, token, expires_at}`` in ``ckpt_locks`` (its unique
    ``_id`` is the lock): taken by insert, or by an atomic takeover once ``expires_at`` (epoch
    milliseconds) has passed; renewed by token every TTL/3 while held; deleted by token."""
    token, ttl = new_token(), lock_ttl()
    if not _take_lock(locks, lock_id, token, ttl):
        held = locks.find_one({"_id": lock_id}) or {}
        raise LockedError(
            f"another ckpt {name} is running on {shown_url} (ckpt_locks {lock_id!r}, {holder_of(held.get('token'))})"
        )

    def renew() -> bool:
        expires = {"$set": {"expires_at": _epoch_ms() + int(ttl * 1000)}}
        return bool(locks.update_one({"_id": lock_id, "token": token}, expires).matched_count == 1)

    try:
        with renewed(renew, ttl, f"the {name} lock (ckpt_locks {lock_id!r})"):
            yield
    finally:
        with suppress(PyMongoError):  # unreachable: the lock lapses after the TTL instead
            locks.delete_one({"_id": lock_id, "token": token})


def _epoch_ms() -> int:
    """Lock expiries are epoch milliseconds: numbers compare alike on every server (``$lt``)."""
    return int(time.time() * 1000)


def _take_lock(locks: Any, lock_id: str, token: str, ttl: float) -> bool:
    """Insert the lock document, or take over one that expired (its holder died) in one atomic
    update whose filter says it has expired; a document of an older ckpt (no ``expires_at``, never
    renewed) counts as expired. False: a live holder has it."""
    for _ in range(3):
        now = _epoch_ms()
        document = {"token": token, "expires_at": now + int(ttl * 1000)}
        try:
            locks.insert_one({"_id": lock_id, **document})
            return True
        except DuplicateKeyError:
            pass
        for expired in ({"$lt": now}, {"$exists": False}):
            if locks.find_one_and_update({"_id": lock_id, "expires_at": expired}, {"$set": document}) is not None:
                return True
        if locks.find_one({"_id": lock_id}, {"_id": 1}) is not None:
            return False
        # released between the insert and the takeover: insert again
    return False
