"""list and show on a store written by the official saver."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ckpt.backends.core.errors import DataError
from ckpt.backends.core.ids import checkpoint_time
from tests.conftest import Cli, sqlite_url


def _counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id").fetchall())
    finally:
        conn.close()


def test_list_threads_matches_the_tables(cli: Cli, official_db: Path) -> None:
    fast = json.loads(cli("list", sqlite_url(official_db), "-o", "json").stdout)
    assert set(fast[0]) == {"thread_id", "checkpoints", "first", "last"}  # the index alone answers these
    result = cli("list", sqlite_url(official_db), "--sizes", "-o", "json")
    rows = json.loads(result.stdout)
    assert [{k: r[k] for k in fast[0]} for r in rows] == fast
    assert {r["thread_id"]: r["checkpoints"] for r in rows} == _counts(official_db)
    conn = sqlite3.connect(f"file:{official_db}?mode=ro", uri=True)
    expected_bytes = conn.execute(
        "SELECT (SELECT sum(length(checkpoint) + length(metadata)) FROM checkpoints WHERE thread_id = 'thread-1')"
        " + (SELECT sum(length(value)) FROM writes WHERE thread_id = 'thread-1')"
    ).fetchone()[0]
    conn.close()
    first = rows[0]
    assert first["thread_id"] == "thread-1" and first["namespaces"] == 2 and first["bytes"] == expected_bytes
    assert first["first"] <= first["last"] and first["first"].endswith("Z")


def test_list_thread_glob_and_formats(cli: Cli, official_db: Path) -> None:
    url = sqlite_url(official_db)
    jsonl = cli("list", url, "--thread", "thread-[12]", "-o", "jsonl").stdout.splitlines()
    assert [json.loads(line)["thread_id"] for line in jsonl] == ["thread-1", "thread-2"]
    table = list(csv.DictReader(io.StringIO(cli("list", url, "-o", "csv").stdout)))
    assert [r["thread_id"] for r in table] == ["thread-1", "thread-2", "thread-3"]
    assert cli("list", url, "--thread", "nobody*", "-o", "json").stdout.strip() == "[]"
    rendered = cli("list", url, "-o", "table").stdout
    assert "thread-3" in rendered and "KiB" not in rendered
    assert "KiB" in cli("list", url, "--sizes", "-o", "table").stdout


def test_list_checkpoints_rows(cli: Cli, official_db: Path) -> None:
    rows = [
        json.loads(line)
        for line in cli("list", sqlite_url(official_db), "-c", "-t", "thread-3", "-o", "jsonl").stdout.splitlines()
    ]
    assert len(rows) == _counts(official_db)["thread-3"]
    root = [r for r in rows if r["checkpoint_ns"] == ""]
    assert [r["step"] for r in root] == list(range(-1, len(root) - 1))
    assert root[0]["source"] == "input" and root[0]["parent_checkpoint_id"] is None
    assert all(b["parent_checkpoint_id"] == a["checkpoint_id"] for a, b in zip(root, root[1:]))
    sub = [r for r in rows if r["checkpoint_ns"]]
    assert sub and all(r["checkpoint_ns"].startswith("research:") for r in sub)
    assert all(r["bytes"] > 0 for r in rows)


def test_uuid6_time_is_decoded() -> None:
    assert checkpoint_time("1f1ea909-2672-679a-bfff-000000000000") is not None
    assert checkpoint_time("not-a-uuid") is None
    t = checkpoint_time("1f1ea95f-d151-6ea1-bfff-53150f40e99d")
    assert t is not None and 1.7e9 < t < 2.2e9


def test_show_latest_of_interrupted_thread(cli: Cli, official_db: Path) -> None:
    view = json.loads(cli("show", sqlite_url(official_db), "thread-3", "-o", "json").stdout)
    assert view["next"] == ["approve"]
    assert view["metadata"]["source"] == "loop"
    [interrupt] = view["interrupts"]
    assert interrupt["value"]["question"] == "Send the summary?"
    assert interrupt["value"]["asked_at"] == {"$datetime": "2024-01-02T00:00:00+00:00"}
    values = view["values"]
    roles = [m["$message"] for m in values["messages"]]
    assert roles == ["human", "ai", "tool", "ai"]
    assert values["messages"][1]["tool_calls"][0]["name"] == "lookup"
    assert sorted(values["tags"]["$set"]) == ["agent", "lookup"]
    assert values["raw"] == {"$bin": "AAEC"}
    assert values["profile"] == {"$type": "examples.graphs.Profile", "name": "ada", "tier": 2}
    assert values["note"]["$type"] == "examples.graphs.Note"
    assert not any(k.startswith("branch:to:") for k in values)


def test_show_table_renders_messages_readably(cli: Cli, official_db: Path) -> None:
    out = cli("show", sqlite_url(official_db), "thread-3", "-o", "table").stdout
    assert "[human] find papers for thread-3" in out
    assert "→ lookup(query=" in out
    assert "interrupt" in out and "approve" in out


def test_show_subgraph_namespace_and_specific_checkpoint(cli: Cli, official_db: Path) -> None:
    rows = [
        json.loads(line)
        for line in cli("list", sqlite_url(official_db), "-c", "-t", "thread-1", "-o", "jsonl").stdout.splitlines()
    ]
    sub = next(r for r in rows if r["checkpoint_ns"])
    view = json.loads(
        cli(
            "show",
            sqlite_url(official_db),
            "thread-1",
            "--ns",
            sub["checkpoint_ns"],
            "-c",
            sub["checkpoint_id"],
            "-o",
            "json",
        ).stdout
    )
    assert view["checkpoint_ns"] == sub["checkpoint_ns"] and view["checkpoint_id"] == sub["checkpoint_id"]
    first = rows[0]
    view = json.loads(
        cli("show", sqlite_url(official_db), "thread-1", "-c", first["checkpoint_id"], "-o", "json").stdout
    )
    assert view["next"] == ["__start__"] or view["metadata"]["source"] == "input"
    missing = cli("show", sqlite_url(official_db), "thread-1", "-c", "1f000000-0000-6000-8000-000000000000")
    assert missing.exit_code == 3 and "no checkpoint 1f000000-0000-6000-8000-000000000000" in missing.stderr


def test_show_finished_thread_has_nothing_next(cli: Cli, official_db: Path) -> None:
    view = json.loads(cli("show", sqlite_url(official_db), "thread-1", "-o", "json").stdout)
    assert view["next"] == [] and view["interrupts"] == []
    assert view["values"]["messages"][-1] == {
        "$message": "human",
        "content": "approval: yes",
        "id": view["values"]["messages"][-1]["id"],
    }


def test_version_and_help(cli: Cli) -> None:
    assert cli("--version").stdout.startswith("ckpt ")
    help_text = cli("--help").stdout
    for command in ("list", "show", "export", "import"):
        assert command in help_text


def test_rows_read_before_a_failure_still_come_out() -> None:
    from ckpt.cli.list_ import _chunks

    def failing() -> Iterator[int]:
        yield from range(5)
        raise DataError("page 7 is corrupt")

    out: list[list[int]] = []
    with pytest.raises(DataError, match="page 7"):
        for chunk in _chunks(failing(), 3):
            out.append(chunk)
    assert out == [[0, 1, 2], [3, 4]]


def test_the_real_process_prints_what_the_command_prints(cli: Cli, official_db: Path) -> None:
    """Through ``main`` and a pipe, with stdout buffered as a user's is: every row, exit code 0."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    args = ["list", sqlite_url(official_db), "-o", "jsonl"]
    done = subprocess.run([sys.executable, "-m", "ckpt.cli", *args], capture_output=True, env=env, check=False)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode() == cli(*args).stdout and done.stdout.count(b"\n") == 3


def test_show_takes_the_id_prefix_list_prints(cli: Cli, official_db: Path) -> None:
    """``list -c`` shows the shortest unique prefix of each id; ``show --checkpoint`` takes it back."""

    url = sqlite_url(official_db)
    rows = [
        json.loads(line) for line in cli("list", url, "-c", "--thread", "thread-3", "-o", "jsonl").stdout.splitlines()
    ]
    whole = rows[0]["checkpoint_id"]
    shown = cli("show", url, "thread-3", "--checkpoint", whole[:13], "-o", "json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["checkpoint_id"] == whole
    ambiguous = cli("show", url, "thread-3", "--checkpoint", whole[:4])
    assert ambiguous.exit_code == 2 and "ambiguous" in ambiguous.stderr
    missing = cli("show", url, "thread-3", "--checkpoint", "ffffffff-0000")
    assert missing.exit_code == 3
