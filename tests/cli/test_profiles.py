"""Contexts: named stores in ckpt.toml with ${ENV} expansion, @NAME, --context and CKPT_URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckpt.backends.core.errors import ExitCode
from tests.conftest import Cli, sqlite_url


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, official_db: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home-config"))
    monkeypatch.delenv("CKPT_URL", raising=False)
    monkeypatch.setenv("AGENT_DB", str(official_db))
    (tmp_path / "ckpt.toml").write_text(
        '[contexts.local]\nurl = "sqlite:///${AGENT_DB}"\n\n'
        '[contexts.remote]\nurl = "postgresql://app:${SECRET_PW}@127.0.0.1:1/app"\n'
    )
    return tmp_path


def _threads(result: object) -> list[str]:
    return [row["thread_id"] for row in json.loads(result.stdout)]  # type: ignore[attr-defined]


def test_context_at_name_and_ckpt_url(
    cli: Cli, project: Path, official_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = ["thread-1", "thread-2", "thread-3"]
    assert _threads(cli("--context", "local", "list", "-o", "json")) == expected
    assert _threads(cli("list", "@local", "-o", "json")) == expected
    assert cli("show", "@local", "thread-3", "-o", "json").exit_code == 0
    none = cli("list", "-o", "json")
    assert none.exit_code == ExitCode.USAGE and "no store given" in none.stderr
    monkeypatch.setenv("CKPT_URL", sqlite_url(official_db))
    assert _threads(cli("list", "-o", "json")) == expected


def test_user_config_file_is_read_too(cli: Cli, project: Path, official_db: Path) -> None:
    user = project / "home-config" / "ckpt"
    user.mkdir(parents=True)
    (user / "config.toml").write_text(f'[contexts.mine]\nurl = "{sqlite_url(official_db)}"\n')
    assert cli("list", "@mine", "-o", "json").exit_code == 0


def test_bad_contexts_are_usage_errors_and_passwords_stay_hidden(
    cli: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = cli("list", "@nope")
    assert unknown.exit_code == ExitCode.USAGE
    assert (
        unknown.stderr == "error: no context 'nope' (known: local, remote) in ckpt.toml or ~/.config/ckpt/config.toml\n"
    )
    unset = cli("list", "@remote")
    assert unset.exit_code == ExitCode.USAGE and "uses ${SECRET_PW}, which is not set" in unset.stderr
    monkeypatch.setenv("SECRET_PW", "hunter2")
    failing = cli("list", "@remote")
    assert failing.exit_code == ExitCode.UNAVAILABLE
    assert "hunter2" not in failing.stderr and "app:***@127.0.0.1:1" in failing.stderr


@pytest.mark.parametrize(
    "text", [b"[contexts.local\nurl = 1\n", b'[budget]\nname = "\xff"\n'], ids=["syntax", "not-utf8"]
)
def test_a_bad_ckpt_toml_is_a_usage_error_naming_the_file(
    cli: Cli, project: Path, official_db: Path, text: bytes
) -> None:
    """Contexts (the CLI) and budgets (the library) read TOML through one loader: the same message."""
    (project / "ckpt.toml").write_bytes(text)
    for args in (["list", "@local"], ["check", sqlite_url(official_db)]):
        bad = cli(*args)
        assert bad.exit_code == ExitCode.USAGE, args
        assert "error: ckpt.toml: invalid TOML (" in bad.stderr, args
