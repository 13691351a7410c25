"""``ckpt compact``: remove orphans on idle data, then reclaim space the store's own way."""

from __future__ import annotations

from typing import Annotated

import typer

from ckpt.cli.options import OutputOption, StoreArgument, resolve_store
from ckpt.cli.output import OutputFormat, human_bytes, resolve, write_json


def compact(
    url: StoreArgument = None,
    min_idle: Annotated[
        str, typer.Option(help="Leave data younger than this alone (writes may precede their checkpoint).")
    ] = "5m",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the orphans; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Compact without asking (cron).")] = False,
    output: OutputOption = None,
) -> None:
    """Remove orphans (writes without a checkpoint, unreferenced blobs, stale Redis keys) and reclaim space.

    SQLite runs VACUUM, PostgreSQL VACUUM (ANALYZE), MongoDB compact where allowed. Only data
    older than --min-idle is touched. Bytes are reported before and after.

    Example:
      ckpt compact sqlite:///agent.db --dry-run
      ckpt prune sqlite:///agent.db --keep-last 5 --yes && ckpt compact sqlite:///agent.db --yes
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.prune import compact as compact_store
    from ckpt.cli.console import confirm, info

    url = resolve_store(url, writes="compact")
    question = f"compact {redact(url)} (remove orphans older than {min_idle}, reclaim space)?"
    fmt = resolve(output)
    with open_store(url, write=not dry_run, create=False) as store:
        # A declined confirmation raises Aborted ("nothing changed"): exit 8 at the error boundary.
        done = compact_store(
            store, min_idle=min_idle, dry_run=dry_run, confirm=None if yes else lambda: confirm(question)
        )
    removed, before, after = done.removed, done.bytes_before, done.bytes_after
    body = {"store": redact(url), "dry_run": dry_run, "removed": removed, "bytes_before": before, "bytes_after": after}
    if dry_run:
        body["bytes_after_estimated"] = done.bytes_after_estimated
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json(body, fmt)
        return
    found = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in removed.items()) or "nothing"
    if before is None:
        sizes = "size unknown"
    elif after is None:
        sizes = f"{human_bytes(before)} now; cannot estimate the size after compacting"
    else:
        sizes = f"{human_bytes(before)} → {'~' if done.bytes_after_estimated else ''}{human_bytes(after)}"
        sizes += " (estimate)" if done.bytes_after_estimated else ""
    info(f"{'would remove' if dry_run else 'removed'} {found} in {redact(url)}; {sizes}")
