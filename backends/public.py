"""``import ckpt``: the public library API. Installed as ``ckpt/__init__.py`` (see pyproject.toml).

Names resolve on first use, so ``import ckpt`` (and so every ``ckpt`` command, whose package this
is) imports no driver, no store library and no operation until it is asked for one.

>>> import ckpt
>>> with ckpt.open("sqlite:///examples/agent.db") as store:  # doctest: +SKIP
...     print(ckpt.size(store).as_json()["bytes"])
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

_WHERE = {
    "open": "ckpt.backends.ops.api",
    "show": "ckpt.backends.ops.api",
    "size": "ckpt.backends.ops.api",
    "check": "ckpt.backends.ops.api",
    "migrate": "ckpt.backends.ops.api",
    "verify_stores": "ckpt.backends.ops.api",
    "plan_migration": "ckpt.backends.ops.api",
    "export": "ckpt.backends.ops.api",
    "import_": "ckpt.backends.ops.api",
    "MigrateReport": "ckpt.backends.ops.api",
    "prune": "ckpt.backends.ops.prune",
    "compact": "ckpt.backends.ops.prune",
    "CompactReport": "ckpt.backends.ops.prune",
    "upgrade": "ckpt.backends.ops.upgrade",
    "UpgradeReport": "ckpt.backends.ops.upgrade",
    "Aborted": "ckpt.backends.ops.prune",
    "Policy": "ckpt.backends.core.policy",
    "PruneReport": "ckpt.backends.core.policy",
    "ThreadPlan": "ckpt.backends.core.policy",
    "Selection": "ckpt.backends.core.base",
    "Store": "ckpt.backends.core.base",
    "CheckpointKey": "ckpt.backends.core.base",
    "CheckpointRecord": "ckpt.backends.core.base",
    "CkptError": "ckpt.backends.core.errors",
    "ExitCode": "ckpt.backends.core.errors",
    "IntegrityError": "ckpt.backends.core.errors",
    "LockedError": "ckpt.backends.core.errors",
    "CheckReport": "ckpt.backends.ops.budgets",
    "copy_thread": "ckpt.backends.ops.threads",
    "fork": "ckpt.backends.ops.threads",
    "plan_delete": "ckpt.backends.ops.threads",
    "delete": "ckpt.backends.ops.threads",
    "ThreadCopyReport": "ckpt.backends.ops.threads",
    "DeletePlan": "ckpt.backends.ops.threads",
    "DeleteReport": "ckpt.backends.ops.threads",
    "open_memory": "ckpt.backends",
    "MemoryStore": "ckpt.backends.core.memory",
    "MemoryItem": "ckpt.backends.core.memory",
    "MemorySelection": "ckpt.backends.core.memory",
    "memory_namespaces": "ckpt.backends.ops.memory",
    "migrate_memory": "ckpt.backends.ops.memory",
    "verify_memory": "ckpt.backends.ops.memory",
    "prune_memory": "ckpt.backends.ops.memory",
    "MemoryPolicy": "ckpt.backends.ops.memory",
    "MemoryCopyReport": "ckpt.backends.ops.memory",
    "MemoryPruneReport": "ckpt.backends.ops.memory",
    "SizeReport": "ckpt.backends.ops.sizes",
    "CopyReport": "ckpt.backends.ops.transfer",
    "VerifyReport": "ckpt.backends.ops.verify",
    "Shard": "ckpt.backends.core.shards",
    "parse_shard": "ckpt.backends.core.shards",
    "shard_of": "ckpt.backends.core.shards",
    "write_report": "ckpt.backends.ops.reports",
    "merge_reports": "ckpt.backends.ops.reports",
    "MergedReport": "ckpt.backends.ops.reports",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ckpt' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return __all__
