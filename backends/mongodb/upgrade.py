"""``ckpt upgrade`` for MongoDB: metadata leaves of langgraph-checkpoint-mongodb 0.1-0.2.0.

Those releases stored each metadata leaf as ``serde.dumps(value)`` (JSON bytes, no type; a
0.2.2 store, tests/fixtures/old, has typed leaves already); later savers expect
``[type, BinData]`` pairs and fail on every such checkpoint (``too many values to unpack``,
langchain-mongodb#287). The upgrade stores every checkpoint document again with typed leaves;
checkpoint bytes, ids and writes are kept. A rerun after a kill finds the documents not yet
rewritten by a scan of their metadata and rewrites all again (the rewrite is idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne

from ckpt.backends.core.base import CheckpointRecord
from ckpt.backends.core.upgrade import LayoutUpgrade

if TYPE_CHECKING:
    from ckpt.backends.mongodb.store import MongoStore

CURRENT = "langgraph-checkpoint-mongodb >=0.2.1 (typed metadata leaves)"
LEGACY = "langgraph-checkpoint-mongodb 0.1-0.2.0 (untyped JSON metadata leaves)"


def layout_upgrade(store: MongoStore) -> LayoutUpgrade:
    legacy = any(legacy_metadata(doc.get("metadata")) for doc in store.metadata_documents())
    return LayoutUpgrade(LEGACY, rewrite_all=True) if legacy else LayoutUpgrade(CURRENT)


def legacy_metadata(metadata: Any) -> bool:
    if isinstance(metadata, dict):
        return any(legacy_metadata(v) for v in metadata.values())
    return isinstance(metadata, bytes)


def replace_checkpoints(store: MongoStore, records: Iterable[CheckpointRecord]) -> int:
    """``$set`` each checkpoint document's stored fields in the current form (no upsert)."""
    now = datetime.now(timezone.utc)
    operations = [
        UpdateOne(store.key_filter(r.key), {"$set": store.checkpoint_document(r, now)}, upsert=False) for r in records
    ]
    if not operations:
        return 0
    return int(store.checkpoints.bulk_write(operations, ordered=True).matched_count)
