"""A rich progress bar on a terminal; silence in cron jobs and pipes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ckpt.cli.console import stderr


class Bar:
    """The progress callback of a copy, whose total may be learnt once the copy has started."""

    def __init__(self, bar: Any, task: Any) -> None:
        self._bar, self._task = bar, task

    def __call__(self, checkpoints: int, _bytes: int) -> None:
        self._bar.advance(self._task, checkpoints)

    def set_total(self, total: int | None) -> None:
        self._bar.update(self._task, total=total)


@contextmanager
def copy_progress(total: int | None, label: str) -> Iterator[Bar | None]:
    console = stderr()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("checkpoints"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield Bar(bar, task)
