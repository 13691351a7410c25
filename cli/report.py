"""``ckpt report merge``: the report files of a sharded job added up, and the shards missing."""

from __future__ import annotations

from typing import Annotated

import typer

from ckpt.cli.options import OutputOption
from ckpt.cli.output import OutputFormat, resolve, write_json

app = typer.Typer(
    help="Report files written with --report FILE (one per shard of a sharded job)."
    "\n\nExample:\n\n  ckpt report merge reports/migrate-*.json",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("merge")
def merge(
    files: Annotated[list[str], typer.Argument(metavar="REPORT...", help="Report files of one job.")],
    output: OutputOption = None,
) -> None:
    """Add up the reports of one job's shards and say which shards have not reported.

    Numbers are summed, lists joined; a verdict (ok, clean, current) holds only if it holds in
    every report. Exit 0 when every shard reported and every verdict holds, 1 otherwise (a shard
    missing: its pod failed or has not run), 2 for reports of different jobs or the same shard twice.

    Example:
      ckpt report merge /reports/migrate-*.json
      ckpt report merge r-*.json -o json | jq .totals.checkpoints_written
    """
    from ckpt.backends.core.errors import CkptError
    from ckpt.backends.ops.reports import merge_reports
    from ckpt.cli.console import info, warn

    merged = merge_reports(files)
    fmt = resolve(output)
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json(merged.as_json(), fmt)
    else:
        split = f" of {merged.shards} shards" if merged.shards is not None else ""
        info(f"{merged.command}: {merged.reports} report(s){split}")
        for name, value in merged.totals.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                info(f"  {name}: {value}")
    if merged.missing:
        shown = ", ".join(map(str, merged.missing))
        raise CkptError(f"shard(s) {shown} of {merged.shards} have not reported: the job is not complete")
    if not merged.ok:
        warn("a shard's report says its run did not succeed (see the verdicts in -o json)")
        raise CkptError(f"{merged.command} did not succeed in every shard")
