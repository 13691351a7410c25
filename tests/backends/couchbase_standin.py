"""A recording stand-in for the Couchbase SDK objects CouchbaseSaver touches.

No Couchbase Server can be run on this machine. This is NOT a Couchbase: it stores documents in
dicts and answers only the few N1QL shapes CouchbaseSaver sends (equality filters on thread_id,
checkpoint_ns, checkpoint_id; ORDER BY checkpoint_id DESC; LIMIT). It exists so the official
saver can run a real graph and leave the exact documents it writes, which ckpt's layout is
checked against; it proves nothing about ckpt's own query paths (those run only against a live
cluster, with CKPT_TEST_COUCHBASE_URL).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from couchbase.exceptions import CollectionAlreadyExistsException, DocumentExistsException


class Collection:
    def __init__(self, name: str) -> None:
        self.name = name
        self.docs: dict[str, dict[str, Any]] = {}

    def upsert(self, key: str, doc: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        self.docs[key] = copy.deepcopy(doc)

    def insert_multi(self, docs: dict[str, dict[str, Any]], **kwargs: Any) -> Any:
        class Result:
            exceptions: dict[str, Exception] = {}

        result = Result()
        result.exceptions = {}
        for key, doc in docs.items():
            if key in self.docs:
                result.exceptions[key] = DocumentExistsException()
            else:
                self.docs[key] = copy.deepcopy(doc)
        return result


class CollectionManager:
    def __init__(self) -> None:
        self.created: set[tuple[str, str]] = set()

    def create_collection(self, scope: str, name: str) -> None:
        if (scope, name) in self.created:
            raise CollectionAlreadyExistsException()
        self.created.add((scope, name))


class Scope:
    def __init__(self, bucket: Bucket, name: str) -> None:
        self.bucket = bucket
        self.name = name

    def collection(self, name: str) -> Collection:
        return self.bucket.cluster.collection(name)


class Bucket:
    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.manager = CollectionManager()

    def scope(self, name: str) -> Scope:
        return Scope(self, name)

    def collections(self) -> CollectionManager:
        return self.manager


_FROM = re.compile(r"FROM `[^`]+`\.`[^`]+`\.`([^`]+)`")
_EQUALS = re.compile(r"(\w+) = \$(\d+)")
_LIMIT = re.compile(r"LIMIT (\d+)")


class Cluster:
    def __init__(self) -> None:
        self.collections: dict[str, Collection] = {}
        self.buckets: dict[str, Bucket] = {}

    def collection(self, name: str) -> Collection:
        return self.collections.setdefault(name, Collection(name))

    def bucket(self, name: str) -> Bucket:
        return self.buckets.setdefault(name, Bucket(self, name))

    def query(self, statement: str, options: Any = None) -> list[dict[str, Any]]:
        match = _FROM.search(statement)
        assert match, f"stand-in cannot answer: {statement}"
        name = match.group(1)
        params = list((options or {}).get("positional_parameters") or [])
        docs = list(self.collection(name).docs.values())
        for field, position in _EQUALS.findall(statement):
            docs = [d for d in docs if d.get(field) == params[int(position) - 1]]
        if "ORDER BY checkpoint_id DESC" in statement:
            docs.sort(key=lambda d: d["checkpoint_id"], reverse=True)
        if limit := _LIMIT.search(statement):
            docs = docs[: int(limit.group(1))]
        return [{name: copy.deepcopy(d)} for d in docs]

    def close(self) -> None:
        pass
