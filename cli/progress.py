"""A rich progress bar on a terminal; silence in cron jobs and pipes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ckpt.backends.ops.transfer import Progress as ProgressCallback
from ckpt.cli.console import stderr


@contextmanager
def copy_progress(total: int | None, label: str) -> Iterator[ProgressCallback | None]:
    console = stderr()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("checkpoints"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda checkpoints, _bytes: bar.advance(task, checkpoints)
