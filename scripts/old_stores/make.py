"""Make tests/fixtures/old/<kind>-<version>/: stores written by REAL old releases of the official savers.

Run from the project venv, with the servers of ``scripts/services.sh`` (their CKPT_TEST_*_URL set;
use a private instance: the Redis server is flushed):

    .venv/bin/python scripts/old_stores/make.py [NAME ...]     # default: every release below

For each release: a virtualenv under ~/.cache/ckpt-old-venvs/<name> (reused when present) gets the
pinned saver, pip picks the LangGraph of its era within the bound given; scenario.py runs there
against a fresh store; the store is dumped next to manifest.json (resolved versions) and
expected.json (the old saver's own view). See README.md beside this file.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "tests" / "fixtures" / "old"
VENVS = Path.home() / ".cache" / "ckpt-old-venvs"
SCENARIO = HERE / "scenario.py"
STANDIN = ROOT / "tests" / "backends" / "couchbase_standin.py"
PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"


@dataclass(frozen=True)
class Release:
    kind: str  # sqlite | postgres | redis | mongodb | couchbase
    package: str
    version: str
    # extra requirements: a langgraph bound keeps pip in the saver's era instead of backtracking
    # from today's langgraph (the savers do not depend on langgraph themselves)
    extra: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.version}"


_SQLITE = "langgraph-checkpoint-sqlite"
_PG = "langgraph-checkpoint-postgres"
_REDIS = "langgraph-checkpoint-redis"
_MONGO = "langgraph-checkpoint-mongodb"
_CB = "langgraph-checkpointer-couchbase"

# 2.0.0 savers (Oct 2024) would otherwise get langgraph-checkpoint 2.1.x from 2025
_ERA_2_0_0 = ("langgraph<0.2.40", "langgraph-checkpoint<2.0.3")

RELEASES = [
    Release("sqlite", _SQLITE, "1.0.4", ("langgraph<0.3",)),
    Release("sqlite", _SQLITE, "2.0.0", _ERA_2_0_0),
    Release("sqlite", _SQLITE, "2.0.11", ("langgraph<0.7",)),
    Release("postgres", _PG, "1.0.9", ("langgraph<0.3", "psycopg[binary]")),
    Release("postgres", _PG, "2.0.0", (*_ERA_2_0_0, "psycopg[binary]")),
    Release("postgres", _PG, "2.0.21", ("langgraph<0.5", "langgraph-checkpoint<2.1", "psycopg[binary]")),
    Release("postgres", _PG, "2.0.22", ("langgraph<0.7", "psycopg[binary]")),
    Release("redis", _REDIS, "0.0.8", ("langgraph<0.5", "langgraph-checkpoint<2.1")),
    Release("redis", _REDIS, "0.1.3", ("langgraph<0.7",)),
    Release("redis", _REDIS, "0.2.1", ("langgraph<1.1",)),
    Release("redis", _REDIS, "0.3.9", ("langgraph<1.2",)),
    Release("mongodb", _MONGO, "0.1.4", ("langgraph<0.4", "langgraph-checkpoint<2.1")),
    Release("mongodb", _MONGO, "0.2.0", ("langgraph<1.1",)),
    Release("mongodb", _MONGO, "0.2.2", ("langgraph<1.1",)),
    Release("couchbase", _CB, "1.0.9", ("langgraph<1.1",)),  # 1.0.9 needs langgraph>=1.0.5
]

VERSIONED = [
    "langgraph",
    "langgraph-checkpoint",
    "langchain-core",
    "redis",
    "redisvl",
    "pymongo",
    "psycopg",
    "couchbase",
]


def log(message: str) -> None:
    print(f"[old-stores] {message}", file=sys.stderr, flush=True)


def env_url(var: str) -> str:
    url = os.environ.get(var)
    if not url:
        raise SystemExit(f'{var} is not set: eval "$(bash scripts/services.sh env)" first')
    return url


# ---- virtualenvs -----------------------------------------------------------------------------
def venv_for(release: Release) -> Path:
    """The release's venv, created and installed once (pip's own resolver picks the rest)."""
    venv = VENVS / release.name
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    requirements = [f"{release.package}=={release.version}", *release.extra]
    if marker.exists() and marker.read_text().split() == requirements:
        return python
    log(f"{release.name}: creating {venv}")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        check=True,
    )
    marker.write_text(" ".join(requirements) + "\n")
    return python


def installed_versions(python: Path, release: Release) -> dict[str, str]:
    names = [release.package, *VERSIONED]
    code = (
        "import json, sys, importlib.metadata as m\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(python), "-c", code, *names], check=True, capture_output=True, text=True)
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


def python_version(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def run_scenario(python: Path, kind: str, target: str, directory: Path) -> None:
    args = [str(python), str(SCENARIO), kind, target, "--expected", str(directory / "expected.json")]
    if kind == "couchbase":
        args += ["--couchbase-standin", str(STANDIN), "--couchbase-dump", str(directory / "store.json")]
    env = {**os.environ, "DO_NOT_TRACK": "1", "PYTHONHASHSEED": "0"}
    subprocess.run(args, check=True, env=env, timeout=600)


# ---- per-kind: fresh store, then dump -----------------------------------------------------------
def make_sqlite(python: Path, release: Release, directory: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.sqlite"
        run_scenario(python, "sqlite", str(path), directory)
        # fold the WAL in and leave a single self-contained file
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("VACUUM")
        conn.close()
        shutil.copyfile(path, directory / "store.sqlite")


def _pg_database_url(base: str, database: str) -> str:
    head, _, query = base.partition("?")
    head = head.rsplit("/", 1)[0] if head.count("/") > 2 else head
    return f"{head}/{database}" + (f"?{query}" if query else "")


def _plain_sql(dump: str) -> str:
    """Drop psql meta-commands: pg_dump >= 15.14 brackets its output in \\restrict <random key>
    lines, which change on every dump and which a plain SQL client (psycopg) cannot run."""
    return "".join(line for line in dump.splitlines(keepends=True) if not line.startswith("\\"))


def make_postgres(python: Path, release: Release, directory: Path) -> None:
    import psycopg

    base = env_url("CKPT_TEST_POSTGRES_URL")
    database = "old_" + release.name.replace("-", "_").replace(".", "_")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    url = _pg_database_url(base, database)
    try:
        run_scenario(python, "postgres", url, directory)
        dump = subprocess.run(
            [PG_DUMP, "--inserts", "--no-owner", "--no-privileges", "--dbname", url],
            check=True,
            capture_output=True,
            text=True,
        )
        (directory / "store.sql").write_text(_plain_sql(dump.stdout))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')


def _pairs(reply: Any) -> dict[str, Any]:
    """FT.INFO answers flat [key, value, key, value, ...] lists; RESP3 may already give dicts."""
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _attribute(attribute: Any) -> tuple[dict[str, Any], set[str]]:
    """One FT.INFO attribute as (fields, flags): redis-py 8 parses it into a dict with a
    ``flags`` list; older clients return the flat [identifier, X, attribute, Y, ..., SORTABLE] list."""
    if isinstance(attribute, dict):
        fields = {_text(k): _text(v) for k, v in attribute.items() if _text(k) != "flags"}
        flags = attribute.get(b"flags", attribute.get("flags")) or []
        return fields, {_text(f) for f in flags}
    attr = [_text(a) for a in attribute]
    return {attr[i]: attr[i + 1] for i in range(0, len(attr) - 1, 2)}, set(attr)


def ft_create_args(client: Any, index: str) -> list[str]:
    """The FT.CREATE argument list that recreates ``index`` (from FT.INFO)."""
    info = _pairs(client.execute_command("FT.INFO", index))
    definition = _pairs(info["index_definition"])
    args = [index, "ON", _text(definition["key_type"])]
    prefixes = [_text(p) for p in definition.get("prefixes", [])]
    if prefixes:
        args += ["PREFIX", str(len(prefixes)), *prefixes]
    args.append("SCHEMA")
    for attribute in info["attributes"]:
        fields, flags = _attribute(attribute)
        args += [fields["identifier"], "AS", fields["attribute"], fields["type"]]
        if fields["type"] == "TAG":
            if "SEPARATOR" in fields:
                args += ["SEPARATOR", fields["SEPARATOR"]]
            if "CASESENSITIVE" in flags:
                args.append("CASESENSITIVE")
        if "SORTABLE" in flags:
            args.append("SORTABLE")
    return args


def _encoded(raw: bytes) -> dict[str, str]:
    try:
        return {"text": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}


def dump_redis(client: Any) -> dict[str, Any]:
    indexes = [ft_create_args(client, _text(i)) for i in sorted(client.execute_command("FT._LIST"))]
    keys = []
    for key in sorted(client.scan_iter(count=1000)):
        kind = _text(client.type(key))
        if kind == "ReJSON-RL":
            value: Any = _text(client.execute_command("JSON.GET", key))
        elif kind == "zset":
            value = [[_text(m), s] for m, s in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "string":
            value = _encoded(client.get(key))
        elif kind == "hash":
            value = {_text(k): _encoded(v) for k, v in sorted(client.hgetall(key).items())}
        else:
            raise SystemExit(f"unexpected redis type {kind} for {key!r}")
        keys.append({"key": _text(key), "type": kind, "value": value, "pttl": client.pttl(key)})
    return {"indexes": indexes, "keys": keys}


def make_redis(python: Path, release: Release, directory: Path) -> None:
    import redis

    url = env_url("CKPT_TEST_REDIS_URL")
    client: Any = redis.Redis.from_url(url)
    client.flushall()  # FLUSHALL does not drop RediSearch indexes on every server: drop them too
    for index in client.execute_command("FT._LIST"):
        client.execute_command("FT.DROPINDEX", index)
    try:
        run_scenario(python, "redis", url, directory)
        _write_json(directory / "store.json", dump_redis(client))
    finally:
        client.flushall()
        for index in client.execute_command("FT._LIST"):
            client.execute_command("FT.DROPINDEX", index)
        client.close()


def dump_mongo(database: Any) -> dict[str, Any]:
    from bson import json_util

    options = json_util.CANONICAL_JSON_OPTIONS
    collections: dict[str, Any] = {}
    for name in sorted(database.list_collection_names()):
        collection = database[name]
        documents = list(collection.find().sort("_id", 1))
        indexes = [dict(i) for i in collection.list_indexes()]
        collections[name] = {
            "documents": json.loads(json_util.dumps(documents, json_options=options)),
            "indexes": json.loads(json_util.dumps(indexes, json_options=options)),
        }
    return {"collections": collections}


def make_mongodb(python: Path, release: Release, directory: Path) -> None:
    import pymongo

    url = env_url("CKPT_TEST_MONGODB_URL")
    name = "old_" + release.name.replace("-", "_").replace(".", "_")
    client: Any = pymongo.MongoClient(url)
    client.drop_database(name)
    try:
        run_scenario(python, "mongodb", f"{url}#{name}", directory)
        # field order is data in BSON (documents, index keys): keep it as stored
        _write_json(directory / "store.json", dump_mongo(client[name]), sort_keys=False)
    finally:
        client.drop_database(name)
        client.close()


def make_couchbase(python: Path, release: Release, directory: Path) -> None:
    run_scenario(python, "couchbase", "-", directory)  # the stand-in's documents land in store.json


MAKERS = {
    "sqlite": make_sqlite,
    "postgres": make_postgres,
    "redis": make_redis,
    "mongodb": make_mongodb,
    "couchbase": make_couchbase,
}


def _write_json(path: Path, data: Any, sort_keys: bool = True) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False, sort_keys=sort_keys)
    path.write_text(text + "\n", encoding="utf-8")


def make(release: Release) -> None:
    python = venv_for(release)
    directory = OUT / release.name
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    MAKERS[release.kind](python, release, directory)
    versions = installed_versions(python, release)
    manifest = {
        "kind": release.kind,
        "saver": {"package": release.package, "version": versions.get(release.package)},
        "langgraph": versions.get("langgraph"),
        "langgraph-checkpoint": versions.get("langgraph-checkpoint"),
        "python": python_version(python),
        "installed": versions,
        "pip_requirements": [f"{release.package}=={release.version}", *release.extra],
    }
    _write_json(directory / "manifest.json", manifest)
    log(f"{release.name}: done ({', '.join(f'{k} {v}' for k, v in versions.items())})")


def main(argv: list[str]) -> int:
    wanted = set(argv)
    failed = []
    for release in RELEASES:
        if wanted and release.name not in wanted and release.kind not in wanted:
            continue
        try:
            make(release)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            log(f"{release.name}: FAILED: {exc}")
            failed.append(release.name)
    if failed:
        log(f"failed: {' '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
