"""Redis: ``delete_thread`` by thread id and the residue scan behind ``ckpt delete`` (issue #22).

RedisSaver files a thread under five key families (spec §5.2, §5.7) and two search indexes:
checkpoint documents ``{prefix}:{thread}:…``, latest pointers ``{prefix}_latest:{thread}:…``, write
documents ``{write_prefix}:{thread}:…``, write registries ``write_keys_zset:{thread}:…`` (shared by
every prefix: only this store's members count, as in ``prune``), and 0.0.x blob documents
``{prefix}_blob:{thread}:…``; the RediSearch entries of the indexes follow their documents.
Keys are found by SCAN of each family (not by the index, which RedisSaver's ``delete_thread``
trusts and which misses keys another writer left unindexed: langgraph-redis#51), and the indexes
are asked too, so an index entry whose document is gone would show.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ckpt.backends.core.base import CheckpointKey
from ckpt.backends.redis.schema import ZSET_PREFIX, KeySpace, scan_keys, tag_query

_GLOB = re.compile(r"([*?\[\]\\])")
_CHUNK = 500
_ZREM_MINE = """
-- KEYS: registries; ARGV[1]: the member stem. Removes (returns) how many members start with it.
local removed = 0
for _, zset in ipairs(KEYS) do
  if redis.call('TYPE', zset).ok == 'zset' then
    for _, member in ipairs(redis.call('ZRANGE', zset, 0, -1)) do
      if string.sub(member, 1, #ARGV[1]) == ARGV[1] then
        redis.call('ZREM', zset, member)
        removed = removed + 1
      end
    end
  end
end
return removed
"""


def _esc(text: str) -> str:
    """``text`` matched literally by a SCAN glob."""
    return _GLOB.sub(r"\\\1", text)


def _families(keys: KeySpace, thread_id: str) -> dict[str, str]:
    t = _esc(thread_id)
    return {
        "checkpoints": f"{_esc(keys.prefix)}:{t}:*",
        "latest_pointers": f"{_esc(keys.prefix)}_latest:{t}:*",
        "writes": f"{_esc(keys.write_prefix)}:{t}:*",
        "blobs": f"{_esc(keys.prefix)}_blob:{t}:*",
    }


def delete_threads(client: Any, keys: KeySpace, thread_ids: Sequence[str]) -> int:
    """Every key of these threads; returns how many checkpoint documents went."""
    deleted = 0
    for thread_id in thread_ids:
        for family, pattern in _families(keys, thread_id).items():
            for page in scan_keys(client, pattern):
                mine = [k for k in page if _of_thread(keys, k, thread_id)]
                if mine:
                    removed = int(client.delete(*mine))
                    deleted += removed if family == "checkpoints" else 0
        stem = f"{keys.write_prefix}:{thread_id}:"
        for page in scan_keys(client, f"{ZSET_PREFIX}:{_esc(thread_id)}:*"):
            client.eval(_ZREM_MINE, len(page), *page, stem)
    return deleted


def residue(
    client: Any, keys: KeySpace, indexes: tuple[str, str], thread_ids: Sequence[str], doomed: Sequence[CheckpointKey]
) -> dict[str, int]:
    found = {"checkpoints": 0, "writes": 0, "latest_pointers": 0, "registry_entries": 0, "blobs": 0}
    found["index_entries"] = 0
    for thread_id in thread_ids:
        for family, pattern in _families(keys, thread_id).items():
            for page in scan_keys(client, pattern):
                found[family] += sum(1 for k in page if _of_thread(keys, k, thread_id))
        stem = f"{keys.write_prefix}:{thread_id}:"
        for page in scan_keys(client, f"{ZSET_PREFIX}:{_esc(thread_id)}:*"):
            found["registry_entries"] += _members(client, page, stem)
        for index in indexes:
            found["index_entries"] += _indexed(client, index, thread_id)
    rest = [k for k in doomed if k.thread_id not in thread_ids]
    if rest:
        _key_residue(client, keys, indexes, rest, found)
    return found


def _key_residue(
    client: Any, keys: KeySpace, indexes: tuple[str, str], doomed: list[CheckpointKey], found: dict[str, int]
) -> None:
    """Of deleted checkpoints (``delete --run``): their documents, write keys, registry entries,
    and latest pointers that still lead to one of them."""
    names = {keys.checkpoint(k.thread_id, k.checkpoint_ns, k.checkpoint_id) for k in doomed}
    found["checkpoints"] += int(client.exists(*names)) if names else 0
    for thread_id in sorted({k.thread_id for k in doomed}):
        mine = [k for k in doomed if k.thread_id == thread_id]
        t = _esc(thread_id)
        for page in scan_keys(client, f"{_esc(keys.write_prefix)}:{t}:*"):
            stems = [keys.write_stem(k.thread_id, k.checkpoint_ns, k.checkpoint_id) for k in mine]
            found["writes"] += sum(1 for key in page if any(key.startswith(s) for s in stems))
        for key in mine:
            zset = keys.zset(key.thread_id, key.checkpoint_ns, key.checkpoint_id)
            found["registry_entries"] += _members(
                client, [zset], keys.write_stem(key.thread_id, key.checkpoint_ns, key.checkpoint_id)
            )
        pointers = sorted({keys.latest(k.thread_id, k.checkpoint_ns) for k in mine})
        targets = client.mget(pointers) if pointers else []
        found["latest_pointers"] += sum(1 for t_ in targets if t_ is not None and t_.decode() in names)
        for index in indexes:
            for key in mine:
                query = f"{tag_query('thread_id', key.thread_id)} {tag_query('checkpoint_id', key.checkpoint_id)}"
                reply = client.execute_command("FT.SEARCH", index, query, "LIMIT", 0, 0, "DIALECT", 2)
                found["index_entries"] += int(reply[0])


def _of_thread(keys: KeySpace, key: str, thread_id: str) -> bool:
    """SCAN's glob is case-sensitive and exact here; this guards prefixes that start one another
    (``checkpoint`` / ``checkpoint_write``): the key's thread part must be the thread itself."""
    for head in (f"{keys.prefix}:", f"{keys.prefix}_latest:", f"{keys.write_prefix}:", f"{keys.prefix}_blob:"):
        if key.startswith(head + thread_id + ":"):
            return True
    return False


def _members(client: Any, zsets: list[str], stem: str) -> int:
    total = 0
    for zset in zsets:
        if client.type(zset) not in (b"zset", "zset"):
            continue
        total += sum(1 for m in client.zrange(zset, 0, -1) if m.decode().startswith(stem))
    return total


def _indexed(client: Any, index: str, thread_id: str) -> int:
    """Index entries of the thread whose document says so (tags match case-insensitively)."""
    count, offset = 0, 0
    while True:
        reply = client.execute_command(
            "FT.SEARCH", index, tag_query("thread_id", thread_id), "RETURN", 1, "thread_id",
            "LIMIT", offset, _CHUNK, "DIALECT", 2,
        )  # fmt: skip
        page = list(zip(reply[1::2], reply[2::2]))
        for _key, values in page:
            fields = dict(zip(values[::2], values[1::2]))
            if fields.get(b"thread_id", b"").decode() == thread_id:
                count += 1
        if len(page) < _CHUNK:
            return count
        offset += _CHUNK
