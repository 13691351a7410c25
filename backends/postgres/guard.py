"""The integrity guard of PostgreSQL deletes made by key (prune's general path, compact).

It runs inside the delete's transaction, after the deletes, as statements of its own: what they
read is the table as the deletes left it, not the plan that chose the rows. A blob that went while
a remaining checkpoint of its thread and namespace still names its ``(channel, version)``, or a
write that went while its checkpoint remains, raises :class:`IntegrityError`; the caller's
``conn.transaction()`` then rolls the whole batch back. The server-side prune guards its batch
statement inside that statement (:mod:`ckpt.backends.postgres.prune.batches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ckpt.backends.core.errors import IntegrityError

_BLOB_NAMED = """
SELECT k.c, k.v, r.thread_id, r.checkpoint_ns, r.checkpoint_id
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS k(t, n, c, v)
JOIN checkpoints r ON r.thread_id = k.t AND r.checkpoint_ns = k.n AND r.checkpoint -> 'channel_versions' ->> k.c = k.v
LIMIT 1
"""
_WRITE_OWNED = """
SELECT r.thread_id, r.checkpoint_ns, r.checkpoint_id
FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(t, n, i)
JOIN checkpoints r ON r.thread_id = k.t AND r.checkpoint_ns = k.n AND r.checkpoint_id = k.i
LIMIT 1
"""


def check(
    conn: psycopg.Connection[Any],
    blobs: Sequence[tuple[str, str, str, str]] = (),
    writes: Sequence[tuple[str, str, str]] = (),
) -> None:
    """Raise when a deleted blob ``(thread, ns, channel, version)`` or a deleted write's checkpoint
    ``(thread, ns, checkpoint_id)`` is still named by a checkpoint that remains."""
    if blobs:
        row = conn.execute(_BLOB_NAMED, [list(c) for c in zip(*blobs)]).fetchone()
        if row is not None:
            channel, version, thread_id, ns, checkpoint_id = row
            raise IntegrityError(
                f"integrity guard: blob {channel}@{version} was about to go although checkpoint {checkpoint_id} "
                f"(thread {thread_id!r}, ns {ns!r}) still references it; the batch was rolled back"
            )
    if writes:
        row = conn.execute(_WRITE_OWNED, [list(c) for c in zip(*set(writes))]).fetchone()
        if row is not None:
            thread_id, ns, checkpoint_id = row
            raise IntegrityError(
                f"integrity guard: pending writes of kept checkpoint {checkpoint_id} (thread {thread_id!r}, "
                f"ns {ns!r}) were about to go; the batch was rolled back"
            )
