"""Where output goes: data to stdout, messages to stderr as one greppable line each."""

from __future__ import annotations

from rich.console import Console

from ckpt.backends.base import Store
from ckpt.backends.errors import DataError
from ckpt.backends.urls import redact

# soft_wrap keeps a long message on one line when stderr is a pipe (log grepping, tests).
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/] {redact(message)}", markup=True)


def info(message: str) -> None:
    stderr.print(redact(message), markup=False)


def finish_reads(store: Store) -> None:
    """After a read: name every row the store had to skip, and fail the command if there were any."""
    problems = store.read_problems()
    for problem in problems:
        warn(problem)
    if problems:
        raise DataError(f"{len(problems)} stored row(s) could not be read (see warnings); the rest was processed")
