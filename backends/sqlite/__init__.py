"""The SQLite driver: langgraph-checkpoint-sqlite's layouts (spec section 3).

Light on purpose: the registry (:mod:`ckpt.backends`) reads these without importing the driver.
"""

from __future__ import annotations

SCHEMES = ("sqlite",)
"""The URL schemes this driver accepts (its store class's ``schemes``)."""
NEEDS: tuple[str, str] | None = None
"""The package the driver imports and the extra that installs it (``None``: the standard library)."""
