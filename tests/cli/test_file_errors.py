"""Issue #19 items 17, 19 and 23: the file system and damaged files give one line, a documented
exit code and no partial file; export targets are locked; JSONL lines are bounded; a WAL store on
read-only media is read.

Full disks and read-only media are real where this runs as root: a 64 KiB tmpfs (filled up to a
few KiB) and a read-only bind mount. Without root those tests skip, and the monkeypatched ENOSPC
tests below still run.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends.core.errors import ExitCode, LockedError
from tests.conftest import Cli, sqlite_url
from tests.servers import server_url


def _one_line(result: Any, code: int) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount ({done.stderr.strip()}): needs root")


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs with about 8 KiB left."""
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs root (tmpfs)")
    target = tmp_path / "full"
    target.mkdir()
    _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target))
    try:
        (target / "filler").write_bytes(b"\0" * 56 * 1024)
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


@pytest.fixture
def ro_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only bind mount of a directory (chmod 555 does not stop root)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only mount needs root")
    source, target = tmp_path / "ro-src", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    _mount("--bind", str(source), str(target))
    try:
        _mount("-o", "remount,ro,bind", str(target))
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


def _leftovers(directory: Path, *keep: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


# -- item 17: damaged SQLite files ----------------------------------------------------------------


@pytest.fixture
def malformed_db(tmp_path: Path) -> Path:
    """The example store with bytes overwritten inside every third page after the first two."""
    path = tmp_path / "malformed.db"
    shutil.copyfile(Path(__file__).parents[2] / "examples" / "agent.db", path)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        for page in range(2, size // 4096, 3):
            handle.seek(page * 4096 + 100)
            handle.write(b"\xff" * 200)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("list", "{db}", "--sizes"),
        ("list", "{db}", "--checkpoints"),
        ("show", "{db}", "thread-1"),
        ("export", "{db}", "{tmp}/out.jsonl"),
        ("export", "{db}", "{tmp}/out.jsonl.gz"),
        ("size", "{db}"),
        ("doctor", "{db}"),
        ("check", "{db}", "--integrity"),
        ("replay", "{db}", "thread-1", "-o", "{tmp}/r.jsonl"),
        ("migrate", "{db}", "sqlite:///{tmp}/m.db"),
        ("migrate", "{db}", "{tmp}/m.jsonl"),
        ("prune", "{db}", "--keep-last", "1", "--yes", "--min-idle", "0s"),
        ("compact", "{db}", "--yes", "--min-idle", "0s"),
    ],
    ids=lambda a: " ".join(a[:1] + a[2:3]),
)
def test_a_malformed_sqlite_file_is_one_line_and_leaves_nothing(
    cli: Cli, malformed_db: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    filled = [a.format(db=malformed_db, tmp=tmp_path) for a in args]
    result = cli(*filled)
    # compact's VACUUM reports a damaged file as SQLITE_FULL: exit 4, one line, all the same
    _one_line(result, ExitCode.UNAVAILABLE if args[0] == "compact" else ExitCode.DATA)
    assert _leftovers(tmp_path, malformed_db.name) == []


# -- item 17: full disk, read-only directory, no such directory -----------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("export", "{db}", "{full}/o.jsonl"),
        ("export", "{db}", "{full}/o.jsonl.gz"),
        ("migrate", "{db}", "{full}/o.jsonl"),
        ("replay", "{db}", "thread-1", "-o", "{full}/r.jsonl"),
        ("import", "{dump}", "sqlite:///{full}/i.db"),
        ("migrate", "{db}", "sqlite:///{full}/m.db"),
    ],
    ids=lambda a: f"{a[0]} {a[-1].rsplit('/', 1)[-1]}",
)
def test_a_full_disk_is_one_line_exit_4_and_leaves_no_file(
    cli: Cli, official_db: Path, tmp_path: Path, full_dir: Path, args: tuple[str, ...]
) -> None:
    dump = tmp_path / "dump.jsonl"
    assert cli("export", sqlite_url(official_db), str(dump)).exit_code == 0
    filled = [a.format(db=official_db, full=full_dir, dump=dump) for a in args]
    result = cli(*filled)
    _one_line(result, ExitCode.UNAVAILABLE)
    assert any(s in result.stderr for s in ("No space left on device", "disk is full", "disk I/O error"))
    assert _leftovers(full_dir, "filler") == []


@pytest.mark.parametrize(
    "args",
    [
        ("export", "{db}", "{ro}/o.jsonl"),
        ("export", "{db}", "{ro}/o.jsonl.gz"),
        ("replay", "{db}", "thread-1", "-o", "{ro}/r.jsonl"),
        ("migrate", "{db}", "sqlite:///{ro}/m.db"),
    ],
    ids=lambda a: f"{a[0]} {a[-1].rsplit('/', 1)[-1]}",
)
def test_a_read_only_directory_is_one_line_exit_4(
    cli: Cli, official_db: Path, ro_dir: Path, args: tuple[str, ...]
) -> None:
    result = cli(*[a.format(db=official_db, ro=ro_dir) for a in args])
    _one_line(result, ExitCode.UNAVAILABLE)
    assert _leftovers(ro_dir) == []


def test_replay_into_a_missing_directory_is_not_found(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    result = cli("replay", sqlite_url(official_db), "thread-1", "-o", str(tmp_path / "nodir" / "x.jsonl"))
    _one_line(result, ExitCode.NOT_FOUND)
    assert not (tmp_path / "nodir").exists()


def test_replay_of_a_missing_thread_leaves_no_file(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    result = cli("replay", sqlite_url(official_db), "no-such-thread", "-o", str(tmp_path / "x.jsonl"))
    _one_line(result, ExitCode.NOT_FOUND)
    assert _leftovers(tmp_path) == []


class _FillingFile:
    """A real file that runs out of space after ``room`` bytes, as a full disk does (ENOSPC)."""

    def __init__(self, path: str, mode: str, room: int) -> None:
        self._file = open(path, mode)  # noqa: SIM115 - closed in close()
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@pytest.mark.parametrize("name", ["o.jsonl", "o.jsonl.gz"])
def test_enospc_from_the_writer_is_one_line_and_no_partial_file(
    cli: Cli, official_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The same without root: the export file's writes fail with ENOSPC after 4 KiB (monkeypatched
    ``open`` where export files are made), so the translation and clean-up paths run as on a real full disk."""
    from ckpt.backends.core import files

    monkeypatch.setattr(files, "open", lambda path, mode: _FillingFile(path, mode, 4096), raising=False)
    result = cli("export", sqlite_url(official_db), str(tmp_path / name))
    _one_line(result, ExitCode.UNAVAILABLE)
    assert "No space left on device" in result.stderr
    assert _leftovers(tmp_path) == []


def test_mongodb_wrong_credentials_are_one_line(cli: Cli) -> None:
    base = server_url("mongodb")
    url = base.replace("mongodb://", "mongodb://nobody:wrong-pw-19@", 1)
    result = cli("list", url)
    _one_line(result, ExitCode.UNAVAILABLE)
    assert "wrong-pw-19" not in result.stderr


# -- item 17/23: partial files of killed runs, one writer per export file -------------------------


def test_a_killed_exports_partial_and_lock_files_are_taken_over_by_the_next_run(
    cli: Cli, official_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    Path(f"{out}.partial").write_bytes(b'{"format": "ckpt/jsonl", "version"')  # what SIGKILL leaves
    Path(f"{out}.lock").write_bytes(b"")
    assert cli("export", sqlite_url(official_db), str(out)).exit_code == 0
    assert _leftovers(tmp_path) == ["out.jsonl"]
    assert json.loads(out.read_text().splitlines()[0])["format"] == "ckpt/jsonl"


def test_a_second_export_to_the_same_file_is_refused_while_the_first_writes(
    cli: Cli, official_db: Path, tmp_path: Path
) -> None:
    from ckpt.backends.jsonl.store import JsonlStore

    out = tmp_path / "out.jsonl"
    with JsonlStore.open(str(out), write=True) as first:
        first.begin_copy("test", {}, "test")
        first.write([])  # the partial file is open and locked
        result = cli("export", sqlite_url(official_db), str(out))
        _one_line(result, ExitCode.LOCKED)
        with pytest.raises(LockedError):
            JsonlStore.open(str(out), write=True).write([])
    assert out.exists() and len(out.read_text().splitlines()) == 1  # the first one's file, whole
    assert _leftovers(tmp_path) == ["out.jsonl"]


def test_concurrent_export_processes_one_wins_the_other_is_locked(official_db: Path, tmp_path: Path) -> None:
    """Real processes: each either writes the whole file or exits 6; never two exit 0 on one file
    unless they ran one after the other (then the file is whole either way)."""
    big = tmp_path / "big.db"
    conn = sqlite3.connect(big)
    src = sqlite3.connect(official_db)
    src.backup(conn)
    src.close()
    rows = conn.execute("SELECT * FROM checkpoints").fetchall()
    for i in range(300):
        conn.executemany(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(f"copy-{i}", *r[1:]) for r in rows],
        )
    conn.commit()
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    out = tmp_path / "out.jsonl"
    ckpt = str(Path(__file__).parents[2] / ".venv" / "bin" / "ckpt")
    procs = [
        subprocess.Popen([ckpt, "export", str(big), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    results = [(p.wait(120), p.stderr.read().decode() if p.stderr else "") for p in procs]
    codes = [code for code, _ in results]
    assert set(codes) <= {0, ExitCode.LOCKED}, results
    assert 0 in codes
    for code, err in results:
        if code == ExitCode.LOCKED:
            assert err.startswith("error: another ckpt run is writing") and len(err.strip().splitlines()) == 1
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 301 * len(rows)
    assert _leftovers(tmp_path, "big.db") == ["out.jsonl"]


# -- item 23: bounded lines ------------------------------------------------------------------------


def test_a_line_over_the_limit_is_refused_naming_it(
    cli: Cli, official_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "dump.jsonl"
    assert cli("export", sqlite_url(official_db), str(dump)).exit_code == 0
    lines = dump.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[2])
    record["extra"] = {"padding": "x" * 100_000}
    lines[2] = json.dumps(record).encode() + b"\n"
    dump.write_bytes(b"".join(lines))
    monkeypatch.setenv("CKPT_JSONL_MAX_LINE", "65536")
    target = tmp_path / "t.db"
    result = cli("import", str(dump), sqlite_url(target))
    _one_line(result, ExitCode.DATA)
    assert f"{dump}:3: line longer than 65536 bytes" in result.stderr and "CKPT_JSONL_MAX_LINE" in result.stderr
    assert not target.exists()
    monkeypatch.setenv("CKPT_JSONL_MAX_LINE", "200000")
    assert cli("import", str(dump), sqlite_url(target)).exit_code == 0


def test_the_line_reader_reads_no_more_than_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 20 MB line under a 1 MiB limit is refused after reading ~1 MiB of it, not all of it."""
    from ckpt.backends.jsonl.store import _bounded_lines

    monkeypatch.setenv("CKPT_JSONL_MAX_LINE", str(1 << 20))
    path = tmp_path / "huge.jsonl"
    path.write_bytes(b'{"format": "ckpt/jsonl", "version": 1}\n' + b'{"x": "' + b"a" * 20_000_000 + b'"}\n')
    asked: list[int] = []
    with path.open("rb") as handle:
        real = handle.readline

        def readline(size: int = -1) -> bytes:
            asked.append(size)
            return real(size)

        handle.readline = readline  # type: ignore[method-assign]
        lines = _bounded_lines(str(path), handle)
        assert next(lines)[0] == 1
        with pytest.raises(Exception, match="line longer than 1048576 bytes"):
            next(lines)
    assert asked and all(0 < size <= (1 << 20) + 1 for size in asked)


def test_an_export_line_over_the_limit_is_refused_and_no_file_is_left(
    cli: Cli, official_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CKPT_JSONL_MAX_LINE", "2048")
    result = cli("export", sqlite_url(official_db), str(tmp_path / "o.jsonl"))
    _one_line(result, ExitCode.DATA)
    assert "CKPT_JSONL_MAX_LINE" in result.stderr
    assert _leftovers(tmp_path) == []


# -- item 19: a WAL store on read-only media --------------------------------------------------------


def test_a_wal_store_on_read_only_media_is_read_and_writes_exit_4(
    cli: Cli, official_db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if os.geteuid() != 0:
        pytest.skip("a read-only mount needs root")
    source, media = tmp_path / "src", tmp_path / "media"
    source.mkdir()
    media.mkdir()
    db = source / "w.db"
    src, dst = sqlite3.connect(official_db), sqlite3.connect(db)
    src.backup(dst)
    src.close()
    assert dst.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    dst.close()
    assert not Path(f"{db}-wal").exists()
    dump = tmp_path / "dump.jsonl"
    assert cli("export", sqlite_url(official_db), str(dump)).exit_code == 0
    _mount("--bind", str(source), str(media))
    try:
        _mount("-o", "remount,ro,bind", str(media))
        url = sqlite_url(media / "w.db")
        reads = [
            ("list", url),
            ("list", url, "--sizes"),
            ("show", url, "thread-1"),
            ("export", url, str(tmp_path / "o.jsonl")),
            ("size", url),
            ("doctor", url, "-o", "json"),
            ("check", url, "--integrity"),
            ("replay", url, "thread-1"),
            ("diff", url, "thread-1"),
        ]
        for args in reads:
            caplog.clear()
            result = cli(*args)
            assert result.exit_code in (0, 1 if args[0] == "diff" else 0), (args, result.stderr)
            assert "immutable=1" in caplog.text, args
        doctor = cli("doctor", url, "-o", "json")
        assert "immutable=1" in doctor.stdout
        for args in (
            ("prune", url, "--keep-last", "1", "--yes"),
            ("compact", url, "--yes"),
            ("import", str(dump), url),
        ):
            _one_line(cli(*args), ExitCode.UNAVAILABLE)
    finally:
        subprocess.run(["umount", str(media)], check=False)


# -- item 15: concurrent first runs into an empty PostgreSQL schema ---------------------------------


def test_concurrent_first_write_opens_create_the_schema_once() -> None:
    import psycopg

    from ckpt.backends.postgres.store import PostgresStore

    base = server_url("postgres")
    for _ in range(4):
        schema = f"ckpt_race_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
        errors: list[BaseException] = []
        barrier = threading.Barrier(6)

        def first_run(
            url: str = url, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors
        ) -> None:
            try:
                barrier.wait()
                PostgresStore.open(url, write=True).close()
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=first_run) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        try:
            assert errors == []
            with psycopg.connect(base, autocommit=True) as conn:
                versions = conn.execute(f'SELECT v FROM "{schema}".checkpoint_migrations ORDER BY v').fetchall()
            assert [v for (v,) in versions] == list(range(len(versions))) and versions
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_concurrent_cli_migrates_into_an_empty_schema_all_succeed(official_db: Path) -> None:
    import psycopg

    base = server_url("postgres")
    schema = f"ckpt_race_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    ckpt = str(Path(__file__).parents[2] / ".venv" / "bin" / "ckpt")
    try:
        procs = [
            subprocess.Popen(
                [ckpt, "migrate", str(official_db), url, "-j", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(3)
        ]
        results = [(p.wait(120), p.stderr.read().decode() if p.stderr else "") for p in procs]
        assert all(code == 0 for code, _ in results), results
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
