"""``ckpt copy-thread``, ``ckpt fork`` and ``ckpt delete``: the thread operations the savers lack
(issue #22), thin shells over :mod:`ckpt.backends.ops.threads`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ckpt.cli.options import OutputOption, ReportOrJsonOption, ShardOption, StoreArgument, parse_shard, resolve_store
from ckpt.cli.output import OutputFormat, human_bytes, resolve, save_report, write_json

if TYPE_CHECKING:
    from ckpt.backends.ops.threads import DeletePlan, DeleteReport, ThreadCopyReport

OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace NEW when it exists (its thread is deleted first).")
]


def copy_thread(
    url: StoreArgument = None,
    source_thread: Annotated[str, typer.Argument(metavar="SRC", help="The thread to copy.")] = "",
    new_thread: Annotated[str, typer.Argument(metavar="NEW", help="The new thread id.")] = "",
    to: Annotated[Optional[str], typer.Option("--to", help="Copy into this store instead (any URL).")] = None,
    overwrite: OverwriteOption = False,
    output: OutputOption = None,
) -> None:
    """Copy a whole thread under a new id: every namespace, the parent chain, pending writes.

    BaseCheckpointSaver.copy_thread semantics: checkpoint ids, metadata and writes are kept, only
    the thread id changes; the target files the copy as its saver would (PostgreSQL blobs, Redis
    latest pointers and write registries). An unknown SRC exits 3; an existing NEW exits 2 unless
    --overwrite.

    Example:
      ckpt copy-thread sqlite:///agent.db thread-3 thread-3-copy
      ckpt copy-thread sqlite:///agent.db thread-3 thread-3 --to postgresql://db/app
    """
    from ckpt.backends import open_store
    from ckpt.backends.ops.threads import copy_thread as copy

    url = resolve_store(url, writes=None if to else "copy-thread")
    with open_store(url, write=to is None, create=False) as source:
        if to is None:
            totals = copy(source, source_thread, new_thread, overwrite=overwrite)
        else:
            with open_store(resolve_store(to, writes="copy-thread"), write=True) as target:
                totals = copy(source, source_thread, new_thread, target=target, overwrite=overwrite)
    _show_copy(totals, "copied", output)


def fork(
    url: StoreArgument = None,
    thread: Annotated[str, typer.Argument(metavar="THREAD", help="The thread to fork.")] = "",
    at: Annotated[str, typer.Option("--at", help="The checkpoint id (or unique prefix) the fork ends at.")] = "",
    as_: Annotated[str, typer.Option("--as", help="The new thread id.")] = "",
    ns: Annotated[str, typer.Option("--ns", help="The namespace of --at (default: the root graph).")] = "",
    overwrite: OverwriteOption = False,
    output: OutputOption = None,
) -> None:
    """A new thread whose history ends at one checkpoint: its ancestors and it, with its writes.

    The app resumes or replays the new thread from there (an interrupt at that checkpoint is
    pending again). History is copied as it was, ids unchanged; see docs/cli.md for why no
    "fork" checkpoint is made. A checkpoint not in THREAD exits 3.

    Example:
      ckpt fork sqlite:///agent.db thread-3 --at 1f0b2c4d --as thread-3-retry
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import UsageError
    from ckpt.backends.ops.threads import fork as fork_thread

    if not at or not as_:
        raise UsageError("fork needs --at CHECKPOINT_ID and --as NEW")
    url = resolve_store(url, writes="fork")
    with open_store(url, write=True, create=False) as store:
        totals = fork_thread(store, thread, at, as_, overwrite=overwrite, checkpoint_ns=ns)
    _show_copy(totals, "forked", output)


def _show_copy(totals: ThreadCopyReport, verb: str, output: Optional[OutputFormat]) -> None:
    from ckpt.cli.console import info

    fmt = resolve(output)
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json(totals.as_json(), fmt)
        return
    at = f" at {totals.at_checkpoint}" if totals.at_checkpoint else ""
    info(
        f"{verb} thread {totals.source_thread!r}{at} to {totals.new_thread!r}: {totals.checkpoints} checkpoints, "
        f"{totals.writes} writes, {totals.namespaces} namespaces"
    )


def delete(
    url: StoreArgument = None,
    thread: Annotated[
        Optional[list[str]], typer.Option("--thread", "-t", help="Delete threads matching this glob (repeatable).")
    ] = None,
    run: Annotated[
        Optional[list[str]],
        typer.Option("--run", help="Delete the checkpoints whose metadata run_id is this (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; delete nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (cron).")] = False,
    report: ReportOrJsonOption = None,
    shard: ShardOption = None,
    output: OutputOption = None,
) -> None:
    """Delete whole threads (delete_thread) or runs (delete_for_runs), then prove nothing is left.

    Threads go with everything their saver filed under them (orphan writes, PostgreSQL blobs,
    Redis keys, registries and latest pointers); run checkpoints go with their writes behind the
    integrity guard. The plan comes first: --dry-run prints it; a real run asks on a terminal
    and needs --yes otherwise. Afterwards a residue scan counts what the store still holds of
    them (exit 7 when anything is left, or when a writer wrote to a deleted thread meanwhile).
    A glob matching no thread or a run with no checkpoint exits 3 (with --shard, a shard
    holding none of them has nothing to do).

    Example:
      ckpt delete sqlite:///agent.db --thread 'user-42-*' --dry-run
      ckpt delete postgresql://db/app --run 1f0b-run --yes --report json
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import IntegrityError, UsageError
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.threads import delete as delete_store
    from ckpt.backends.ops.threads import plan_delete, residue_message
    from ckpt.cli.console import confirm

    if not thread and not run:
        raise UsageError("name what to delete: --thread GLOB or --run RUN_ID")
    url = resolve_store(url, writes="delete")
    with open_store(url, write=not dry_run, create=False) as store:
        plan = plan_delete(store, thread_globs=thread or (), run_ids=run or (), shard=parse_shard(shard))
        done = delete_store(store, plan, dry_run=dry_run, confirm=None if yes else lambda p: confirm(_question(url, p)))
    if report not in (None, "json"):
        save_report(report, "delete", {"store": redact(url), **done.as_json()}, plan.shard)
    _show_delete(url, done, resolve(output), report)
    if not done.dry_run and not done.clean:
        raise IntegrityError(residue_message(done))


def _question(url: str, plan: DeletePlan) -> str:
    from ckpt.backends.core.urls import redact

    what = f"{len(plan.thread_ids)} threads" if plan.thread_ids else ""
    if plan.keys:
        what += (" and " if what else "") + f"{len(plan.keys)} checkpoints of {len(plan.run_ids)} runs"
    size = human_bytes(plan.bytes)
    return f"delete {what} ({plan.checkpoints} checkpoints, {plan.writes} writes, {size}) of {redact(url)}?"


def _show_delete(url: str, done: DeleteReport, fmt: OutputFormat, report: Optional[str]) -> None:
    from ckpt.backends.core.urls import redact
    from ckpt.cli.console import info, warn

    if report == "json" or fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json({"store": redact(url), **done.as_json()}, OutputFormat.json if report == "json" else fmt)
        return
    plan = done.plan
    verb = "would delete" if done.dry_run else "deleted"
    count = plan.checkpoints if done.dry_run else done.deleted_checkpoints
    info(
        f"{verb} {count} checkpoints ({plan.writes} writes, {human_bytes(plan.bytes)}) of "
        f"{len(plan.thread_ids)} threads and {len(plan.run_ids)} runs"
    )
    if not done.dry_run:
        left = sum(done.residue.values())
        info(
            f"residue scan: {left} left"
            + (f" ({', '.join(f'{k} {v}' for k, v in done.residue.items() if v)})" if left else "")
        )
    for line in done.late_writes:
        warn(f"late write: {line}")
