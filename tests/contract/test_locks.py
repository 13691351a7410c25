"""Store locks (issue #18): exclusive, taken without waiting, released by their holder only, never
left behind: a killed holder's lock lapses after ``CKPT_LOCK_TTL``, and SQLite leaves no lock file."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends import open_store, store_class
from ckpt.backends.core import locks
from ckpt.backends.core.base import Capability, Store
from ckpt.backends.core.errors import ExitCode, LockedError, UsageError
from tests.cli.test_prune import _old_bulk
from tests.conftest import Cli, sqlite_url
from tests.contract.conftest import StoreFactory
from tests.servers import mongo_database, postgres_schema, redis_prefix

REPO = Path(__file__).resolve().parents[2]
_CKPT = Path(sys.executable).with_name("ckpt")
CKPT = [str(_CKPT)] if _CKPT.exists() else [sys.executable, "-m", "ckpt.cli"]


@contextmanager
def _store_url(kind: str, tmp_path: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if kind == "sqlite":
            yield sqlite_url(tmp_path / "locked.db")
        elif kind == "redis":
            yield stack.enter_context(redis_prefix())
        elif kind == "mongodb":
            yield stack.enter_context(mongo_database())
        else:
            yield stack.enter_context(postgres_schema())[0]


def _count(url: str) -> int:
    with open_store(url) as store:
        return sum(1 for _ in store.records())


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "CKPT_LOCK_TTL": "2", **extra}


# -- every store of the contract suite -----------------------------------------------------


def test_a_second_holder_is_refused_until_the_first_releases(new_store_url: StoreFactory) -> None:
    url = new_store_url()
    if Capability.DELETE not in store_class(url).capabilities:
        with open_store(url, write=True) as store, pytest.raises(UsageError):
            store.lock("prune")  # no destructive commands, so no lock
        return
    with open_store(url, write=True) as first, open_store(url, write=True) as second:
        with first.lock("prune"):
            with pytest.raises(LockedError), second.lock("prune"):
                pass
            with second.lock("compact"):  # another name is another lock
                pass
        with second.lock("prune"), pytest.raises(LockedError), first.lock("prune"):
            pass
        with first.lock("prune"):
            pass


# -- two prunes --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "mongodb"])
def test_a_prune_while_the_lock_is_held_exits_6_and_changes_nothing(
    official_db: Path, tmp_path: Path, kind: str
) -> None:
    with _store_url(kind, tmp_path) as url:
        total = _old_bulk(official_db, url, 3)
        command = [*CKPT, "prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes"]
        with open_store(url, write=True) as holder, holder.lock("prune"):
            refused = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)
        assert refused.returncode == ExitCode.LOCKED, refused.stderr
        assert "another ckpt prune is running" in refused.stderr
        assert _count(url) == total
        done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)
        assert done.returncode == 0, done.stderr
        assert _count(url) == 3


@pytest.mark.parametrize(("kind", "threads"), [("redis", 150), ("mongodb", 40)])  # a prune of 1-2 s
def test_two_prunes_started_together_one_deletes_the_other_exits_6(
    official_db: Path, tmp_path: Path, kind: str, threads: int
) -> None:
    with _store_url(kind, tmp_path) as url:
        _old_bulk(official_db, url, threads)
        command = [*CKPT, "prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes", "--batch-size", "5"]
        command += ["--report", "json"]
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
        outputs = [run.communicate(timeout=300) for run in runs]
        results = [(run.returncode, out, err) for run, (out, err) in zip(runs, outputs)]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, ExitCode.LOCKED], results
        winner = next(out for code, out, _ in results if code == 0)
        loser = next(err for code, _, err in results if code == ExitCode.LOCKED)
        assert json.loads(winner)["checkpoints_deleted"] > 0
        assert "another ckpt prune is running" in loser
        assert _count(url) == threads  # one kept per thread: everything else deleted exactly once


# -- a holder killed with SIGKILL --------------------------------------------------------------

_HOLDER = """
import sys, time
from ckpt.backends import open_store
store = open_store(sys.argv[1], write=True)
with store.lock("prune"):
    print("locked", flush=True)
    time.sleep(300)
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis", "mongodb"])
def test_a_holder_killed_with_sigkill_blocks_the_next_run_no_longer_than_the_ttl(
    official_db: Path, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_LOCK_TTL", "2")
    with _store_url(kind, tmp_path) as url:
        _old_bulk(official_db, url, 3)
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            time.sleep(1)  # the holder's renewals run (every TTL/3)
            with open_store(url, write=True) as store, pytest.raises(LockedError), store.lock("prune"):
                pass
        finally:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
        killed = time.monotonic()
        with open_store(url, write=True) as store:
            while True:
                try:
                    with store.lock("prune"):
                        break
                except LockedError:
                    assert time.monotonic() - killed < 2 + 1.5, "the dead holder's lock outlived the TTL"
                    time.sleep(0.1)
        rerun = subprocess.run(
            [*CKPT, "prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
        assert rerun.returncode == 0, rerun.stderr
        assert _count(url) == 3
        if kind == "sqlite":
            assert _lock_files(tmp_path) == []  # the killed holder's file went with the next run


# -- release and renewal by token (Redis, MongoDB, Couchbase) --------------------------------------


def _redis_key(store: Store, name: str) -> tuple[Any, str]:
    client = store._r  # type: ignore[attr-defined]
    return client, f"ckpt_lock:{store.prefix}:{name}"  # type: ignore[attr-defined]


def test_redis_lock_is_released_by_token_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKPT_LOCK_TTL", "60")
    with _store_url("redis", tmp_path) as url, open_store(url, write=True) as store:
        client, key = _redis_key(store, "prune")
        with pytest.raises(LockedError, match="was lost while held"), store.lock("prune"):
            token = client.get(key)
            assert token is not None and 59_000 < client.pttl(key) <= 60_000
            # The lock lapsed and another run took it: the old holder must not delete it.
            client.set(key, b"someone-else", px=60_000)
        assert client.get(key) == b"someone-else"
        client.delete(key)
        with store.lock("prune"):
            assert client.get(key) not in (None, token)
        assert client.get(key) is None


def test_redis_lock_is_renewed_while_held_and_lapses_without_its_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_LOCK_TTL", "0.6")
    with _store_url("redis", tmp_path) as url, open_store(url, write=True) as store:
        client, key = _redis_key(store, "prune")
        with store.lock("prune"):
            token = client.get(key)
            time.sleep(2)  # more than three TTLs
            assert client.get(key) == token and 0 < client.pttl(key) <= 600
            locks.check_held()  # still ours
        assert client.get(key) is None
        client.set(key, b"dead-holder", px=600)  # a holder that stopped renewing
        with open_store(url, write=True) as other:
            with pytest.raises(LockedError, match="dead-holder|unknown holder"), other.lock("prune"):
                pass
            time.sleep(0.8)
            with other.lock("prune"):
                pass


def _mongo_locks(store: Store) -> Any:
    return store._checkpoints.database["ckpt_locks"]  # type: ignore[attr-defined]


def test_mongodb_lock_is_taken_over_when_expired_and_released_by_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_LOCK_TTL", "0.6")
    with _store_url("mongodb", tmp_path) as url, open_store(url, write=True) as store:
        collection = _mongo_locks(store)
        with store.lock("prune"):
            held = collection.find_one({"_id": "checkpoints:prune"})
            assert set(held) == {"_id", "token", "expires_at"}
            time.sleep(2)  # renewed meanwhile
            renewed = collection.find_one({"_id": "checkpoints:prune"})
            assert renewed["token"] == held["token"] and renewed["expires_at"] > held["expires_at"]
            assert renewed["expires_at"] > time.time() * 1000
        assert collection.find_one({"_id": "checkpoints:prune"}) is None
        # A dead holder's document (expired) is taken over; one of an older ckpt (no expiry) too.
        for dead in ({"token": "dead", "expires_at": int(time.time() * 1000) - 1}, {"since": "long ago"}):
            collection.insert_one({"_id": "checkpoints:prune", **dead})
            with store.lock("prune"):
                assert collection.find_one({"_id": "checkpoints:prune"})["token"] != "dead"
            assert collection.find_one({"_id": "checkpoints:prune"}) is None
        # A live one is not; and a holder whose document was taken over deletes nothing.
        collection.insert_one({"_id": "checkpoints:prune", "token": "live", "expires_at": 2**52})
        with pytest.raises(LockedError), store.lock("prune"):
            pass
        collection.delete_one({"_id": "checkpoints:prune"})
        monkeypatch.setenv("CKPT_LOCK_TTL", "60")
        with pytest.raises(LockedError, match="was lost while held"), store.lock("prune"):
            collection.replace_one({"_id": "checkpoints:prune"}, {"token": "taker", "expires_at": 2**52})
            time.sleep(0.1)
            # no renewal within 60/3 s: the loss shows only when the block ends
        assert collection.find_one({"_id": "checkpoints:prune"})["token"] == "taker"


# -- Couchbase, through the recording stand-in (no Couchbase Server runs here) ----------------


def _couchbase_standin() -> Any:
    """The test suite's stand-in with the key-value calls a lock makes: insert, get, replace and
    remove with CAS and expiry (an expired document reads as absent, as on the server)."""
    from couchbase.exceptions import CasMismatchException, DocumentExistsException, DocumentNotFoundException

    from tests.backends import couchbase_standin as standin

    class Result:
        def __init__(self, doc: dict[str, Any], cas: int) -> None:
            self.content_as = {dict: copy.deepcopy(doc)}
            self.cas = cas

    class Collection(standin.Collection):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.kv: dict[str, tuple[dict[str, Any], int, float]] = {}
            self.cas = 0

        def _live(self, key: str) -> tuple[dict[str, Any], int, float]:
            entry = self.kv.get(key)
            if entry is None or entry[2] <= time.monotonic():
                self.kv.pop(key, None)
                raise DocumentNotFoundException()
            return entry

        def _put(self, key: str, doc: dict[str, Any], options: Any) -> None:
            expiry: timedelta = (options or {}).get("expiry") or timedelta(days=365)
            self.cas += 1
            self.kv[key] = (copy.deepcopy(doc), self.cas, time.monotonic() + expiry.total_seconds())

        def insert(self, key: str, doc: dict[str, Any], options: Any = None) -> None:
            try:
                self._live(key)
            except DocumentNotFoundException:
                return self._put(key, doc, options)
            raise DocumentExistsException()

        def get(self, key: str) -> Result:
            doc, cas, _ = self._live(key)
            return Result(doc, cas)

        def replace(self, key: str, doc: dict[str, Any], options: Any = None) -> None:
            if (options or {}).get("cas") not in (None, self._live(key)[1]):
                raise CasMismatchException()
            self._put(key, doc, options)

        def remove(self, key: str, options: Any = None) -> None:
            if (options or {}).get("cas") not in (None, self._live(key)[1]):
                raise CasMismatchException()
            del self.kv[key]

    class Cluster(standin.Cluster):
        def collection(self, name: str) -> Collection:
            found = self.collections.setdefault(name, Collection(name))
            assert isinstance(found, Collection)
            return found

    return Cluster()


def test_couchbase_lock_through_the_standin(monkeypatch: pytest.MonkeyPatch) -> None:
    from ckpt.backends.couchbase.store import CouchbaseStore

    monkeypatch.setenv("CKPT_LOCK_TTL", "0.6")
    cluster = _couchbase_standin()
    first, second = (CouchbaseStore(cluster, "app", "agents", "checkpoints", "checkpoint_writes") for _ in "ab")
    kv = cluster.collection("checkpoints").kv
    with first.lock("prune"):
        token = kv["ckpt_lock::prune"][0]["token"]
        with pytest.raises(LockedError), second.lock("prune"):
            pass
        time.sleep(2)  # the server-side expiry is 1 s: only the renewals keep it
        assert kv["ckpt_lock::prune"][0]["token"] == token
    assert "ckpt_lock::prune" not in kv
    with second.lock("prune"):
        pass
    # Taken over after expiry: the old holder finds it lost and removes nothing.
    monkeypatch.setenv("CKPT_LOCK_TTL", "60")
    with pytest.raises(LockedError, match="was lost while held"), first.lock("prune"):
        cluster.collection("checkpoints").replace("ckpt_lock::prune", {"token": "taker"}, None)
    assert kv["ckpt_lock::prune"][0]["token"] == "taker"
    # A holder that died: its document lapses with the server-side expiry.
    del kv["ckpt_lock::prune"]
    cluster.collection("checkpoints").insert("ckpt_lock::prune", {"token": "dead"}, {"expiry": timedelta(seconds=1)})
    with pytest.raises(LockedError), second.lock("prune"):
        pass
    time.sleep(1.1)
    with second.lock("prune"):
        pass


# -- SQLite: lock files ---------------------------------------------------------------------------


def _lock_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".lock" in p.name or ".expired" in p.name)


def test_sqlite_leaves_no_lock_file_behind(cli: Cli, db_copy: Path) -> None:
    url = sqlite_url(db_copy)
    refused = cli("prune", url, "--keep-last", "1", "--min-idle", "0")  # no --yes off a terminal
    assert refused.exit_code == ExitCode.USAGE and _lock_files(db_copy.parent) == []
    refused = cli("compact", url)
    assert refused.exit_code == ExitCode.USAGE and _lock_files(db_copy.parent) == []
    with open_store(url, write=True) as store, store.lock("prune"):
        assert _lock_files(db_copy.parent) == [f"{db_copy.name}.ckpt-prune.lock"]
        conflict = cli("prune", url, "--keep-last", "1", "--min-idle", "0", "--yes")
        assert conflict.exit_code == ExitCode.LOCKED
        assert _lock_files(db_copy.parent) == [f"{db_copy.name}.ckpt-prune.lock"]
    assert _lock_files(db_copy.parent) == []
    assert cli("prune", url, "--keep-last", "1", "--min-idle", "0", "--yes").exit_code == 0
    assert _lock_files(db_copy.parent) == []
    assert cli("compact", url, "--yes").exit_code == 0
    assert _lock_files(db_copy.parent) == []


def test_sqlite_a_waiter_on_a_removed_lock_file_starts_again(tmp_path: Path) -> None:
    """The flock race: B opened the file A holds; A releases (unlinks); C makes a new file and
    locks it. B then gets the flock on the unlinked inode, and must see that it is not the lock."""
    import fcntl

    path = str(tmp_path / "x.lock")
    with locks.file_lock(path, "busy"):
        waiter = os.open(path, os.O_RDWR)
    try:
        with locks.file_lock(path, "busy"):  # C: a new file at the path
            fcntl.flock(waiter, fcntl.LOCK_EX | fcntl.LOCK_NB)  # B's flock succeeds, on the old inode
            assert not locks._same_file(waiter, path)
            with pytest.raises(LockedError), locks.file_lock(path, "busy"):  # B starting again: refused
                pass
            assert os.path.exists(path)
        assert not os.path.exists(path)
    finally:
        os.close(waiter)


def test_sqlite_lock_is_exclusive_across_threads_racing_on_release(tmp_path: Path) -> None:
    """Many takers racing with releases: never two holders at once, and no file left."""
    path = str(tmp_path / "race.lock")
    holders: list[int] = []
    overlaps: list[int] = []
    guard = threading.Lock()

    def worker(n: int) -> None:
        for _ in range(200):
            try:
                with locks.file_lock(path, "busy"):
                    with guard:
                        holders.append(n)
                        if len(holders) > 1:
                            overlaps.append(n)
                    time.sleep(0.0005)
                    with guard:
                        holders.remove(n)
            except LockedError:
                pass

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for worker_thread in workers:
        worker_thread.start()
    for worker_thread in workers:
        worker_thread.join()
    assert overlaps == [] and not os.path.exists(path)


@pytest.fixture
def no_os_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither ``fcntl`` nor ``msvcrt``: the portable ``O_EXCL`` lock file."""
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setattr(sys, "platform", "unknown")


@pytest.mark.usefixtures("no_os_locks")
def test_portable_lock_file_holds_pid_host_and_expiry_and_goes_on_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_LOCK_TTL", "0.6")
    path = str(tmp_path / "db.ckpt-prune.lock")
    with locks.file_lock(path, "another ckpt prune is running"):
        first = json.loads(Path(path).read_text())
        assert first["pid"] == os.getpid() and first["host"] and first["expires"] > time.time()
        with pytest.raises(LockedError, match=f"held by pid {os.getpid()}"), locks.file_lock(path, "refused"):
            pass
        time.sleep(1.5)  # renewed every TTL/3
        again = json.loads(Path(path).read_text())
        assert again["token"] == first["token"] and again["expires"] > first["expires"]
    assert _lock_files(tmp_path) == []


@pytest.mark.usefixtures("no_os_locks")
def test_portable_lock_file_is_taken_over_when_expired_and_released_by_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_LOCK_TTL", "60")
    path = tmp_path / "db.ckpt-prune.lock"
    path.write_text(json.dumps({"token": "dead", "pid": 1, "host": "h", "expires": time.time() - 1}))
    with locks.file_lock(str(path), "refused"):
        assert json.loads(path.read_text())["token"] != "dead"
    assert _lock_files(tmp_path) == []
    path.write_text(json.dumps({"token": "live", "pid": 1, "host": "h", "expires": time.time() + 60}))
    with pytest.raises(LockedError, match="held by pid 1 on h"), locks.file_lock(str(path), "refused"):
        pass
    assert json.loads(path.read_text())["token"] == "live"
    path.unlink()
    with pytest.raises(LockedError, match="was lost while held"), locks.file_lock(str(path), "refused"):
        path.write_text(json.dumps({"token": "taker", "pid": 1, "host": "h", "expires": time.time() + 60}))
    assert json.loads(path.read_text())["token"] == "taker"  # not the old holder's to remove


_NO_FCNTL = """
import sys
sys.modules["fcntl"] = None
from ckpt.cli.main import main
import ckpt.backends.sqlite.store
sys.argv = ["ckpt", *sys.argv[1:]]
main()
"""


def test_sqlite_driver_works_without_fcntl(official_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "nofcntl.db"
    db.write_bytes(official_db.read_bytes())
    url = sqlite_url(db)

    def ckpt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _NO_FCNTL, *args], capture_output=True, text=True, env=_env(), cwd=tmp_path
        )

    listed = ckpt("list", url, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert "fcntl" not in listed.stderr and "thread-1" in listed.stdout
    exported = ckpt("export", url, str(tmp_path / "out.jsonl"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out.jsonl").stat().st_size > 0
    pruned = ckpt("prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes")  # the portable lock file
    assert pruned.returncode == 0, pruned.stderr
    assert _count(url) == 3 and _lock_files(tmp_path) == []


def test_lock_ttl_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CKPT_LOCK_TTL", raising=False)
    assert locks.lock_ttl() == locks.DEFAULT_TTL == 60
    monkeypatch.setenv("CKPT_LOCK_TTL", "2.5")
    assert locks.lock_ttl() == 2.5
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv("CKPT_LOCK_TTL", bad)
        with pytest.raises(UsageError):
            locks.lock_ttl()
    assert locks.holder_of(locks.new_token()) == f"pid {os.getpid()} on {socket.gethostname()}"
