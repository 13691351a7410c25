"""Issue #19 item 16: no credential form ever reaches stdout, stderr or an export file.

Each form (userinfo, ``?password=``, ``?sslpassword=``, Redis ``?password=``, MongoDB userinfo and
``authMechanismProperties``) is run through every verb with ``-o json`` and the table output, on a
connection that works (PostgreSQL: the ``ckpt_secret`` role of scripts/services.sh) and on ones that
fail; every byte written (stdout, stderr, the export file, its header) is searched for the secret.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from ckpt.backends.core.urls import redact
from tests.conftest import Cli, sqlite_url
from tests.servers import server_url

PG_PASSWORD = "ckpt-secret-pw"  # scripts/services.sh gives the role ckpt_secret this password
SSL_SECRET = "S3cr3t-sslpass-19"
REDIS_SECRET = "S3cr3t-redis-19"
MONGO_SECRET = "S3cr3t-mongo-19"


def test_redact_masks_every_form() -> None:
    cases = {
        "postgresql://u:S3cr3t@h/db": "postgresql://u:***@h/db",
        "postgresql://127.0.0.1:5432/db?user=u&password=S3cr3t": "postgresql://127.0.0.1:5432/db?user=u&password=***",
        "postgresql://h/db?sslpassword=S3cr3t&sslmode=require": "postgresql://h/db?sslpassword=***&sslmode=require",
        "redis://h:6379/0?password=S3cr3t": "redis://h:6379/0?password=***",
        "redis://:S3cr3t@h:6379": "redis://:***@h:6379",
        "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:S3cr3t": (
            "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=***"
        ),
        "mongodb://h/?tlsCertificateKeyFilePassword=S3cr3t": "mongodb://h/?tlsCertificateKeyFilePassword=***",
        "host=h password='S3 cr3t' user=u": "host=h password=*** user=u",
        '{"url": "redis://h?PASSWORD=S3cr3t"}': '{"url": "redis://h?PASSWORD=***"}',
    }
    for text, masked in cases.items():
        assert redact(text) == masked
        assert "S3cr3t" not in redact(text) and "cr3t" not in redact(text)
    assert redact("x?password=&db=1 sqlite:///a.db") == "x?password=&db=1 sqlite:///a.db"
    assert redact("host=h password = S3cr3t") == "host=h password = ***"


def _pg_base() -> tuple[str, int, str]:
    parts = urlsplit(server_url("postgres"))
    return parts.hostname or "127.0.0.1", parts.port or 5432, parts.path.lstrip("/") or "postgres"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    base = server_url("postgres")
    schema = f"ckpt_secret_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _pg_forms(schema: str) -> dict[str, tuple[str, str]]:
    """name -> (URL that connects, the secret it holds)."""
    host, port, db = _pg_base()
    return {
        "userinfo": (f"postgresql://ckpt_secret:{PG_PASSWORD}@{host}:{port}/{db}?schema={schema}", PG_PASSWORD),
        "password=": (
            f"postgresql://{host}:{port}/{db}?user=ckpt_secret&password={PG_PASSWORD}&schema={schema}",
            PG_PASSWORD,
        ),
        "sslpassword=": (
            f"postgresql://postgres@{host}:{port}/{db}?sslpassword={SSL_SECRET}&schema={schema}",
            SSL_SECRET,
        ),
    }


def _assert_clean(secret: str, label: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text, f"{label}: the secret leaked:\n{text}"


def _file_text(path: Path) -> str:
    if not path.exists():
        return ""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def _verbs(url: str, tmp: Path, official: Path) -> list[tuple[str, ...]]:
    db = sqlite_url(official)
    return [
        ("list", url),
        ("list", url, "--sizes"),
        ("list", url, "--checkpoints"),
        ("show", url, "thread-1"),
        ("size", url),
        ("doctor", url),
        ("check", url, "--config", str(tmp / "budgets.toml")),
        ("diff", url, "thread-1"),
        ("replay", url, "thread-1"),
        ("export", url, str(tmp / "out.jsonl")),
        ("export", url, str(tmp / "out.jsonl.gz")),
        ("import", str(tmp / "seed.jsonl"), url),
        ("migrate", db, url),
        ("migrate", url, str(tmp / "back.jsonl")),
        ("migrate", url, sqlite_url(tmp / "back.db")),
        ("migrate", db, url, "--dry-run"),
        ("migrate", db, url, "--verify"),
        ("prune", url, "--keep-last", "1", "--dry-run"),
        ("prune", url, "--keep-last", "1", "--yes", "--min-idle", "0s"),
        ("compact", url, "--yes"),
    ]


def _run_every_verb(cli: Cli, url: str, secret: str, tmp: Path, official: Path, *, working: bool) -> None:
    (tmp / "budgets.toml").write_text("[budget]\nmax_thread_bytes = 1\n")
    for args in _verbs(url, tmp, official):
        styles: list[tuple[str, ...]] = [("-o", "json"), ("-o", "table")]
        if args[0] == "check":
            styles.append(("-o", "markdown"))
        if args[0] == "prune":
            styles.append(("-o", "json", "--report", "json"))
        if args[0] == "replay":
            styles = [(), ("-o", str(tmp / "replay.jsonl"))]
        for style in styles:
            full = (*args, *style)
            result = cli(*full)
            label = " ".join(redact(a) for a in full)
            if working:
                assert result.exit_code in (0, 1), f"{label}: exit {result.exit_code}: {result.stderr}"
            else:
                assert result.exit_code != 0, label
                assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1, label
            _assert_clean(secret, label, result.stdout, result.stderr)
            for produced in tmp.iterdir():
                _assert_clean(secret, f"{label} -> {produced.name}", _file_text(produced))


@pytest.mark.parametrize("form", ["userinfo", "password=", "sslpassword="])
def test_working_postgres_connections_never_print_the_password(
    cli: Cli, official_db: Path, tmp_path: Path, pg_schema: str, form: str
) -> None:
    url, secret = _pg_forms(pg_schema)[form]
    seed = tmp_path / "seed.jsonl"
    assert cli("export", sqlite_url(official_db), str(seed)).exit_code == 0
    assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
    _run_every_verb(cli, url, secret, tmp_path, official_db, working=True)
    header = _file_text(tmp_path / "back.jsonl").splitlines()[0]
    assert '"url":"postgresql://' in header and secret not in header


def test_export_header_never_stores_a_password(tmp_path: Path, official_db: Path) -> None:
    """The library path too: a JsonlStore given an unmasked URL masks it in the header."""
    from ckpt.backends.jsonl.store import JsonlStore

    out = tmp_path / "h.jsonl"
    with JsonlStore.open(str(out), write=True) as store:
        store.begin_copy("postgres", {"url": "postgresql://u:S3cr3t@h/db"}, "postgresql://h/db?password=S3cr3t")
    assert "S3cr3t" not in out.read_text()


def _failing_forms(tmp: Path) -> dict[str, tuple[str, str]]:
    host, port, db = _pg_base()
    mongo = urlsplit(server_url("mongodb"))
    mongo_host = f"{mongo.hostname}:{mongo.port}"
    return {
        "pg userinfo, wrong password": (
            f"postgresql://ckpt_secret:W{PG_PASSWORD}@{host}:{port}/{db}",
            f"W{PG_PASSWORD}",
        ),
        "pg password=, wrong password": (
            f"postgresql://{host}:{port}/{db}?user=ckpt_secret&password=W{PG_PASSWORD}",
            f"W{PG_PASSWORD}",
        ),
        "pg password=, closed port": (f"postgresql://127.0.0.1:1/{db}?user=u&password=S3cr3t-closed", "S3cr3t-closed"),
        "redis ?password=, closed port": (f"redis://127.0.0.1:1/0?password={REDIS_SECRET}", REDIS_SECRET),
        "mongodb userinfo": (f"mongodb://u:{MONGO_SECRET}@{mongo_host}/?directConnection=true", MONGO_SECRET),
        "mongodb authMechanismProperties": (
            f"mongodb://{mongo_host}/?directConnection=true&authMechanism=MONGODB-AWS"
            f"&authMechanismProperties=AWS_SESSION_TOKEN:{MONGO_SECRET}",
            MONGO_SECRET,
        ),
    }


@pytest.mark.parametrize(
    "form",
    [
        "pg userinfo, wrong password",
        "pg password=, wrong password",
        "pg password=, closed port",
        "redis ?password=, closed port",
        "mongodb userinfo",
        "mongodb authMechanismProperties",
    ],
)
def test_failing_connections_name_the_store_without_its_secret(
    cli: Cli, official_db: Path, tmp_path: Path, form: str
) -> None:
    url, secret = _failing_forms(tmp_path)[form]
    seed = tmp_path / "seed.jsonl"
    assert cli("export", sqlite_url(official_db), str(seed)).exit_code == 0
    _run_every_verb(cli, url, secret, tmp_path, official_db, working=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[str]:
    """A private valkey/redis server with ``requirepass`` (not the shared test server)."""
    binary = os.environ.get("CKPT_TEST_VALKEY_SERVER") or shutil.which("redis-server")
    if not binary:
        pytest.skip("no valkey-server/redis-server binary (CKPT_TEST_VALKEY_SERVER)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", REDIS_SECRET,
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0?password={REDIS_SECRET}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_redis_password_option_is_masked_on_a_server_that_accepts_it(
    cli: Cli, official_db: Path, tmp_path: Path, redis_with_password: str
) -> None:
    """The server authenticates the password (then lacks RedisJSON/RediSearch): one masked line."""
    seed = tmp_path / "seed.jsonl"
    assert cli("export", sqlite_url(official_db), str(seed)).exit_code == 0
    _run_every_verb(cli, redis_with_password, REDIS_SECRET, tmp_path, official_db, working=False)
