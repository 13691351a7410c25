"""``ckpt export``: a store (or part of it) → a portable JSONL file."""

from __future__ import annotations

from typing import Annotated

import typer

from ckpt.cli.options import (
    AesKeyOption,
    OutputOption,
    ReportOption,
    ShardOption,
    SinceOption,
    ThreadOption,
    UntilOption,
    resolve_store,
    selection,
)
from ckpt.cli.output import OutputFormat, human_bytes, save_report, write_json


def export(
    url: Annotated[str, typer.Argument(help="Store URL to read.")],
    file: Annotated[
        str, typer.Argument(help="Target .jsonl or .jsonl.gz file, or - for stdout; {shard} becomes K-of-N.")
    ],
    thread: ThreadOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    decode: Annotated[
        bool, typer.Option("--decode", help="Add a readable tagged-JSON view beside the raw payloads.")
    ] = False,
    aes_key: AesKeyOption = None,
    shard: ShardOption = None,
    report_file: ReportOption = None,
    output: OutputOption = None,
) -> None:
    """Export checkpoints with their pending writes to a portable JSONL file (lossless).

    Payloads are copied byte for byte, so `ckpt import` restores exactly what was stored.
    The file appears only when the export is complete.

    Example:
      ckpt export sqlite:///agent.db backup.jsonl.gz
      ckpt export sqlite:///agent.db - --thread 'user-42' --decode | jq .decoded
      ckpt export postgresql://db/app 'backup-{shard}.jsonl.gz' --shard auto/8
      ckpt import backup-*-of-8.jsonl.gz sqlite:///restored.db
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import CorruptRecordError
    from ckpt.backends.core.shards import shard_path
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.api import export as export_store
    from ckpt.cli.console import info, warn
    from ckpt.cli.progress import copy_progress
    from ckpt.formats.payloads import PayloadDecoder, aes_key_from
    from ckpt.formats.state import decode_record

    url = resolve_store(url)
    chosen = selection(thread, since, until, shard=shard)
    decoder = PayloadDecoder(aes_key_from(aes_key)) if decode else None
    with open_store(url) as source:
        total = source.count(chosen)
    with copy_progress(total, "exporting") as progress:
        report = export_store(
            url, file, chosen, progress=progress,
            decorate=(lambda record: decode_record(record, decoder)) if decoder is not None else None,
        )  # fmt: skip
    written = shard_path(file, chosen.shard)
    for message in [*report.decode_errors, *report.skipped]:
        warn(message)
    if report.checkpoints_read == 0:
        warn(_nothing_matched(thread, since, until))
    summary = (
        f"exported {report.checkpoints_written} checkpoints ({report.writes_written} writes, "
        f"{human_bytes(report.bytes_read)}) from {redact(url)} to {written}"
    )
    body = {"source": redact(url), "target": written, **report.as_json(), "decode_errors": len(report.decode_errors)}
    if report_file is not None:
        save_report(report_file, "export", body, chosen.shard)
    if output in (OutputFormat.json, OutputFormat.jsonl) and file != "-":
        write_json(body, output)
    else:
        info(summary)
    if report.skipped:
        raise CorruptRecordError(
            f"{len(report.skipped)} stored row(s) could not be read (see warnings); the rest was exported"
        )
    if report.decode_errors:
        raise CorruptRecordError(
            f"{len(report.decode_errors)} checkpoint(s) could not be decoded (raw payloads were exported as stored)"
        )


def _nothing_matched(thread: str | None, since: str | None, until: str | None) -> str:
    from ckpt.cli.options import selection_words

    narrowed = selection_words(thread, since, until)
    return f"no checkpoints matched{narrowed}: nothing was exported" if narrowed else "the store holds no checkpoints"
