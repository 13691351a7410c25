"""``ckpt prune``: restic-style retention for checkpoint stores, planned first, deleted in batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ckpt.cli.options import (
    OutputOption,
    ReportOrJsonOption,
    ShardOption,
    StoreArgument,
    ThreadOption,
    parse_shard,
    resolve_store,
)
from ckpt.cli.output import OutputFormat, human_bytes, resolve, save_report, write_json

if TYPE_CHECKING:
    from ckpt.backends.core.policy import PruneReport, ThreadPlan


def prune(
    url: StoreArgument = None,
    keep_last: Annotated[
        Optional[int], typer.Option(help="Keep the N newest checkpoints of each thread and namespace.")
    ] = None,
    keep_within: Annotated[Optional[str], typer.Option(help="Keep checkpoints younger than this (e.g. 7d).")] = None,
    keep_daily: Annotated[
        Optional[int], typer.Option(help="Keep the newest checkpoint of each of the last N days.")
    ] = None,
    keep_weekly: Annotated[
        Optional[int], typer.Option(help="Keep the newest checkpoint of each of the last N weeks.")
    ] = None,
    delete_idle: Annotated[
        Optional[str], typer.Option(help="Delete whole threads not written for this long (e.g. 90d).")
    ] = None,
    thread: ThreadOption = None,
    metadata: Annotated[
        Optional[list[str]], typer.Option("--metadata", help="Only threads whose latest metadata has KEY=VALUE.")
    ] = None,
    exempt: Annotated[Optional[str], typer.Option(help="Never touch threads matching this glob.")] = None,
    min_idle: Annotated[
        str, typer.Option(help="Skip threads written within this long (a graph may be running).")
    ] = "5m",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and the bytes it frees; delete nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (cron).")] = False,
    report: ReportOrJsonOption = None,
    shard: ShardOption = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="Checkpoints per delete transaction (default: 20000 for PostgreSQL, planned and deleted "
            "batch by batch on the server; 5000 elsewhere).",
        ),
    ] = None,
    jobs: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="PostgreSQL: connections sharing the plan and the deletes by thread-id ranges "
            "(default: 2 for stores of 20,000 checkpoints or more, else 1).",
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Delete old checkpoints by retention policy; the newest of each thread always stays.

    The rules combine like restic's: a checkpoint is kept when any --keep-* rule keeps it.
    Subgraph checkpoints follow their root checkpoint, DeltaChannel histories are kept whole,
    and threads written in the last --min-idle are skipped. The plan comes first: --dry-run
    prints it; a real run asks on a terminal and needs --yes otherwise. Two runs on one store
    never both delete (the second exits 6).

    Example:
      ckpt prune sqlite:///agent.db --keep-last 10 --dry-run
      ckpt prune postgresql://db/app --keep-within 30d --keep-daily 7 --yes --report json
      ckpt prune sqlite:///agent.db --delete-idle 90d --exempt 'vip-*' --yes
      ckpt prune postgresql://db/app --keep-last 20 --yes --shard auto/4 --report 'prune-{shard}.json'
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import CkptError
    from ckpt.backends.core.policy import Policy, parse_duration
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.prune import prune as prune_store
    from ckpt.cli.console import confirm

    url = resolve_store(url, writes="prune")
    policy = Policy(
        keep_last=keep_last,
        keep_within=parse_duration(keep_within, "--keep-within") if keep_within else None,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        delete_idle=parse_duration(delete_idle, "--delete-idle") if delete_idle else None,
        thread_glob=thread,
        metadata=tuple(_pair(item) for item in metadata or ()),
        exempt=exempt,
        min_idle=parse_duration(min_idle, "--min-idle"),
        shard=parse_shard(shard),
    )
    policy.validate()
    fmt = resolve(output)
    machine = report == "json" or fmt in (OutputFormat.json, OutputFormat.jsonl)
    rows: list[ThreadPlan] = []
    with open_store(url, write=not dry_run, create=False) as store:
        # A declined confirmation raises Aborted ("nothing deleted"): exit 8 at the error boundary.
        totals = prune_store(
            store, policy, dry_run=dry_run, reasons=dry_run and machine, jobs=jobs, batch_size=batch_size,
            confirm=None if yes else lambda plan: confirm(_question(url, plan)),
            on_thread=rows.append if dry_run or fmt is OutputFormat.table else None,
        )  # fmt: skip
    if totals.threads == 0 and thread is not None:
        from ckpt.cli.console import warn
        from ckpt.cli.options import selection_words

        warn(f"no threads matched{selection_words(thread, None, None)}: nothing to prune")
    if report not in (None, "json"):
        body = {"store": redact(url), **totals.as_json()}
        if policy.shard is not None:
            body["shard"] = policy.shard.as_json()
        save_report(report, "prune", body, policy.shard)
    _show(url, totals, rows if totals.dry_run or totals.checkpoints_to_delete == 0 else [], fmt, report)
    if totals.errors:
        raise CkptError(f"{len(totals.errors)} delete batch(es) failed; the rest was deleted (see report)")


def _pair(text: str) -> tuple[str, str]:
    from ckpt.backends.core.errors import UsageError

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--metadata takes KEY=VALUE, got {text!r}")
    return key, value


def _question(url: str, totals: PruneReport) -> str:
    from ckpt.backends.core.urls import redact

    return (
        f"delete {totals.checkpoints_to_delete} checkpoints ({totals.writes_to_delete} writes, "
        f"{human_bytes(totals.bytes_to_free)}) in {totals.threads_pruned} threads of {redact(url)}?"
    )


def _show(url: str, totals: PruneReport, rows: list[ThreadPlan], fmt: OutputFormat, report: Optional[str]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ckpt.backends.core.urls import redact
    from ckpt.cli.console import info, stdout, warn

    if report == "json" or fmt in (OutputFormat.json, OutputFormat.jsonl):
        body = {"store": redact(url), **totals.as_json()}
        if totals.dry_run:  # the plan, thread by thread, with what each keeps and why
            body["plan"] = [row.as_json() for row in rows]
        write_json(body, OutputFormat.json if report == "json" else fmt)  # --report json = -o json
        return
    if rows and fmt is OutputFormat.table:
        table = Table(
            "thread", "checkpoints", "delete", "writes", "bytes", "note", title="prune plan", title_justify="left"
        )
        for row in rows:
            note = row.skipped or ("whole thread" if row.whole_thread else "")
            table.add_row(
                Text(row.thread_id),
                str(row.checkpoints),
                str(row.doomed),
                str(row.writes),
                human_bytes(row.bytes),
                note,
            )
        stdout().print(table)
    verb = "would delete" if totals.dry_run else "deleted"
    count = totals.checkpoints_to_delete if totals.dry_run else totals.checkpoints_deleted
    info(
        f"{verb} {count} of {totals.checkpoints} checkpoints ({totals.writes_to_delete} writes, "
        f"{human_bytes(totals.bytes_to_free)}) in {totals.threads_pruned} of {totals.threads} threads"
        + (f"; skipped: {', '.join(f'{n} {why}' for why, n in totals.skipped.items())}" if totals.skipped else "")
    )
    for error in totals.errors:
        warn(error)
