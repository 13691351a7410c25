"""Issue #19: tables that fit the terminal, selections that match nothing, diff's scope, --jobs caps,
and compact's dry-run size estimate."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import ormsgpack
import pytest

from ckpt.backends.core.errors import ExitCode
from tests.cli.test_prune import _old_bulk
from tests.conftest import Cli, sqlite_url
from tests.servers import postgres_schema

CKPT = [sys.executable, "-m", "ckpt.cli"]


def _on_terminal(columns: int, *args: str) -> list[str]:
    """stdout lines of ``ckpt ARGS`` run on a pseudo-terminal ``columns`` wide, colours stripped."""
    import fcntl
    import pty
    import re
    import struct
    import termios

    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    env["TERM"] = "xterm"
    process = subprocess.Popen([*CKPT, *args], stdout=side, stderr=subprocess.PIPE, env=env)
    os.close(side)
    out = b""
    while True:
        try:
            chunk = os.read(main, 1 << 16)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode()).replace("\r\n", "\n")
    return text.splitlines()


def _whole(official_db: Path) -> list[dict[str, str]]:
    completed = subprocess.run(
        [*CKPT, "list", sqlite_url(official_db), "-c", "-o", "csv"], capture_output=True, check=True, text=True
    )
    return list(csv.DictReader(io.StringIO(completed.stdout)))


@pytest.mark.parametrize("columns", [80, 120])
def test_list_checkpoints_fits_the_terminal_with_unique_id_prefixes(official_db: Path, columns: int) -> None:
    whole = _whole(official_db)
    lines = _on_terminal(columns, "list", sqlite_url(official_db), "-c")
    assert all(len(line) <= columns for line in lines)
    header = [cell.strip() for cell in lines[1].strip("┃").split("┃")]
    rows = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines[3:-1]]
    assert len(rows) == len(whole)  # exactly one line per checkpoint: nothing wrapped
    assert "thread_id" in header and "checkpoint_id" in header
    shown = [row[header.index("checkpoint_id")] for row in rows]
    real = [row["checkpoint_id"] for row in whole]
    assert all(r.startswith(s) and len(s) < len(r) for s, r in zip(shown, real))
    assert len(set(shown)) == len(set(real))  # every prefix names one checkpoint
    if columns == 120:  # the wider terminal keeps more columns
        assert {"step", "time", "bytes"} <= set(header)


def test_list_no_trunc_shows_whole_ids(official_db: Path) -> None:
    real = {row["checkpoint_id"] for row in _whole(official_db)}
    lines = _on_terminal(80, "list", sqlite_url(official_db), "-c", "--no-trunc")
    header = [cell.strip() for cell in lines[1].strip("┃").split("┃")]
    rows = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines[3:-1]]
    assert "parent_checkpoint_id" in header and len(rows) == len(real)
    assert {row[header.index("checkpoint_id")] for row in rows} == real


def test_list_threads_fit_and_machine_formats_keep_whole_ids(cli: Cli, official_db: Path) -> None:
    lines = _on_terminal(80, "list", sqlite_url(official_db))
    assert all(len(line) <= 80 for line in lines) and len(lines) == 3 + 3 + 1
    jsonl = [json.loads(line) for line in cli("list", sqlite_url(official_db), "-c", "-o", "jsonl").stdout.splitlines()]
    assert all(len(row["checkpoint_id"]) == 36 for row in jsonl)


def test_unique_prefix_length() -> None:
    from ckpt.cli.table import unique_prefix_length

    assert unique_prefix_length(["abcdef0123", "abcdef0199"], minimum=4) == 9
    assert unique_prefix_length(["ab", "abc"], minimum=1) == 3
    assert unique_prefix_length([], minimum=8) == 8


@pytest.mark.parametrize(
    "args",
    [
        ("export", "{url}", "{tmp}/out.jsonl", "--until", "2000-01-01"),
        ("migrate", "{url}", "sqlite:///{tmp}/copy.db", "--thread", "nobody-*"),
        ("migrate", "{url}", "sqlite:///{tmp}/copy.db", "--since", "1d", "--until", "2000-01-01", "--dry-run"),
        ("list", "{url}", "--thread", "nobody-*", "-o", "json"),
        ("list", "{url}", "-c", "--since", "2099-01-01", "-o", "csv"),
        ("size", "{url}", "--thread", "nobody-*", "-o", "json"),
    ],
)
def test_a_selection_that_matches_nothing_is_named(
    cli: Cli, official_db: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = cli(*(a.format(url=sqlite_url(official_db), tmp=tmp_path) for a in args))
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "matched" in warnings[0], result.stderr
    assert any(flag in warnings[0] for flag in ("--thread", "--since", "--until"))


def test_a_selection_that_matches_something_says_nothing(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    result = cli("export", sqlite_url(official_db), str(tmp_path / "out.jsonl"), "--thread", "thread-1")
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_diff_of_two_stores_compares_every_namespace_and_names_the_scope(
    cli: Cli, db_copy: Path, official_db: Path
) -> None:
    url_a, url_b = sqlite_url(official_db), sqlite_url(db_copy)
    same = cli("diff", url_a, url_b, "--thread", "thread-1", "-o", "table")
    count = len([r for r in _whole(official_db) if r["thread_id"] == "thread-1"])
    assert same.exit_code == 0
    assert f"2 namespaces (all): {count} checkpoints, identical in both stores" in same.stdout
    conn = sqlite3.connect(db_copy)
    ns, changed_id, blob = conn.execute(
        "SELECT checkpoint_ns, checkpoint_id, checkpoint FROM checkpoints WHERE thread_id = 'thread-1' "
        "AND checkpoint_ns != '' ORDER BY checkpoint_id DESC LIMIT 1"
    ).fetchone()
    checkpoint = ormsgpack.unpackb(blob, ext_hook=lambda c, d: ormsgpack.Ext(c, d), option=ormsgpack.OPT_NON_STR_KEYS)
    checkpoint["channel_values"]["subgraph_probe"] = 1
    conn.execute(
        "UPDATE checkpoints SET checkpoint = ? WHERE checkpoint_id = ?", (ormsgpack.packb(checkpoint), changed_id)
    )
    removed_id = conn.execute(
        "SELECT checkpoint_id FROM checkpoints WHERE thread_id = 'thread-1' AND checkpoint_ns = ? "
        "ORDER BY checkpoint_id LIMIT 1",
        (ns,),
    ).fetchone()[0]
    conn.execute("DELETE FROM checkpoints WHERE checkpoint_id = ?", (removed_id,))
    conn.commit()
    conn.close()
    found = cli("diff", url_a, url_b, "--thread", "thread-1", "-o", "json")
    assert found.exit_code == ExitCode.ERROR
    patches = json.loads(found.stdout)
    assert set(patches) == {f"{ns}/{changed_id}", f"{ns}/{removed_id}"}
    assert patches[f"{ns}/{removed_id}"] == f"only in {url_a}"
    assert patches[f"{ns}/{changed_id}"] == [{"op": "add", "path": "/values/subgraph_probe", "value": 1}]
    table = cli("diff", url_a, url_b, "--thread", "thread-1", "-o", "table")
    assert table.exit_code == ExitCode.ERROR and "2 namespaces (all)" in table.stdout and "2 differ" in table.stdout
    root_only = cli("diff", url_a, url_b, "--thread", "thread-1", "--ns", "", "-o", "table")
    assert root_only.exit_code == 0 and "namespace (root) only" in root_only.stdout


def test_migrate_jobs_are_capped_at_the_cores(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    result = cli("migrate", sqlite_url(official_db), sqlite_url(target), "--jobs", "1000", "-o", "json")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert 1 <= body["jobs"] <= (os.cpu_count() or 1) and body["checkpoints_written"] == 29
    notices = [line for line in result.stderr.splitlines() if "--jobs 1000" in line]
    assert len(notices) == 1 and f"using {body['jobs']} worker(s)" in notices[0]


def test_cap_jobs() -> None:
    from ckpt.backends.ops.parallel import cap_jobs

    assert cap_jobs(1) == (1, None)
    workers, why = cap_jobs(10**6)
    assert workers <= (os.cpu_count() or 1) and why is not None


def test_compact_dry_run_estimates_the_size_after_on_sqlite(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_bulk(official_db, sqlite_url(path), 60)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO writes SELECT thread_id, checkpoint_ns, '1f000000-0000-6000-8000-000000000001', task_id,"
        " task_path, idx, channel, type, value FROM writes LIMIT 40"
    )  # orphans: their checkpoint does not exist
    conn.commit()
    conn.close()
    assert cli("prune", sqlite_url(path), "--keep-last", "2", "--yes").exit_code == 0
    dry = json.loads(cli("compact", sqlite_url(path), "--dry-run", "-o", "json").stdout)
    assert dry["bytes_after_estimated"] is True and dry["bytes_after"] < dry["bytes_before"] / 2
    text = cli("compact", sqlite_url(path), "--dry-run", "-o", "table").stderr
    assert "(estimate)" in text and "~" in text
    done = json.loads(cli("compact", sqlite_url(path), "--yes", "-o", "json").stdout)
    assert abs(dry["bytes_after"] - done["bytes_after"]) <= max(8192, done["bytes_after"] // 10)


def test_compact_dry_run_estimates_the_size_after_on_postgres(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    source = tmp_path / "old.db"
    _old_bulk(official_db, sqlite_url(source), 60)
    with postgres_schema() as (url, _):
        assert cli("migrate", sqlite_url(source), url).exit_code == 0
        assert cli("prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes").exit_code == 0
        dry = json.loads(cli("compact", url, "--dry-run", "--min-idle", "0s", "-o", "json").stdout)
        assert dry["bytes_after_estimated"] is True
        done = json.loads(cli("compact", url, "--yes", "--min-idle", "0s", "-o", "json").stdout)
        # plain VACUUM keeps the freed space inside the files; only empty tails are cut off
        assert abs(dry["bytes_after"] - done["bytes_after"]) <= max(16384, done["bytes_after"] // 10)


def test_compact_dry_run_says_when_it_cannot_estimate(cli: Cli, db_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ckpt.backends.sqlite.store import SqliteStore

    monkeypatch.setattr(SqliteStore, "reclaimable_bytes", lambda self, idle_before=None: None)
    result = cli("compact", sqlite_url(db_copy), "--dry-run", "-o", "table")
    assert result.exit_code == 0 and "cannot estimate" in result.stderr
    body = json.loads(cli("compact", sqlite_url(db_copy), "--dry-run", "-o", "json").stdout)
    assert body["bytes_after"] is None and body["bytes_after_estimated"] is False


def test_postgres_prune_jobs_are_capped_at_the_thread_ranges(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    source = tmp_path / "old.db"
    _old_bulk(official_db, sqlite_url(source), 4)
    with postgres_schema() as (url, libpq):
        import psycopg

        assert cli("migrate", sqlite_url(source), url).exit_code == 0
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("ANALYZE checkpoints")  # the statistics the ranges are cut from
        args = ["prune", url, "--keep-last", "1", "--min-idle", "0s", "--dry-run", "--jobs", "1000", "-o", "json"]
        result = subprocess.run([*CKPT, *args], capture_output=True, text=True)  # stderr as a user sees it
        assert result.returncode == 0, result.stderr
        assert 1 <= json.loads(result.stdout)["jobs"] <= 4
        notices = [line for line in result.stderr.splitlines() if "--jobs 1000" in line]
        assert len(notices) == 1 and "connection(s)" in notices[0], result.stderr
