"""What wakes a node that never ran in a thread, learned from the threads where it did.

In graphs of LangGraph 0.2 a plain edge ``a → b`` made ``b`` read the channel named ``a``; the
checkpoint records that only in ``versions_seen`` once ``b`` has run. A thread paused before
``b``'s first run therefore cannot say ``b`` is next without the graph, which ckpt never loads.
Other threads of the same graph (same namespace shape) can: their checkpoints name the readers.
A few threads are asked (``LIMIT``), so ``show`` stays cheap on a large store.
"""

from __future__ import annotations

from itertools import islice

from ckpt.backends.core.base import CheckpointKey, CheckpointRecord, Selection, Store
from ckpt.backends.core.errors import CkptError
from ckpt.formats.payloads import PayloadDecoder
from ckpt.formats.state import seen_triggers, view_record

LIMIT = 20


def namespace_shape(checkpoint_ns: str) -> str:
    """``"outer:<task>|inner:<task>"`` → ``"outer|inner"``: the subgraph path without task ids."""
    return "|".join(part.split(":", 1)[0] for part in checkpoint_ns.split("|")) if checkpoint_ns else ""


def learn_triggers(
    store: Store, key: CheckpointKey, channels: set[str], decoder: PayloadDecoder
) -> dict[str, set[str]]:
    """Channel → the nodes it triggers, for ``channels``, from up to ``LIMIT`` other threads."""
    learned: dict[str, set[str]] = {}
    shape = namespace_shape(key.checkpoint_ns)
    for summary in islice(store.threads(details=False), LIMIT + 1):
        if summary.thread_id == key.thread_id:
            continue
        record = _latest_like(store, summary.thread_id, shape)
        if record is None:
            continue
        try:
            found = seen_triggers(view_record(record, decoder).checkpoint)
        except CkptError:
            continue  # an unreadable neighbour teaches nothing; show goes on
        for channel in channels & found.keys():
            learned.setdefault(channel, set()).update(found[channel])
        if channels <= learned.keys():
            break
    return learned


def _latest_like(store: Store, thread_id: str, shape: str) -> CheckpointRecord | None:
    """The newest checkpoint of ``thread_id`` in a namespace of ``shape``."""
    if shape == "":
        header = store.latest(thread_id, "")
        return store.get(header.key) if header is not None else None
    newest: CheckpointKey | None = None
    for header in store.headers(Selection(thread_id=thread_id)):
        if namespace_shape(header.key.checkpoint_ns) == shape and (
            newest is None or header.key.checkpoint_id > newest.checkpoint_id
        ):
            newest = header.key
    return store.get(newest) if newest is not None else None
