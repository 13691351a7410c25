"""MongoDB: ``delete_thread`` by thread id and the residue scan behind ``ckpt delete`` (issue #22).

MongoDBSaver files a thread in two collections (spec §6), deleted as its ``delete_thread`` does:
``delete_many({thread_id})`` on each. The scan counts the documents each still holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ckpt.backends.core.base import CheckpointKey


def delete_threads(checkpoints: Any, writes: Any, thread_ids: Sequence[str]) -> int:
    ids = list(thread_ids)
    writes.delete_many({"thread_id": {"$in": ids}})
    return int(checkpoints.delete_many({"thread_id": {"$in": ids}}).deleted_count)


def residue(checkpoints: Any, writes: Any, thread_ids: Sequence[str], keys: Sequence[CheckpointKey]) -> dict[str, int]:
    found = {"checkpoints": 0, "writes": 0}
    if thread_ids:
        threads: dict[str, Any] = {"thread_id": {"$in": list(thread_ids)}}
        found["checkpoints"] += int(checkpoints.count_documents(threads))
        found["writes"] += int(writes.count_documents(threads))
    for key in keys:
        if key.thread_id in thread_ids:
            continue
        where = {"thread_id": key.thread_id, "checkpoint_ns": key.checkpoint_ns, "checkpoint_id": key.checkpoint_id}
        found["checkpoints"] += int(checkpoints.count_documents(where))
        found["writes"] += int(writes.count_documents(where))
    return found
