"""The Redis driver: langgraph-checkpoint-redis's JSON documents, indexes and keys (spec section 5).

Light on purpose: the registry (:mod:`ckpt.backends`) reads these without importing the driver.
"""

from __future__ import annotations

SCHEMES = ("redis", "rediss")
"""The URL schemes this driver accepts (its store class's ``schemes``)."""
NEEDS: tuple[str, str] | None = ("redis", "redis")
"""The package the driver imports and the extra that installs it (``None``: the standard library)."""
