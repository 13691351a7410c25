"""Thread summaries from one ``$group`` over the saver's key fields (issue #24): no payload is read.

Counts and first/last ids come from ``$sum``/``$min``/``$max`` on ``checkpoint_id``. With time
bounds (``--since/--until``) the id range in the ``$match`` only narrows the scan: a checkpoint's
time is decoded from its uuid6 id (ids of other forms have none and are never selected), so each
thread's ids are pushed and the bounds applied here, exactly as ``Selection.matches`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ckpt.backends.core.base import Selection, ThreadSummary
from ckpt.backends.core.ids import checkpoint_time


def thread_summaries(checkpoints: Any, query: dict[str, Any], selection: Selection) -> Iterator[ThreadSummary]:
    """``threads(details=False)``: in thread order, without namespaces or bytes."""
    timed = selection.since is not None or selection.until is not None
    if timed:
        group: dict[str, Any] = {"_id": "$thread_id", "ids": {"$push": "$checkpoint_id"}}
    else:
        group = {"_id": "$thread_id", "n": {"$sum": 1}, "first": {"$min": "$checkpoint_id"},
                 "last": {"$max": "$checkpoint_id"}}  # fmt: skip
    pipeline = [{"$match": query}, {"$group": group}, {"$sort": {"_id": 1}}]
    for row in checkpoints.aggregate(pipeline, allowDiskUse=True):
        thread_id = row["_id"]
        if not isinstance(thread_id, str) or not selection.matches_thread(thread_id):
            continue
        if not timed:
            yield ThreadSummary(thread_id, None, int(row["n"]), row["first"], row["last"], None)
            continue
        ids = [i for i in row["ids"] if isinstance(i, str) and _in_time(selection, i)]
        if ids:
            yield ThreadSummary(thread_id, None, len(ids), min(ids), max(ids), None)


def _in_time(selection: Selection, checkpoint_id: str) -> bool:
    at = checkpoint_time(checkpoint_id)
    if at is None:
        return False
    return (selection.since is None or at >= selection.since) and (selection.until is None or at < selection.until)
