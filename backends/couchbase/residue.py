"""Couchbase: the ``delete_thread`` CouchbaseSaver lacks, and the residue scan behind ``ckpt delete``.

CouchbaseSaver files a thread in two collections (spec §7): checkpoint documents
``thread::ns::id`` and write documents ``thread::ns::id::task::idx``, each carrying ``thread_id``,
``checkpoint_ns`` and ``checkpoint_id`` fields. A thread goes by N1QL ``DELETE … WHERE thread_id``
on both (the saver creates no index: the recommended ``(thread_id, checkpoint_ns, checkpoint_id)``
one, ``?create_indexes=1``, serves these). The scan counts with the same filters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ckpt.backends.core.base import CheckpointKey

Query = Callable[..., list[dict[str, Any]]]


def delete_threads(query: Query, path: str, names: tuple[str, str], thread_ids: Sequence[str]) -> int:
    deleted = 0
    for thread_id in thread_ids:
        before = _count(query, path, names[0], "thread_id = $1", thread_id)
        query(f"DELETE FROM {path}.`{names[1]}` w WHERE w.thread_id = $1", thread_id)
        query(f"DELETE FROM {path}.`{names[0]}` c WHERE c.thread_id = $1", thread_id)
        deleted += before - _count(query, path, names[0], "thread_id = $1", thread_id)
    return deleted


def residue(
    query: Query, path: str, names: tuple[str, str], thread_ids: Sequence[str], keys: Sequence[CheckpointKey]
) -> dict[str, int]:
    found = {"checkpoints": 0, "writes": 0}
    for thread_id in thread_ids:
        found["checkpoints"] += _count(query, path, names[0], "thread_id = $1", thread_id)
        found["writes"] += _count(query, path, names[1], "thread_id = $1", thread_id)
    match = "thread_id = $1 AND x.checkpoint_ns = $2 AND x.checkpoint_id = $3"
    for key in keys:
        if key.thread_id in thread_ids:
            continue
        params = (key.thread_id, key.checkpoint_ns, key.checkpoint_id)
        found["checkpoints"] += _count(query, path, names[0], match, *params)
        found["writes"] += _count(query, path, names[1], match, *params)
    return found


def _count(query: Query, path: str, collection: str, where: str, *params: str) -> int:
    rows = query(f"SELECT COUNT(*) AS n FROM {path}.`{collection}` x WHERE x.{where}", *params)
    if not rows:
        return 0
    row = rows[0]
    if "n" in row:
        return int(row["n"])
    return len(rows)  # a stand-in that returns the documents instead of the aggregate
