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
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import UsageError
    from ckpt.backends.core.urls import is_jsonl_path, redact
    from ckpt.backends.jsonl.store import JsonlStore
    from ckpt.backends.ops.transfer import copy_records
    from ckpt.cli.console import info
    from ckpt.cli.progress import copy_progress

    url = resolve_store(url)
    if not is_jsonl_path(file) or file == "-":
        raise UsageError(f"import source must be a .jsonl or .jsonl.gz file, got {file!r}")
    with JsonlStore.open(file) as source:
        total = source.validate()
        with open_store(url, write=True) as target, copy_progress(total, "importing") as progress:
            report = copy_records(
                source,
                target,
                selection(thread),
                source_url=file,
                batch_size=batch_size,
                progress=progress,
                validated=True,
            )
    if output is OutputFormat.json:
        write_json({"source": file, "target": redact(url), **report.as_json()})
    else:
        info(
            f"imported {report.checkpoints_written} checkpoints and {report.writes_written} writes into {redact(url)}"
            f" ({report.checkpoints_skipped} checkpoints and {report.writes_skipped} writes were already there)"
        )
