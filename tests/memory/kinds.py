"""Memory store kinds the memory tests run on. Each kind gives an empty place (a ckpt URL) and the
official store over the same place; server kinds use the servers of ``scripts/services.sh``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MemoryKind:
    name: str
    place: Callable[[Path], AbstractContextManager[str]]
    """An empty place for a store: yields its ckpt URL (cleaned up afterwards)."""
    official: Callable[[str], AbstractContextManager[Any]]
    """The official store over the place at this URL, set up (``setup()``)."""
    faults: dict[str, str] = field(default_factory=dict)
    """Where the official store itself is wrong, by check name: why (the tests say so, not fix it)."""


def kinds() -> dict[str, MemoryKind]:
    """Every ``tests/memory/kind_*.py`` module's ``KIND``."""
    found = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("kind_"):
            kind: MemoryKind = importlib.import_module(f"tests.memory.{module.name}").KIND
            found[kind.name] = kind
    return found
