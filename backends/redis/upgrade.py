"""``ckpt upgrade`` for Redis: the layouts langgraph-checkpoint-redis wrote before 0.3 (spec §5.7).

- 0.0.x kept channel values in ``{prefix}_blob:{thread}:{ns}:{channel}:{version}`` documents
  (with a search index of their own) and ``"json"`` write blobs as raw JSON text, which today's
  saver base64-decodes into garbage.
- up to 0.2.x the search indexes were named in the plural (``checkpoints``, ``checkpoint_writes``);
  RedisSaver 0.5 creates and searches ``checkpoint`` and ``checkpoint_write`` and sees nothing.

The upgrade creates the current indexes (and waits until they cover every document), stores
every checkpoint and write again in the current form (inline channel values, base64 blobs,
latest pointers, write registries), and only then drops the blob documents and the old indexes
(documents kept). Each step checks what is already done, so a rerun after a kill finishes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from ckpt.backends.core.errors import IntegrityError, StorageError
from ckpt.backends.core.upgrade import LayoutUpgrade, UpgradeStep
from ckpt.backends.redis.schema import STAGING, ensure_indexes, misfiled_ids, scan_keys

CURRENT = "langgraph-checkpoint-redis >=0.3 (checkpoint/checkpoint_write indexes, inline channel values)"
INDEX_WAIT_SECONDS = 600.0


def _indexes(client: Any) -> set[str]:
    return {i.decode() if isinstance(i, bytes) else i for i in client.execute_command("FT._LIST")}


def layout_upgrade(
    client: Any, prefix: str, write_prefix: str, use_current: Callable[[], None]
) -> LayoutUpgrade | None:
    """``use_current`` switches the store's reads to the current indexes once they are complete."""
    indexes = _indexes(client)
    legacy_indexes = sorted(indexes & {f"{prefix}s", f"{write_prefix}s", f"{prefix}s_blobs", f"{prefix}_blob"})
    blob_keys = _count(client, f"{prefix}_blob:*")
    staged = _count(client, f"{STAGING}{prefix}:*")
    misfiled = sum(1 for _ in _misfiled(client, prefix))
    current = {prefix, write_prefix} <= indexes
    if not (legacy_indexes or blob_keys or staged or misfiled):
        return LayoutUpgrade(CURRENT) if current else None
    generation = (
        "langgraph-checkpoint-redis 0.0.x (channel values in blob documents, checkpoints filed under their parent's id)"
        if blob_keys or misfiled
        else "langgraph-checkpoint-redis 0.1-0.2 (plural index names)"
        if legacy_indexes
        else "langgraph-checkpoint-redis, an upgrade not finished (staged documents left)"
    )
    steps = (
        UpgradeStep(
            "create-indexes",
            f"create the search indexes {prefix}, {write_prefix} as RedisSaver 0.5 does, and wait until they "
            "cover every document",
            0 if current else 2,
            lambda: _create_indexes(client, prefix, write_prefix, use_current),
        ),
    )
    after = (
        UpgradeStep(
            "file-staged",
            "file every rewritten checkpoint under its own id (staged until all were written)",
            staged,
            lambda: _file_staged(client, prefix),
        ),
        UpgradeStep(
            "drop-misfiled",
            "delete the documents 0.0.x filed under a parent's id (each checkpoint is filed under its own by then)",
            misfiled,
            lambda: _drop_misfiled(client, prefix),
        ),
        UpgradeStep(
            "drop-blob-documents",
            f"delete the {prefix}_blob:* documents (their values are inline in the checkpoints by then)",
            blob_keys,
            lambda: _drop_blobs(client, prefix),
        ),
        UpgradeStep(
            "drop-old-indexes",
            f"drop the old search indexes {', '.join(legacy_indexes) or '(none)'} (their documents are kept)",
            len(legacy_indexes),
            lambda: _drop_indexes(client, legacy_indexes),
        ),
    )
    return LayoutUpgrade(generation, steps=steps, after=after, rewrite_all=True)


def _file_staged(client: Any, prefix: str) -> int:
    """Copy each staged document over its own key (with its TTL), then delete the staged one. A
    staged document goes only after its copy is filed, so a rerun after a kill files what is left.
    Not ``RENAME``: renaming a JSON key into an indexed prefix corrupted valkey-server's heap here
    (RediSearch 2.x with valkey 9: ``malloc_consolidate(): unaligned fastbin chunk``)."""
    filed = 0
    for keys in scan_keys(client, f"{STAGING}{prefix}:*"):
        read = client.pipeline(transaction=False)
        for key in keys:
            read.execute_command("JSON.GET", key)
            read.pttl(key)
        replies = read.execute()
        write = client.pipeline(transaction=True)
        for key, document, ttl in zip(keys, replies[::2], replies[1::2]):
            if document is None:
                continue  # filed and deleted by a run that was killed after its copy
            own = _text(key)[len(STAGING) :]
            text = document if isinstance(document, (str, bytes)) else json.dumps(document)
            write.execute_command("JSON.SET", own, "$", text)
            if isinstance(ttl, int) and ttl > 0:
                write.pexpire(own, ttl)
            write.delete(key)
        write.execute()
        filed += len(keys)
    return filed


def _misfiled(client: Any, prefix: str) -> Iterator[tuple[str, str, str]]:
    """``(key, own id, filed-as id)`` of every checkpoint document filed under another id."""
    for keys in scan_keys(client, f"{prefix}:*"):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("JSON.GET", key, "$.checkpoint_id", "$.parent_checkpoint_id", "$.checkpoint.id")
        for key, found in zip(keys, pipe.execute()):
            paths = _json(found) or {}
            filed_as, parent, own = ((paths.get(p) or [None])[0] for p in _ID_PATHS)
            if misfiled_ids(filed_as, parent, own) is not None:
                yield _text(key), str(own), str(filed_as)


_ID_PATHS = ("$.checkpoint_id", "$.parent_checkpoint_id", "$.checkpoint.id")


def _drop_misfiled(client: Any, prefix: str) -> int:
    """Delete misfiled documents whose checkpoint is filed under its own id; refuse otherwise."""
    deleted = 0
    for key, own, _ in list(_misfiled(client, prefix)):
        rightful = key.rsplit(":", 1)[0] + ":" + own
        found = client.execute_command("JSON.GET", rightful, "$.checkpoint.id")
        if _json(found) != [own]:
            raise IntegrityError(f"{key} holds checkpoint {own}, which is not filed under {rightful}; kept")
        deleted += int(client.delete(key))
    return deleted


def _count(client: Any, pattern: str) -> int:
    return sum(len(keys) for keys in scan_keys(client, pattern))


def _create_indexes(client: Any, prefix: str, write_prefix: str, use_current: Callable[[], None]) -> int:
    existing = _indexes(client)
    ensure_indexes(client, prefix, write_prefix, existing)
    created = len({prefix, write_prefix} - existing)
    # RediSearch indexes existing documents in the background: a rewrite that searched a half-built
    # index would skip checkpoints, whose blob documents the last step then deletes.
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    for name in (prefix, write_prefix):
        while not _indexed(client, name):
            if time.monotonic() > deadline:
                raise StorageError(f"search index {name} still indexing after {INDEX_WAIT_SECONDS:.0f} s; run again")
            time.sleep(0.05)
    use_current()
    return created


def _indexed(client: Any, name: str) -> bool:
    reply = client.execute_command("FT.INFO", name)
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2])
    info = {_text(k): v for k, v in pairs}
    return str(_text(info.get("indexing", 0))) in ("0", "0.0")


def _json(reply: Any) -> Any:
    """A JSON.GET reply (redis-py parses it when its JSON module is loaded; raw text otherwise)."""
    return json.loads(reply) if isinstance(reply, (str, bytes)) else reply


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _drop_blobs(client: Any, prefix: str) -> int:
    _refuse_if_values_outside(client, prefix)
    deleted = 0
    for keys in scan_keys(client, f"{prefix}_blob:*"):
        deleted += int(client.delete(*keys))
    return deleted


def _refuse_if_values_outside(client: Any, prefix: str) -> None:
    """Blob documents go only when no checkpoint still needs them (every one has inline values)."""
    for keys in scan_keys(client, f"{prefix}:*"):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("JSON.TYPE", key, "$.checkpoint.channel_values")
        for key, kind in zip(keys, pipe.execute()):
            if not kind:
                raise IntegrityError(f"checkpoint {_text(key)} has no inline channel values yet; blob documents kept")


def _drop_indexes(client: Any, names: list[str]) -> int:
    existing = _indexes(client)
    for name in names:
        if name in existing:
            client.execute_command("FT.DROPINDEX", name)  # without DD: the documents stay
    return len(existing & set(names))
