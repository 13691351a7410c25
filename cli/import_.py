"""``ckpt import``: JSONL exports → any store, idempotently."""

from __future__ import annotations

from typing import Annotated

import typer

from ckpt.cli.options import (
    DEFAULT_BATCH,
    OutputOption,
    ReportOption,
    ShardOption,
    ThreadOption,
    resolve_store,
    selection,
)
from ckpt.cli.output import OutputFormat, save_report, write_json


def import_(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE... URL",
            help="One or more .jsonl or .jsonl.gz files made by `ckpt export` (the shards of a sharded export "
            "together), then the target store URL; a new SQLite file is created with the saver's schema.",
            show_default=False,
        ),
    ],
    thread: ThreadOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Checkpoints per transaction.")] = DEFAULT_BATCH,
    shard: ShardOption = None,
    report_file: ReportOption = None,
    output: OutputOption = None,
) -> None:
    """Import JSONL exports into a store. Checkpoints already there are left alone (safe to rerun).

    A malformed line stops the import with nothing written: every file is checked first, and a new
    SQLite file (written as the files are read) is removed again.
    The files of a sharded export go in together; shards of another split are refused, and
    shards not given are named in a warning.

    Example:
      ckpt import backup.jsonl.gz sqlite:///restored.db
      ckpt import backup-*-of-8.jsonl.gz postgresql://db/app
    """
    from ckpt.backends.core.errors import UsageError
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.api import import_ as import_files
    from ckpt.cli.console import info
    from ckpt.cli.progress import copy_progress

    if len(paths) < 2:
        raise UsageError("give the export file(s) and then the target store URL: ckpt import FILE... URL")
    *files, url = paths
    url = resolve_store(url, writes="import")
    chosen = selection(thread, shard=shard)
    with copy_progress(None, "importing") as progress:
        report = import_files(
            files, url, chosen, batch_size=batch_size, progress=progress,
            on_total=progress.set_total if progress is not None else None, on_missing_shards=_warn_missing,
        )  # fmt: skip
    body = {"source": files[0] if len(files) == 1 else files, "target": redact(url), **report.as_json()}
    if report_file is not None:
        save_report(report_file, "import", body, chosen.shard)
    if output in (OutputFormat.json, OutputFormat.jsonl):
        write_json(body, output)
    else:
        info(
            f"imported {report.checkpoints_written} checkpoints and {report.writes_written} writes into {redact(url)}"
            f" ({report.checkpoints_skipped} checkpoints and {report.writes_skipped} writes were already there)"
        )


def _warn_missing(shards: list[int]) -> None:
    from ckpt.cli.console import warn

    warn(f"shard(s) {', '.join(map(str, shards))} of this export were not given: their threads are not imported")
