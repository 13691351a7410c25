"""RedisSaver's key conventions and search indexes (spec §5.2, §5.4)."""

from __future__ import annotations

import re
from typing import Any

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
