"""The Couchbase driver: langgraph-checkpointer-couchbase's documents (spec section 7).

Light on purpose: the registry (:mod:`ckpt.backends`) reads these without importing the driver.
"""

from __future__ import annotations

SCHEMES = ("couchbase", "couchbases")
"""The URL schemes this driver accepts (its store class's ``schemes``)."""
NEEDS: tuple[str, str] | None = ("couchbase", "couchbase")
"""The package the driver imports and the extra that installs it (``None``: the standard library)."""
