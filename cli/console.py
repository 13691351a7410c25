"""Where output goes: data to stdout, messages to stderr as one greppable line each.

The rich consoles are made on first use: importing rich costs ~50 ms of start-up, which
``ckpt --help``, ``--version`` and piped output never need.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from ckpt.backends.core.base import Store


_teardown_skippable = False


def skip_teardown() -> None:
    """The command has written its output and closed everything it opened: when it ends well,
    ``main`` may end the process without the interpreter's teardown (freeing every module and
    object: ~50 ms after typer, the stores and the formats are loaded, measured in
    bench/bench_list.py, where ``ckpt list`` is timed as a whole process). Commands that leave
    work to finalizers or ``atexit`` (files flushed on close, pools joined) must not call this."""
    global _teardown_skippable
    _teardown_skippable = True


def teardown_skippable() -> bool:
    return _teardown_skippable


@cache
def stderr() -> Console:
    from rich.console import Console

    # soft_wrap keeps a long message on one line when stderr is a pipe (log grepping, tests).
    return Console(stderr=True, highlight=False, soft_wrap=True)


@cache
def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    from ckpt.backends.core.urls import redact

    stderr().print(f"[yellow]warning:[/] {redact(message)}", markup=True)


def info(message: str) -> None:
    from ckpt.backends.core.urls import redact

    stderr().print(redact(message), markup=False)


def finish_reads(store: Store) -> None:
    """After a read: name every row the store had to skip, and fail the command if there were any."""
    from ckpt.backends.core.errors import DataError

    problems = store.read_problems()
    for problem in problems:
        warn(problem)
    if problems:
        raise DataError(f"{len(problems)} stored row(s) could not be read (see warnings); the rest was processed")
