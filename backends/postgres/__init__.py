"""The PostgreSQL driver: langgraph-checkpoint-postgres's layouts (spec section 4), and its server-side prune.

Light on purpose: the registry (:mod:`ckpt.backends`) reads these without importing the driver.
"""

from __future__ import annotations

SCHEMES = ("postgresql", "postgres")
"""The URL schemes this driver accepts (its store class's ``schemes``)."""
NEEDS: tuple[str, str] | None = ("psycopg", "postgres")
"""The package the driver imports and the extra that installs it (``None``: the standard library)."""
