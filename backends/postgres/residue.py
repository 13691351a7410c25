"""PostgreSQL: ``delete_thread`` by thread id and the residue scan behind ``ckpt delete`` (issue #22).

PostgresSaver files a thread in three tables (spec §4): ``checkpoints``, ``checkpoint_blobs``
(channel values keyed by thread, namespace, channel and version) and ``checkpoint_writes``. A thread
goes as its ``delete_thread`` does, all three by ``thread_id``, here in one transaction. The scan
counts rows of each table; for deleted checkpoints (``delete --run``) it counts their rows and
writes, and the blobs of their namespaces that no remaining checkpoint references (the blobs only
they used, which :meth:`PostgresStore.delete` drops with them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ckpt.backends.core.base import CheckpointKey

_TABLES = (("checkpoints", "checkpoints"), ("blobs", "checkpoint_blobs"), ("writes", "checkpoint_writes"))
_KEYS = "unnest(%s::text[], %s::text[], %s::text[]) AS k(t, n, i)"
_UNREFERENCED = """
SELECT count(*) FROM checkpoint_blobs b
WHERE (b.thread_id, b.checkpoint_ns) IN (SELECT t, n FROM unnest(%s::text[], %s::text[]) AS s(t, n))
AND NOT EXISTS (SELECT 1 FROM checkpoints r WHERE r.thread_id = b.thread_id AND r.checkpoint_ns = b.checkpoint_ns
                AND r.checkpoint -> 'channel_versions' ->> b.channel = b.version)
"""


def delete_threads(conn: Any, thread_ids: Sequence[str]) -> int:
    """The three tables by thread id, in one transaction; returns the checkpoints deleted."""
    ids = list(thread_ids)
    with conn.transaction():
        deleted = conn.execute("DELETE FROM checkpoints WHERE thread_id = ANY(%s)", (ids,)).rowcount
        conn.execute("DELETE FROM checkpoint_blobs WHERE thread_id = ANY(%s)", (ids,))
        conn.execute("DELETE FROM checkpoint_writes WHERE thread_id = ANY(%s)", (ids,))
    return int(deleted or 0)


def residue(conn: Any, thread_ids: Sequence[str], keys: Sequence[CheckpointKey]) -> dict[str, int]:
    found = {name: 0 for name, _ in _TABLES}
    ids = list(thread_ids)
    with conn.transaction():
        if ids:
            for name, table in _TABLES:
                row = conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = ANY(%s)", (ids,)).fetchone()
                found[name] += int(row[0])
        rest = [k for k in keys if k.thread_id not in thread_ids]
        if rest:
            arrays = [[k.thread_id for k in rest], [k.checkpoint_ns for k in rest], [k.checkpoint_id for k in rest]]
            match = "x.thread_id = k.t AND x.checkpoint_ns = k.n AND x.checkpoint_id = k.i"
            for name, table in (("checkpoints", "checkpoints"), ("writes", "checkpoint_writes")):
                row = conn.execute(f"SELECT count(*) FROM {table} x, {_KEYS} WHERE {match}", arrays).fetchone()
                found[name] += int(row[0])
            slots = sorted({(k.thread_id, k.checkpoint_ns) for k in rest})
            row = conn.execute(_UNREFERENCED, ([s[0] for s in slots], [s[1] for s in slots])).fetchone()
            found["blobs"] += int(row[0])
    return found
