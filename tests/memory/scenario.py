"""The memories every memory test writes with the official stores (issue #21), and how an official
store shows them: the oracle the ckpt copies are compared with."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone
from typing import Any

DIMS = 4
LARGE = "x" * 200_000

# (namespace, key, value, ttl in minutes or None)
ITEMS: list[tuple[tuple[str, ...], str, dict[str, Any], float | None]] = [
    (("users",), "u1", {"text": "likes tea", "n": 1}, None),
    (("users", "42"), "prefs", {"text": "dark mode", "tags": ["a", "b"], "ok": True}, None),
    (("users", "42", "prefs"), "deep", {"text": "nested three", "n": 3.5}, None),
    (("users", "42", "prefs"), "ttl", {"text": "expires", "n": 4}, 600.0),
    (("ünï", "名前"), "ключ 🔑", {"text": "unicode — ñ 名前", "emoji": "🔑"}, None),
    (("docs",), "big", {"text": "large value", "blob": LARGE}, None),
    (("docs",), "multi", {"text": "multi field", "sections": [{"body": "s1"}, {"body": "s2"}]}, None),
    (("a_b%c", "x-y"), "k:1", {"text": "punctuation ns", "d": {"z": None}}, None),
]


def fake_embed(texts: list[str]) -> list[list[float]]:
    """A deterministic 4-dim unit vector per text (no model: the tests carry vectors, never make them)."""
    out = []
    for text in texts:
        digest = hashlib.sha256(text.encode()).digest()
        vector = [(b - 128) / 128.0 for b in digest[:DIMS]]
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        out.append([x / norm for x in vector])
    return out


def write(store: Any, items: list[tuple[tuple[str, ...], str, dict[str, Any], float | None]] = ITEMS) -> None:
    """Put the items with the official store's own ``put``."""
    for namespace, key, value, ttl in items:
        if ttl is None:
            store.put(namespace, key, value)
        else:
            store.put(namespace, key, value, ttl=ttl)


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def view(store: Any, items: list[tuple[tuple[str, ...], str, dict[str, Any], float | None]] = ITEMS) -> dict[str, Any]:
    """What the official store returns for every scenario item (``get``), and its namespaces.
    Times are UTC to the millisecond (the precision every layout keeps, SQLite's to the second)."""
    got = {}
    for namespace, key, _value, _ttl in items:
        item = store.get(namespace, key, refresh_ttl=False) if _takes_refresh(store) else store.get(namespace, key)
        got[(namespace, key)] = None if item is None else (item.value, _ms(item.created_at), _ms(item.updated_at))
    return {"items": got, "namespaces": sorted(store.list_namespaces(limit=1000))}


def _takes_refresh(store: Any) -> bool:
    import inspect

    return "refresh_ttl" in inspect.signature(store.get).parameters


def _ms(at: datetime) -> str:
    return utc(at).isoformat(timespec="milliseconds")
