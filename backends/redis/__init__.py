"""The Redis driver: langgraph-checkpoint-redis's JSON documents, indexes and keys (spec section 5).

Light on purpose: the registry (:mod:`ckpt.backends`) reads these without importing the driver.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

SCHEMES = ("redis", "rediss")
"""The URL schemes this driver accepts (its store class's ``schemes``)."""
NEEDS: tuple[str, str] | None = ("redis", "redis")
"""The package the driver imports and the extra that installs it (``None``: the standard library)."""
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
"""A Redis Cluster's URL schemes (``cluster_store.RedisClusterStore``); redisvl's ``redis://…?cluster=true`` too."""


def is_cluster_url(url: str) -> bool:
    """``redis+cluster://`` / ``rediss+cluster://``, or redisvl's own ``redis://…?cluster=true``."""
    scheme = url.partition("://")[0].lower()
    if scheme in CLUSTER_SCHEMES:
        return True
    if scheme not in SCHEMES:
        return False
    return parse_qs(urlsplit(url).query).get("cluster", ["false"])[-1].lower() in ("true", "1", "yes")


def variant(url: str) -> tuple[str, str] | None:
    """``(module, class)`` of the store class for ``url`` when it is not ``store.RedisStore``."""
    return ("cluster_store", "RedisClusterStore") if is_cluster_url(url) else None
