"""Options shared by several commands, and parsing of their values."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ckpt.cli.output import OutputFormat

if TYPE_CHECKING:
    from ckpt.backends.core.base import Selection
    from ckpt.backends.core.shards import Shard

# The default of --batch-size: ckpt.backends.ops.transfer.DEFAULT_BATCH, written out so that
# building the commands' help imports no store code (tests/cli/test_startup.py checks they agree).
DEFAULT_BATCH = 2000

StoreArgument = Annotated[
    Optional[str],
    typer.Argument(help="Store URL, an export .jsonl[.gz], or @NAME (default: --context NAME, then $CKPT_URL)."),
]


# The store argument of each verb that deletes from or writes into an existing store. A context
# that the working directory's ckpt.toml shadows is refused there (cli/profiles.py).
def resolve_store(url: str | None, *, writes: str | None = None) -> str:
    """A store argument with contexts applied (``@NAME``, ``--context``, ``$CKPT_URL``). ``writes``:
    the verb, when this is the store the command deletes from or writes into (a context shadowed by
    the working directory's ckpt.toml is then refused unless ``--context-file`` names the file)."""
    from ckpt.cli.profiles import resolve

    return resolve(url, writes=writes)


OutputOption = Annotated[
    Optional[OutputFormat],
    typer.Option("--output", "-o", help="Output format (default: table on a terminal, jsonl when piped)."),
]
ThreadOption = Annotated[
    Optional[str], typer.Option("--thread", "-t", help="Only threads whose id matches this glob, e.g. 'user-*'.")
]
SinceOption = Annotated[
    Optional[str],
    typer.Option(help="Only checkpoints written at or after this time: ISO date/time or an age like 7d, 12h, 30m."),
]
UntilOption = Annotated[
    Optional[str], typer.Option(help="Only checkpoints written before this time (same forms as --since).")
]
ShardOption = Annotated[
    Optional[str],
    typer.Option(
        "--shard",
        metavar="K/N",
        help="Only shard K of N (K from 0) of the threads, split by a hash of the thread id: N runs, "
        "K = 0..N-1, each alone and in any order, cover the store exactly once. auto/N takes K from "
        "$JOB_COMPLETION_INDEX (a Kubernetes Indexed Job). Each shard takes its own lock.",
        show_default=False,
    ),
]
ReportOption = Annotated[
    Optional[str],
    typer.Option(
        "--report",
        metavar="FILE",
        help="Also write the JSON report to FILE ({shard} becomes K-of-N); `ckpt report merge` adds them up.",
        show_default=False,
    ),
]
ReportOrJsonOption = Annotated[
    Optional[str],
    typer.Option(
        "--report",
        metavar="FILE",
        help="Also write the JSON report to FILE ({shard} becomes K-of-N; an audit trail, and what "
        "`ckpt report merge` adds up). The word 'json' instead means -o json (kept for cron scripts).",
    ),
]
"""``--report`` of the destructive verbs, which took only ``json`` before report files existed."""
AesKeyOption = Annotated[
    Optional[str],
    typer.Option(
        "--aes-key",
        envvar="LANGGRAPH_AES_KEY",
        show_envvar=True,
        help="Key of LangGraph's EncryptedSerializer, to show encrypted payloads decrypted.",
    ),
]


def parse_time(text: str, *, now: float | None = None) -> float:
    """``2024-05-01``, ``2024-05-01T12:00:00+02:00`` or an age (``7d``) → epoch seconds (UTC if naive)."""
    from ckpt.backends.core.policy import duration_seconds

    age = duration_seconds(text)
    if age is not None:
        reference = now if now is not None else datetime.now(timezone.utc).timestamp()
        return reference - age
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        from ckpt.backends.core.errors import UsageError

        raise UsageError(f"cannot read time {text!r}: use an ISO date/time or an age like 7d, 12h, 30m") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def selection(
    thread: str | None = None,
    since: str | None = None,
    until: str | None = None,
    ns: str | None = None,
    shard: str | None = None,
) -> Selection:
    from ckpt.backends.core.base import Selection

    return Selection(
        thread_glob=thread,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        checkpoint_ns=ns,
        shard=parse_shard(shard),
    )


def parse_shard(text: str | None) -> Shard | None:
    """``--shard K/N`` or ``auto/N`` (``None`` when not given)."""
    if text is None:
        return None
    from ckpt.backends.core.shards import parse_shard as parse

    return parse(text)


def iso_time(epoch: float | None) -> str | None:
    """``2026-11-27T19:08:54Z`` (UTC, whole seconds)."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def with_query(url: str, name: str, value: str, *, only_schemes: tuple[str, ...], option: str) -> str:
    """``url`` with ``name=value`` added to its query; refuses stores the option does not apply to."""
    from urllib.parse import quote

    from ckpt.backends.core.errors import UsageError
    from ckpt.backends.core.urls import scheme_of

    if scheme_of(url) not in only_schemes:
        raise UsageError(f"{option} applies to {', '.join(s + '://' for s in only_schemes)} stores only")
    return f"{url}{'&' if '?' in url else '?'}{name}={quote(value)}"


def selection_words(thread: str | None, since: str | None, until: str | None, ns: str | None = None) -> str:
    """`` --thread 'x*' --since 7d``: the options that narrowed a selection, for a message
    saying it matched nothing (empty when none did)."""
    words = [
        f" {flag} {value!r}"
        for flag, value in (("--thread", thread), ("--since", since), ("--until", until), ("--ns", ns))
        if value is not None
    ]
    return "".join(words)
