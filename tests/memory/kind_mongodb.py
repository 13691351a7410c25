"""MongoDB: the official ``MongoDBStore`` (langgraph-store-mongodb 0.4.0) on a fresh database.

The collection is named by ckpt's ``?memory_collection=`` option: the nx-27017 stand-in refuses the
store's default name ``persistent-store`` (identifiers there are letters, digits and ``_``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tests.memory.kinds import MemoryKind
from tests.servers import mongo_database

COLLECTION = "ckpt_memory"


@contextmanager
def place(tmp_path: Path) -> Iterator[str]:
    with mongo_database() as url:
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}memory_collection={COLLECTION}"


@contextmanager
def official(url: str) -> Iterator[Any]:
    """``from_conn_string`` as an app calls it, with the place's database and collection (ckpt's
    query option taken out: pymongo warns about options it does not know)."""
    from langgraph.store.mongodb import MongoDBStore

    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    options = dict(query)
    plain = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "memory_collection"])))
    database = parts.path.strip("/")
    with MongoDBStore.from_conn_string(plain, db_name=database, collection_name=options["memory_collection"]) as store:
        yield store


KIND = MemoryKind(
    "mongodb",
    place,
    official,
    faults={
        "ttl": "MongoDBStore ignores put(ttl=…): its only expiry is a collection-wide TTL index on updated_at",
        "expired": "MongoDBStore ignores put(ttl=…), so no item it wrote is ever expired by its own TTL",
    },
)
