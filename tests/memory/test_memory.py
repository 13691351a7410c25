"""``ckpt memory`` against the official stores (issue #21): the store that wrote the memories and the
store ckpt copied them into must show the same items, namespaces and times; the JSON Lines form is
lossless; prune removes exactly what it says; bad input writes nothing."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from ckpt.backends import open_memory
from ckpt.backends.core.errors import ExitCode
from tests.conftest import Cli
from tests.memory import scenario
from tests.memory.kinds import MemoryKind, kinds

KINDS = kinds()
NAMES = sorted(KINDS)


def _kind(name: str) -> MemoryKind:
    return KINDS[name]


def _fault(kind: MemoryKind, check: str) -> None:
    """Where the official store cannot show what it holds, the test says so and stops there."""
    if check in kind.faults:
        pytest.xfail(f"{kind.name}: the official store: {kind.faults[check]}")


def _ms(at: Any) -> str:
    return scenario.utc(at).isoformat(timespec="milliseconds")


@pytest.mark.parametrize("name", NAMES)
def test_ckpt_reads_what_the_official_store_wrote(name: str, tmp_path: Path) -> None:
    kind = _kind(name)
    with kind.place(tmp_path) as url:
        with kind.official(url) as store:
            scenario.write(store)
            expected = scenario.view(store)
        with open_memory(url) as memory:
            items = {i.address: i for i in memory.items()}
            listed = sorted(s.namespace for s in memory.namespaces())
    assert sorted(items) == sorted(expected["items"])
    for address, shown in expected["items"].items():
        if shown is None:
            continue  # the official store cannot read it back (kind.faults says why)
        item = items[address]
        assert (orjson.loads(item.value), _ms(item.created_at), _ms(item.updated_at)) == shown, address
    assert listed == sorted({ns for ns, _key, _v, _t in scenario.ITEMS})
    ttl = items[(("users", "42", "prefs"), "ttl")]
    if "ttl" not in kind.faults:
        assert ttl.ttl_minutes == 600.0 and ttl.expires_at is not None


@pytest.mark.parametrize("source", NAMES)
@pytest.mark.parametrize("target", NAMES)
def test_migrate_then_the_target_store_shows_what_the_source_did(
    source: str, target: str, tmp_path: Path, cli: Cli
) -> None:
    src, dst = _kind(source), _kind(target)
    with src.place(tmp_path) as src_url, dst.place(tmp_path) as dst_url:
        with src.official(src_url) as store:
            scenario.write(store)
            before = scenario.view(store)
        for _run in range(2):  # a rerun (after a kill, or by cron) changes nothing
            result = cli("memory", "migrate", src_url, dst_url, "--verify", "-o", "json")
            assert result.exit_code == 0, result.stderr
            report = orjson.loads(result.stdout)
            assert report["items"] == report["verified"] == len(scenario.ITEMS)
        with dst.official(dst_url) as store:
            after = scenario.view(store)
        readable = _readable_by(dst, tmp_path)
    for address, shown in before["items"].items():
        if shown is None and "read-back" in src.faults:
            continue  # the source's own store could not show it
        # where the target's store cannot read back even what it wrote itself, it reads ckpt's copy no better
        assert after["items"][address] == (shown if readable[address] else None), address
    assert after["namespaces"] == before["namespaces"]


def _readable_by(kind: MemoryKind, tmp_path: Path) -> dict[Any, bool]:
    """Which scenario items ``kind``'s official store reads back after writing them itself."""
    if "read-back" not in kind.faults:
        return {(ns, key): True for ns, key, _v, _t in scenario.ITEMS}
    with kind.place(tmp_path) as url, kind.official(url) as store:
        scenario.write(store)
        return {address: shown is not None for address, shown in scenario.view(store)["items"].items()}


@pytest.mark.parametrize("name", NAMES)
def test_jsonl_round_trip_is_lossless(name: str, tmp_path: Path, cli: Cli) -> None:
    kind = _kind(name)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl.gz"
    with kind.place(tmp_path) as src_url, kind.place(tmp_path) as dst_url:
        with kind.official(src_url) as store:
            scenario.write(store)
        assert cli("memory", "export", src_url, str(first)).exit_code == 0
        result = cli("memory", "import", str(first), dst_url, "--verify")
        assert result.exit_code == 0, result.stderr
        assert cli("memory", "export", dst_url, str(second)).exit_code == 0
    import gzip

    lines_a = first.read_bytes().splitlines()
    lines_b = gzip.decompress(second.read_bytes()).splitlines()
    assert lines_a[1:] == lines_b[1:]
    assert len(lines_a) == len(scenario.ITEMS) + 1
    header = orjson.loads(lines_a[0])
    assert header["format"] == "ckpt/memory-jsonl" and header["source"]["kind"] == kind.name


@pytest.mark.parametrize("name", NAMES)
def test_prune_expired_removes_exactly_what_the_store_calls_expired(name: str, tmp_path: Path, cli: Cli) -> None:
    kind = _kind(name)
    _fault(kind, "expired")
    short = [(("tmp",), f"short-{i}", {"text": f"gone {i}"}, 0.01) for i in range(3)]
    with kind.place(tmp_path) as url:
        with kind.official(url) as store:
            scenario.write(store)
            scenario.write(store, short)
            before = scenario.view(store)  # every survivor, as the official store reads it
            time.sleep(1.5)  # 0.6 s of TTL, plus the second SQLite's CURRENT_TIMESTAMP rounds to
        dry = cli("memory", "prune", url, "--expired", "--dry-run", "-o", "json")
        assert orjson.loads(dry.stdout)["deleted"] == 3, dry.stderr
        refused = cli("memory", "prune", url, "--expired")  # not a terminal, no --yes
        assert refused.exit_code == ExitCode.USAGE
        result = cli("memory", "prune", url, "--expired", "--yes", "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert orjson.loads(result.stdout)["by_reason"] == {"expired": 3}
        with kind.official(url) as store:
            assert scenario.view(store, short)["items"] == {(ns, k): None for ns, k, _v, _t in short}
            kept = scenario.view(store)
        again = cli("memory", "prune", url, "--expired", "--yes", "-o", "json")
        assert orjson.loads(again.stdout)["deleted"] == 0
    assert kept["items"] == before["items"]  # every item that stayed reads exactly as before the prune
    assert kept["namespaces"] == [ns for ns in before["namespaces"] if ns[0] != "tmp"]


def test_prune_by_namespace_keeps_exempt_ones(tmp_path: Path, cli: Cli) -> None:
    kind = _kind("sqlite")
    with kind.place(tmp_path) as url:
        with kind.official(url) as store:
            scenario.write(store)
            before = scenario.view(store)["items"]
        result = cli(
            "memory", "prune", url, "--namespace", "users", "--exempt", "users/42/prefs", "--yes", "-o", "json"
        )
        assert result.exit_code == 0, result.stderr
        assert orjson.loads(result.stdout)["namespaces"] == {"users": 1, "users/42": 1}
        with kind.official(url) as store:
            shown = scenario.view(store)["items"]
    gone = {(("users",), "u1"), (("users", "42"), "prefs")}
    assert {a for a, v in shown.items() if v is None} == gone
    assert {a: v for a, v in shown.items() if a not in gone} == {a: v for a, v in before.items() if a not in gone}


def _export_line(**changes: Any) -> bytes:
    line: dict[str, Any] = {
        "namespace": ["n"],
        "key": "k",
        "value": {"a": 1},
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "expires_at": None,
        "ttl_minutes": None,
        "vectors": [{"field": "$", "embedding": [0.5, 0.5, 0.5, 0.5]}],
    }
    line.update(changes)
    return orjson.dumps(line)


def _export_file(path: Path, *lines: bytes) -> str:
    header = orjson.dumps({"format": "ckpt/memory-jsonl", "version": 1, "source": None, "index": None})
    path.write_bytes(b"\n".join([header, *lines]) + b"\n")
    return str(path)


def test_a_truncated_line_writes_nothing(tmp_path: Path, cli: Cli) -> None:
    good = _export_line()
    path = _export_file(tmp_path / "m.jsonl", good, _export_line(key="k2"), good[:-9])
    target = tmp_path / "target.db"
    result = cli("memory", "import", path, f"sqlite:///{target}")
    assert result.exit_code == ExitCode.DATA
    assert "m.jsonl:4: invalid JSON" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not target.exists()  # checked whole before the target was even created


def test_a_vector_dimension_mismatch_writes_nothing(tmp_path: Path, cli: Cli) -> None:
    url = f"sqlite:///{tmp_path / 'vec.db'}"
    assert cli("memory", "import", _export_file(tmp_path / "four.jsonl", _export_line()), url).exit_code == 0
    three = _export_line(key="k3", vectors=[{"field": "$", "embedding": [1.0, 0.0, 0.0]}])
    result = cli("memory", "import", _export_file(tmp_path / "three.jsonl", three), url)
    assert result.exit_code == ExitCode.DATA
    assert "dims 3 != 4" in result.stderr and "nothing was written" in result.stderr
    with open_memory(url) as memory:
        assert [i.key for i in memory.items()] == ["k"]
        assert memory.index() is not None and memory.index().dims == 4  # type: ignore[union-attr]


def test_unknown_layouts_are_refused(tmp_path: Path, cli: Cli, official_db: Path) -> None:
    result = cli("memory", "list", f"sqlite:///{official_db}")  # a checkpoint store, no memories
    assert result.exit_code == ExitCode.DATA and "no SqliteStore memory" in result.stderr
    checkpoints = tmp_path / "ckpt.jsonl"
    assert cli("export", f"sqlite:///{official_db}", str(checkpoints)).exit_code == 0
    result = cli("memory", "import", str(checkpoints), f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == ExitCode.DATA and "a checkpoint export: use ckpt import" in result.stderr
    assert not (tmp_path / "x.db").exists()
    result = cli("memory", "list", f"sqlite:///{tmp_path / 'missing.db'}")
    assert result.exit_code == ExitCode.NOT_FOUND


def test_every_exported_line_validates_against_the_schema(tmp_path: Path, cli: Cli) -> None:
    import jsonschema

    root = Path(__file__).resolve().parents[2]
    schema = orjson.loads((root / "formats" / "schemas" / "memory-jsonl-v1.schema.json").read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    url = f"sqlite:///{tmp_path / 'vec.db'}"
    assert cli("memory", "import", _export_file(tmp_path / "in.jsonl", _export_line()), url).exit_code == 0
    kind = _kind("sqlite")
    with kind.official(url) as store:
        scenario.write(store)
    out = tmp_path / "out.jsonl"
    assert cli("memory", "export", url, str(out)).exit_code == 0
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == len(scenario.ITEMS) + 2 and lines[0]["index"]["dims"] == 4
    for number, line in enumerate(lines, start=1):
        errors = list(validator.iter_errors(line))
        assert not errors, f"line {number}: {errors[0].message}"


def test_check_holds_memory_to_its_budgets(tmp_path: Path, cli: Cli, db_copy: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt.toml").write_text('[budget]\nmax_namespace_items = 1\nmax_memory_bytes = "1MiB"\n')
    url = f"sqlite:///{db_copy}"
    within = cli("check", url, "-o", "json")  # checkpoints only: no memory, within every memory budget
    assert within.exit_code == 0, within.stderr
    with _kind("sqlite").official(url) as store:  # memories beside the checkpoints, as apps keep them
        scenario.write(store)
    result = cli("check", url, "-o", "json")
    assert result.exit_code == ExitCode.ERROR
    report = orjson.loads(result.stdout)
    assert report["memory_items"] == len(scenario.ITEMS)
    breaches = {(b["budget"], b.get("namespace")) for b in report["breaches"]}
    assert breaches == {("max_namespace_items", "users/42/prefs"), ("max_namespace_items", "docs")}


def test_the_library_api_runs_without_the_cli(tmp_path: Path) -> None:
    import ckpt

    source, target = f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "a.jsonl")
    with _kind("sqlite").official(source) as store:
        scenario.write(store)
    report = ckpt.migrate_memory(source, target, verify_after=True)
    assert report.items == report.verified == len(scenario.ITEMS) and not report.differences
    with ckpt.open_memory(target) as memory:
        paths = [s.namespace for s in ckpt.memory_namespaces(memory, depth=1)]
    assert paths == [("a_b%c",), ("docs",), ("users",), ("ünï",)]
    with ckpt.open_memory(source, write=True) as memory:
        plan = ckpt.prune_memory(memory, ckpt.MemoryPolicy(namespaces=(("docs",),)), dry_run=True)
    assert (plan.deleted, plan.by_reason) == (2, {"namespace": 2})


def test_doctor_reports_the_memory_beside_the_checkpoints(cli: Cli, db_copy: Path) -> None:
    url = f"sqlite:///{db_copy}"
    with _kind("sqlite").official(url) as store:
        scenario.write(store)
        store.put(("tmp",), "gone", {"text": "soon"}, ttl=0.01)
    time.sleep(1.5)
    result = cli("doctor", url, "-o", "json")
    report = orjson.loads(result.stdout)
    assert report["memory"]["items"] == len(scenario.ITEMS) + 1
    assert report["memory"]["layout"]["migration"] == 4
    assert [f for f in report["findings"] if f.startswith("memory:")] == [
        "memory: 1 expired memory item(s) still stored, and SqliteStore returns them (langgraph#8902): "
        "`ckpt memory prune --expired` removes them"
    ]
    assert result.exit_code == ExitCode.ERROR


class _Killed(BaseException):
    """Stands for SIGKILL between two delete batches (nothing after it runs)."""


def test_prune_killed_between_batches_is_finished_by_the_next_run(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ckpt.backends.ops import memory as ops
    from ckpt.backends.sqlite.memory import SqliteMemory

    kind = _kind("sqlite")
    short = [(("tmp", str(i % 3)), f"short-{i}", {"text": f"gone {i}"}, 0.01) for i in range(25)]
    with kind.place(tmp_path) as url:
        with kind.official(url) as store:
            scenario.write(store)
            scenario.write(store, short)
            before = scenario.view(store)
        time.sleep(1.5)
        monkeypatch.setattr(ops, "BATCH", 10)
        real_delete, calls = SqliteMemory.delete, []

        def delete_then_die(self: SqliteMemory, addresses: Any) -> int:
            if calls:
                raise _Killed
            calls.append(1)
            return real_delete(self, addresses)

        monkeypatch.setattr(SqliteMemory, "delete", delete_then_die)
        with pytest.raises(_Killed):
            cli("memory", "prune", url, "--expired", "--yes")
        monkeypatch.setattr(SqliteMemory, "delete", real_delete)
        with kind.official(url) as store:
            assert sum(v is None for v in scenario.view(store, short)["items"].values()) == 10  # one batch went
        result = cli("memory", "prune", url, "--expired", "--yes", "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert orjson.loads(result.stdout)["deleted"] == 15
        with kind.official(url) as store:
            assert all(v is None for v in scenario.view(store, short)["items"].values())
            after = scenario.view(store)
        assert after["items"] == before["items"]  # the survivors read exactly as before
        assert after["namespaces"] == [ns for ns in before["namespaces"] if ns[0] != "tmp"]


def _refreshing_store(name: str, url: str) -> Any:
    """The official store with ``refresh_on_read`` on (SqliteStore needs it said; PostgresStore's default)."""
    import sqlite3
    from contextlib import nullcontext

    if name == "sqlite":
        from langgraph.store.sqlite import SqliteStore

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), check_same_thread=False, isolation_level=None)
        return nullcontext(SqliteStore(conn, ttl={"refresh_on_read": True}))  # closed with the test's tmp files
    from langgraph.store.postgres import PostgresStore

    from tests.memory.kind_postgres import _libpq

    return PostgresStore.from_conn_string(_libpq[url], ttl={"refresh_on_read": True})


@pytest.mark.parametrize("name", ["sqlite", "postgres"])
def test_prune_expired_follows_a_refresh_on_read(name: str, tmp_path: Path, cli: Cli) -> None:
    """An item the app read (and so refreshed) is not expired when its first TTL has run out."""
    kind = _kind(name)
    with kind.place(tmp_path) as url:
        with kind.official(url) as store:
            store.put(("s",), "read", {"text": "kept alive"}, ttl=1.0)
            store.put(("s",), "unread", {"text": "left alone"}, ttl=1.0)
        with open_memory(url, write=True) as memory:  # both expire 2 s from now (as if put 58 s ago)
            soon = scenario.utc(datetime.now(timezone.utc)) + timedelta(seconds=2)
            memory.write([replace(i, expires_at=soon) for i in memory.items()])
        with _refreshing_store(name, url) as store:
            store.get(("s",), "read")  # refresh_on_read: expires_at = now + ttl_minutes (a minute)
        time.sleep(3)
        result = cli("memory", "prune", url, "--expired", "--yes", "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert orjson.loads(result.stdout)["deleted"] == 1
        with kind.official(url) as store:
            assert store.get(("s",), "unread") is None
            assert store.get(("s",), "read") is not None


def test_show_prints_values_as_json_in_every_format(tmp_path: Path, cli: Cli) -> None:
    import csv
    import io

    kind = _kind("sqlite")
    with kind.place(tmp_path) as url:
        with kind.official(url) as store:
            scenario.write(store)
        one = orjson.loads(cli("memory", "show", url, "users/42/prefs", "deep", "-o", "json").stdout)
        assert (one["key"], one["value"], one["namespace"]) == (
            "deep",
            {"text": "nested three", "n": 3.5},
            "users/42/prefs",
        )
        rows = list(csv.DictReader(io.StringIO(cli("memory", "show", url, "users/42/prefs", "-o", "csv").stdout)))
        assert [(r["key"], orjson.loads(r["value"])["n"]) for r in rows] == [("deep", 3.5), ("ttl", 4)]
        lines = cli("memory", "show", url, "ünï/名前", "-o", "jsonl").stdout.splitlines()
        assert [orjson.loads(line)["key"] for line in lines] == ["ключ 🔑"]
        missing = cli("memory", "show", url, "users/43")
        assert missing.exit_code == ExitCode.NOT_FOUND and "no namespace 'users/43'" in missing.stderr
        assert cli("memory", "show", url, "users/42", "nope").exit_code == ExitCode.NOT_FOUND


def test_an_item_expired_within_the_current_second_is_reported(tmp_path: Path) -> None:
    """``expires_at`` has microseconds and ``CURRENT_TIMESTAMP`` whole seconds: as texts, an item
    that expired 0.3 s ago in the same second compared as not expired yet."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'mem.db'}"
    with _kind("sqlite").official(url) as store:
        store.put(("tmp",), "gone", {"text": "soon"})
    while datetime.now(timezone.utc).microsecond < 500_000:  # late in a second: 0.3 s ago is the same second
        time.sleep(0.05)
    past = str(datetime.now(timezone.utc) - timedelta(milliseconds=300))
    with sqlite3.connect(tmp_path / "mem.db") as conn:
        conn.execute("UPDATE store SET expires_at = ?, ttl_minutes = 1", (past,))
    with open_memory(url) as memory:
        assert any(f.startswith("1 expired memory item(s)") for f in memory.findings()), memory.findings()
