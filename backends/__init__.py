"""Store drivers behind one contract, opened by URL.

>>> from ckpt.backends import open_store
>>> with open_store("sqlite:///examples/agent.db") as store:   # doctest: +SKIP
...     for thread in store.threads():
...         print(thread.thread_id, thread.checkpoints)
"""

from __future__ import annotations

import importlib

from ckpt.backends.core.base import (
    Capability,
    CheckpointHeader,
    CheckpointKey,
    CheckpointRecord,
    Payload,
    PendingWrite,
    Selection,
    Store,
    ThreadSummary,
    WriteReport,
)
from ckpt.backends.core.errors import BackendUnavailableError, UnknownSchemeError
from ckpt.backends.core.urls import redact, scheme_of

__all__ = [
    "Capability",
    "CheckpointHeader",
    "CheckpointKey",
    "CheckpointRecord",
    "Payload",
    "PendingWrite",
    "Selection",
    "Store",
    "ThreadSummary",
    "WriteReport",
    "open_store",
    "store_class",
    "known_schemes",
]

# Lazy "module:Class" targets: no driver library is imported until a URL needs it,
# which keeps `ckpt --help` and shell completion fast.
_BUILTIN: dict[str, str] = {
    "sqlite": "ckpt.backends.sqlite.store:SqliteStore",
    "jsonl": "ckpt.backends.jsonl.store:JsonlStore",
    "postgresql": "ckpt.backends.postgres.store:PostgresStore",
    "postgres": "ckpt.backends.postgres.store:PostgresStore",
    "redis": "ckpt.backends.redis.store:RedisStore",
    "rediss": "ckpt.backends.redis.store:RedisStore",
    "mongodb": "ckpt.backends.mongodb.store:MongoStore",
    "mongodb+srv": "ckpt.backends.mongodb.store:MongoStore",
    "couchbase": "ckpt.backends.couchbase.store:CouchbaseStore",
    "couchbases": "ckpt.backends.couchbase.store:CouchbaseStore",
}

# scheme -> (python package the driver imports, extra that installs it)
_EXTRAS: dict[str, tuple[str, str]] = {
    "postgresql": ("psycopg", "postgres"),
    "postgres": ("psycopg", "postgres"),
    "redis": ("redis", "redis"),
    "rediss": ("redis", "redis"),
    "mongodb": ("pymongo", "mongodb"),
    "couchbase": ("couchbase", "couchbase"),
    "couchbases": ("couchbase", "couchbase"),
    "mongodb+srv": ("pymongo", "mongodb"),
}

_overrides: dict[str, type[Store]] = {}


def register(scheme: str, cls: type[Store]) -> None:
    """Register a driver class for a scheme (tests and third-party drivers)."""
    _overrides[scheme] = cls


def known_schemes() -> list[str]:
    return sorted({*_BUILTIN, *_overrides} - {"jsonl"})


def store_class(url: str) -> type[Store]:
    """The driver class for ``url``; raises ``UnknownSchemeError`` or ``BackendUnavailableError``."""
    scheme = scheme_of(url)
    base_scheme = scheme.split("+", 1)[0]
    if scheme in _overrides:
        return _overrides[scheme]
    target = _BUILTIN.get(scheme) or _BUILTIN.get(base_scheme)
    if target is None:
        shown = f"'{scheme}'" if scheme else f"for {redact(url)!r}"
        raise UnknownSchemeError(
            f"unknown URL scheme {shown}; expected one of: {', '.join(s + '://' for s in known_schemes())}"
            " or a .jsonl/.jsonl.gz file"
        )
    return _load(target, base_scheme)


def _load(target: str, scheme: str) -> type[Store]:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package, extra = _EXTRAS.get(scheme, (exc.name or "?", scheme))
        raise BackendUnavailableError(
            f"{scheme}:// needs the '{package}' package: pip install 'langgraph-ckpt[{extra}]'"
        ) from exc
    cls: type[Store] = getattr(module, class_name)
    return cls


def open_store(url: str, *, write: bool = False, create: bool = True) -> Store:
    """Open the store at ``url``. Read-only unless ``write=True``, which may create it; with
    ``create=False`` as well (destructive verbs) it must exist and its schema is left as it is."""
    cls = store_class(url)
    if write and not create:
        return cls.open_existing(url)
    return cls.open(url, write=write)
