"""Store drivers behind one contract, opened by URL.

>>> from ckpt.backends import open_store
>>> with open_store("sqlite:///examples/agent.db") as store:   # doctest: +SKIP
...     for thread in store.threads():
...         print(thread.thread_id, thread.checkpoints)
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from ckpt.backends.core.memory import MemoryStore

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
    "open_memory",
    "memory_class",
    "open_store",
    "store_class",
    "known_schemes",
]

# The driver packages and their store classes. Each package's ``__init__`` is light: it declares
# the URL schemes its driver accepts (``SCHEMES``, which its store class's ``schemes`` is) and what
# the driver needs installed (``NEEDS``). No driver module or library is imported until a URL
# needs it, which keeps `ckpt --help` and shell completion fast.
_DRIVERS: dict[str, str] = {
    "sqlite": "SqliteStore",
    "postgres": "PostgresStore",
    "redis": "RedisStore",
    "mongodb": "MongoStore",
    "couchbase": "CouchbaseStore",
}

_overrides: dict[str, type[Store]] = {}


def register(scheme: str, cls: type[Store]) -> None:
    """Register a driver class for a scheme (tests and third-party drivers)."""
    _overrides[scheme] = cls


@cache
def _packages() -> dict[str, str]:
    """Driver package by URL scheme."""
    return {
        scheme: package
        for package in _DRIVERS
        for module in [importlib.import_module(f"{__name__}.{package}")]
        for scheme in (*module.SCHEMES, *getattr(module, "CLUSTER_SCHEMES", ()))
    }


def known_schemes() -> list[str]:
    return sorted({*_packages(), *_overrides})


def store_class(url: str) -> type[Store]:
    """The driver class for ``url``; raises ``UnknownSchemeError`` or ``BackendUnavailableError``."""
    scheme = scheme_of(url)
    base_scheme = scheme.split("+", 1)[0]
    if scheme in _overrides:
        return _overrides[scheme]
    if scheme == "jsonl":  # an export file, known by its suffix (scheme_of), not by a URL scheme
        return _load("jsonl", "JsonlStore", scheme)
    package = _packages().get(scheme) or _packages().get(base_scheme)
    if package is None:
        shown = f"'{scheme}'" if scheme else f"for {redact(url)!r}"
        raise UnknownSchemeError(
            f"unknown URL scheme {shown}; expected one of: {', '.join(s + '://' for s in known_schemes())}"
            " or a .jsonl/.jsonl.gz file"
        )
    variant = getattr(importlib.import_module(f"{__name__}.{package}"), "variant", None)  # Redis Cluster
    module, class_name = (variant(url) if variant else None) or ("store", _DRIVERS[package])
    return _load(package, class_name, base_scheme, module)


def _load(package: str, class_name: str, scheme: str, module_name: str = "store") -> type[Store]:
    try:
        module = importlib.import_module(f"{__name__}.{package}.{module_name}")
    except ImportError as exc:
        needs = getattr(importlib.import_module(f"{__name__}.{package}"), "NEEDS", None)
        library, extra = needs or (exc.name or "?", scheme)
        raise BackendUnavailableError(
            f"{scheme}:// needs the '{library}' package: pip install 'langgraph-ckpt[{extra}]'"
        ) from exc
    cls: type[Store] = getattr(module, class_name)
    return cls


def open_store(url: str, *, write: bool = False, create: bool = True, reopen: bool = False) -> Store:
    """Open the store at ``url``. Read-only unless ``write=True``, which may create it; with
    ``create=False`` as well (destructive verbs) it must exist and its schema is left as it is.
    ``reopen``: the parent process has just opened and checked it (``Store.reopen``)."""
    cls = store_class(url)
    if write and not create:
        return cls.open_existing(url)
    if reopen:
        return cls.reopen(url, write=write)
    return cls.open(url, write=write)


# Memory (``BaseStore``) layouts, by driver package: ``<package>.memory.<class>`` (issue #21).
_MEMORY_DRIVERS: dict[str, str] = {
    "sqlite": "SqliteMemory",
    "postgres": "PostgresMemory",
    "redis": "RedisMemory",
    "mongodb": "MongoMemory",
}


def memory_class(url: str) -> type[MemoryStore]:
    """The memory driver class for ``url`` (a store URL or a memory ``.jsonl[.gz]`` file)."""
    from ckpt.backends.core.errors import UsageError

    scheme = scheme_of(url)
    if scheme == "jsonl":
        package, class_name = "jsonl", "JsonlMemory"
    else:
        store_class(url)  # an unknown scheme or a missing driver library: the same errors as for checkpoints
        package = _packages().get(scheme) or _packages().get(scheme.split("+", 1)[0]) or ""
        if package not in _MEMORY_DRIVERS:
            raise UsageError(f"{scheme}:// stores have no long-term memory layout ckpt knows (BaseStore)")
        class_name = _MEMORY_DRIVERS[package]
    cls: type[MemoryStore] = getattr(importlib.import_module(f"{__name__}.{package}.memory"), class_name)
    return cls


def open_memory(url: str, *, write: bool = False) -> MemoryStore:
    """Open the memory store at ``url``: read-only unless ``write`` (which sets it up as the
    official store's ``setup()`` does)."""
    return memory_class(url).open(url, write=write)
