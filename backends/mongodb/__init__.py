"""The MongoDB driver: langgraph-checkpoint-mongodb's documents (spec section 6).

Light on purpose: the registry (:mod:`ckpt.backends`) reads these without importing the driver.
"""

from __future__ import annotations

SCHEMES = ("mongodb", "mongodb+srv")
"""The URL schemes this driver accepts (its store class's ``schemes``)."""
NEEDS: tuple[str, str] | None = ("pymongo", "mongodb")
"""The package the driver imports and the extra that installs it (``None``: the standard library)."""
