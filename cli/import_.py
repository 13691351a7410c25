"""``ckpt import``: a JSONL export → any store, idempotently."""

from __future__ import annotations

from typing import Annotated

import typer

from ckpt.cli.options import DEFAULT_BATCH, OutputOption, ThreadOption, resolve_store, selection
from ckpt.cli.output import OutputFormat, write_json


def import_(
    file: Annotated[str, typer.Argument(help="A .jsonl or .jsonl.gz file made by `ckpt export`.")],
    url: Annotated[str, typer.Argument(help="Target store URL; a new SQLite file is created with the saver's schema.")],
    thread: ThreadOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Checkpoints per transaction.")] = DEFAULT_BATCH,
    output: OutputOption = None,
) -> None:
    """Import a JSONL export into a store. Checkpoints already there are left alone (safe to rerun).

    The whole file is checked first: a malformed line stops the import before anything is written.

    Example:
      ckpt import backup.jsonl.gz sqlite:///restored.db
    """
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.api import import_ as import_file
    from ckpt.cli.console import info
    from ckpt.cli.progress import copy_progress

    url = resolve_store(url, writes="import")
    with copy_progress(None, "importing") as progress:
        report = import_file(
            file, url, selection(thread), batch_size=batch_size, progress=progress,
            on_total=progress.set_total if progress is not None else None,
        )  # fmt: skip
    if output in (OutputFormat.json, OutputFormat.jsonl):
        write_json({"source": file, "target": redact(url), **report.as_json()}, output)
    else:
        info(
            f"imported {report.checkpoints_written} checkpoints and {report.writes_written} writes into {redact(url)}"
            f" ({report.checkpoints_skipped} checkpoints and {report.writes_skipped} writes were already there)"
        )
