"""Where output goes: data to stdout, messages to stderr as one greppable line each.

The rich consoles are made on first use: importing rich costs ~50 ms of start-up, which
``ckpt --help``, ``--version`` and piped output never need.

Neither console reads rich markup or emoji codes: what they print (messages, thread ids, table
cells and titles) holds stored and user-given text, in which ``[bold]``, ``[/x]`` or ``:smile:``
must come out as typed. Styles are given as ``Text`` styles, never as markup.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from ckpt.backends.core.base import Store


@cache
def stderr() -> Console:
    from rich.console import Console

    # soft_wrap keeps a long message on one line when stderr is a pipe (log grepping, tests).
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


@cache
def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, markup=False, emoji=False)


def line(label: str, style: str, message: str) -> None:
    """``label: message`` on stderr, the label styled, the message as typed (passwords masked)."""
    from rich.text import Text

    from ckpt.backends.core.urls import redact

    stderr().print(Text.assemble((f"{label}:", style), " ", redact(message)))


def error(message: str) -> None:
    line("error", "bold red", message)


def warn(message: str) -> None:
    line("warning", "yellow", message)


def info(message: str) -> None:
    from rich.text import Text

    from ckpt.backends.core.urls import redact

    stderr().print(Text(redact(message)))


def finish_reads(store: Store) -> None:
    """After a read: name every row the store had to skip, and fail the command if there were any."""
    from ckpt.backends.core.errors import DataError

    problems = store.read_problems()
    for problem in problems:
        warn(problem)
    if problems:
        raise DataError(f"{len(problems)} stored row(s) could not be read (see warnings); the rest was processed")


def confirm(question: str, *, change: str = "delete") -> bool:
    """Destructive work goes ahead after a yes on a terminal (``--yes`` skips the question);
    off a terminal, without ``--yes``, it is refused."""
    import sys

    import typer

    from ckpt.backends.core.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError(f"refusing to {change} without --yes when not on a terminal (try --dry-run first)")
    return bool(typer.confirm(question, err=True))
