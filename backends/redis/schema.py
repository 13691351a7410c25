"""RedisSaver's key conventions and search indexes (spec §5.2, §5.4)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import redis

from ckpt.backends.core.base import CheckpointKey
from ckpt.backends.core.errors import CorruptRecordError

EMPTY = "__empty__"
"""How RedisSaver stores the empty string (root namespace) in keys and tag fields."""

_CHECKPOINT_FIELDS = (
    ("thread_id", "TAG"), ("run_id", "TAG"), ("checkpoint_ns", "TAG"), ("checkpoint_id", "TAG"),
    ("parent_checkpoint_id", "TAG"), ("checkpoint_ts", "NUMERIC"), ("source", "TAG"), ("step", "NUMERIC"),
    ("has_writes", "TAG"),
)  # fmt: skip
_WRITE_FIELDS = (
    ("thread_id", "TAG"), ("checkpoint_ns", "TAG"), ("checkpoint_id", "TAG"), ("task_id", "TAG"),
    ("idx", "NUMERIC"), ("channel", "TAG"), ("type", "TAG"),
)  # fmt: skip
_TAG_SPECIAL = re.compile(r"([,.<>{}\[\]\"':;!@#$%^&*()\-+=~|/\\ ?])")


def scan_keys(client: Any, pattern: str) -> Iterator[list[str]]:
    """The keys matching ``pattern``, a SCAN page at a time (never ``KEYS``: it blocks the server)."""
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor, match=pattern, count=1000)
        if keys:
            yield [k.decode() for k in keys]
        if cursor == 0:
            return


def stored_ns(value: str) -> str:
    return "" if value == EMPTY else value


def tag_query(field: str, value: str) -> str:
    """``@field:{value}`` with RediSearch tag escaping."""
    escaped = _TAG_SPECIAL.sub(r"\\\1", value)
    return "@" + field + ":{" + escaped + "}"


def missing_modules(client: Any) -> list[str]:
    names = set()
    for module in client.execute_command("MODULE", "LIST"):
        entry = dict(zip(module[::2], module[1::2])) if isinstance(module, list) else module
        name = entry.get(b"name") or entry.get("name") or b""
        names.add((name.decode() if isinstance(name, bytes) else name).lower())
    return [label for label, key in (("RedisJSON", "rejson"), ("RediSearch", "search")) if key not in names]


def ensure_indexes(client: Any, prefix: str, write_prefix: str, existing: set[str]) -> None:
    """Create the two indexes exactly as RedisSaver.setup() (redisvl) does, when missing."""
    for name, fields in ((prefix, _CHECKPOINT_FIELDS), (write_prefix, _WRITE_FIELDS)):
        if name in existing:
            continue
        schema: list[str] = []
        for field, kind in fields:
            schema += [f"$.{field}", "AS", field, kind] + (["SEPARATOR", ","] if kind == "TAG" else [])
        client.execute_command("FT.CREATE", name, "ON", "JSON", "PREFIX", 1, f"{name}:", "SCHEMA", *schema)


STAGING = "ckpt_upgrade:"
"""Where ``ckpt upgrade`` stages rewritten checkpoint documents (no search index covers it)."""

ZERO_ID = "00000000-0000-0000-0000-000000000000"
"""RedisSaver's stand-in for an empty checkpoint id in keys and documents."""


def misfiled_ids(filed_as: Any, parent: Any, checkpoint: Any) -> str | None:
    """The checkpoint's own id when a document with these fields is misfiled, else ``None``."""
    own = checkpoint.get("id") if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(own, str) or not own or own == filed_as:
        return None
    return own if filed_as in (parent, ZERO_ID) else None


ZSET_PREFIX = "write_keys_zset"
"""RedisSaver's write registry: hard-coded, NOT under the store's prefix (``key_registry.py``), so
the registries of every prefix on a server share one key space and, for equal thread, namespace
and checkpoint id, one key. A zset's members (write keys) tell whose entries it holds."""

Owner = tuple[str, str, str]
"""A checkpoint as ``(thread_id, checkpoint_ns, checkpoint_id)``, the namespace as LangGraph has it
(``""`` for the root, not ``__empty__``)."""


class KeySpace:
    """The keys of one store (``checkpoint_prefix``, ``checkpoint_write_prefix``): built and parsed.

    Thread ids and checkpoint ids hold no ``:`` (ckpt refuses such thread ids; ids are uuids), so
    a key splits unambiguously around a namespace that may hold ``:`` (``research:<task id>``).
    """

    def __init__(self, prefix: str, write_prefix: str) -> None:
        self.prefix, self.write_prefix = prefix, write_prefix
        # Longest first: a prefix may start another (``checkpoint`` / ``checkpoint_write``).
        kinds = [(f"{prefix}:", "checkpoint"), (f"{write_prefix}:", "write"), (f"{prefix}_latest:", "latest")]
        self._kinds = sorted([*kinds, (f"{ZSET_PREFIX}:", "zset")], key=lambda kv: -len(kv[0]))

    def checkpoint(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return f"{self.prefix}:{thread_id}:{ns or EMPTY}:{checkpoint_id}"

    def latest(self, thread_id: str, ns: str) -> str:
        return f"{self.prefix}_latest:{thread_id}:{ns or EMPTY}"

    def zset(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return f"{ZSET_PREFIX}:{thread_id}:{ns or EMPTY}:{checkpoint_id}"

    def write_stem(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        """What every write key of that checkpoint starts with (``…:{task_id}:{idx}`` follows)."""
        return f"{self.write_prefix}:{thread_id}:{ns or EMPTY}:{checkpoint_id}:"

    def kind(self, key: str) -> str | None:
        """``checkpoint``, ``write``, ``latest``, ``zset``, or None for a key that is none of this store's."""
        return next((kind for head, kind in self._kinds if key.startswith(head)), None)

    def owner(self, key: str) -> Owner | None:
        """The checkpoint a checkpoint key or a zset names; None when the key is not one of those."""
        kind = self.kind(key)
        if kind not in ("checkpoint", "zset"):
            return None
        thread_id, _, rest = key.split(":", 1)[1].partition(":")
        ns, _, checkpoint_id = rest.rpartition(":")
        return (thread_id, stored_ns(ns), checkpoint_id) if ns and checkpoint_id else None

    def slot(self, pointer: str) -> tuple[str, str]:
        """``(thread_id, ns)`` of a latest pointer."""
        thread_id, _, ns = pointer.split(":", 1)[1].partition(":")
        return thread_id, stored_ns(ns)

    def slots(self, pointer: str) -> list[tuple[str, str]]:
        """Every ``(thread_id, ns)`` a pointer's key could stand for: RedisSaver does not escape a
        ``:`` in a thread id, so only the stored documents can tell which split is meant."""
        parts = pointer.split(":")[1:]
        return [(":".join(parts[:i]), stored_ns(":".join(parts[i:]))) for i in range(1, len(parts))]


_TAG_MAX_BYTES = 4096
"""The longest TAG value RediSearch matches (UTF-8 bytes): a longer one is stored but never found."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def refuse_unreadable(key: CheckpointKey) -> None:
    """Refuse, before anything is written, a key RedisSaver could not read back.

    Thread ids with ``:`` make RedisSaver's keys ambiguous. The thread id, namespace and checkpoint
    id are also RediSearch TAG fields that ``RedisSaver.list`` (and ckpt) search by; measured by
    writing through the official RedisSaver and reading back (tests/backends/test_redis_tags.py),
    these are stored but never found again: a ``,`` (the tags' separator), a leading or trailing
    space (trimmed), a C0 control character or DEL (tab, newline, escape sequences; NUL breaks the
    query), and more than 4096 UTF-8 bytes. Unicode spaces, other punctuation and case are fine.
    """
    if ":" in key.thread_id:
        raise CorruptRecordError(f"{key}: thread ids containing ':' cannot be stored in RedisSaver keys unambiguously")
    for label, value in (("thread id", key.thread_id), ("namespace", key.checkpoint_ns), ("id", key.checkpoint_id)):
        problem = tag_problem(value)
        if problem is not None:
            raise CorruptRecordError(
                f"{key}: a {label} {problem} is stored by RedisSaver but never found by its search index "
                "(RediSearch TAG); nothing of this batch was written"
            )


def searchable(thread_id: str) -> bool:
    """Whether RediSearch finds this thread id by its tag (``tag_problem``; an empty id is no tag)."""
    return bool(thread_id) and tag_problem(thread_id) is None


def tag_problem(value: str) -> str | None:
    if "," in value:
        return "containing ',' (RediSearch's tag separator)"
    control = _CONTROL.search(value)
    if control is not None:
        return f"containing the control character U+{ord(control.group()):04X}"
    if value != value.strip(" "):
        return "with a leading or trailing space (RediSearch trims tags)"
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > _TAG_MAX_BYTES:
        return f"of {size} UTF-8 bytes (RediSearch matches tags of at most {_TAG_MAX_BYTES})"
    return None


_CLEAN: dict[tuple[Any, ...], tuple[float, int]] = {}
"""Databases this process found without ShallowRedisSaver keys: when, and their key count then."""
CLEAN_FOR_S = 60.0


def holds_shallow_keys(client: Any) -> bool:
    """Whether the database holds ShallowRedisSaver write registries (``write_registry:*:shallow``,
    not under any store's prefix): a SCAN of the whole key space, ~0.1 s of the server at 100k
    checkpoints. A database this process found without them less than ``CLEAN_FOR_S`` ago and whose
    key count (``DBSIZE``) has not changed since is not scanned again: ``ckpt migrate`` opens its
    source twice (to count, then to plan its workers' parts) within a second."""
    kwargs = client.connection_pool.connection_kwargs
    where = (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), kwargs.get("db", 0))
    try:
        keys: int | None = int(client.dbsize())
    except redis.ResponseError:  # refused (ACLs): scanned every time
        keys = None
    seen = _CLEAN.get(where)
    if keys is not None and seen is not None and time.monotonic() - seen[0] < CLEAN_FOR_S and seen[1] == keys:
        return False
    if any(client.scan_iter(match="write_registry:*:shallow", count=10_000)):
        return True
    if keys is not None:
        _CLEAN[where] = (time.monotonic(), keys)
    return False
