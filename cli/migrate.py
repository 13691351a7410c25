"""``ckpt migrate``: any store → any store, streamed, idempotent, resumable, verifiable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ckpt.cli.options import (
    DEFAULT_BATCH,
    OutputOption,
    ReportOption,
    ShardOption,
    SinceOption,
    ThreadOption,
    UntilOption,
    resolve_store,
    selection,
    with_query,
)
from ckpt.cli.output import OutputFormat, human_bytes, write_json

if TYPE_CHECKING:
    from ckpt.backends.core.base import Selection
    from ckpt.backends.ops.transfer import CopyReport
    from ckpt.backends.ops.verify import VerifyReport


def migrate(
    source: Annotated[str, typer.Argument(help="Store URL to copy from (or an export .jsonl[.gz]).")],
    target: Annotated[str, typer.Argument(help="Store URL to copy into; created with the saver's schema if empty.")],
    thread: ThreadOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be copied; write nothing.")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Afterwards, compare both stores checkpoint by checkpoint.")
    ] = False,
    jobs: Annotated[
        Optional[int],
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Worker processes, each copying a range of threads. Default: 2 (one per core, at "
            "most 2) for 20,000+ checkpoints into PostgreSQL, else 1. Each worker adds ~90 MB.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Checkpoints per transaction.")] = DEFAULT_BATCH,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Copy around records the target cannot take; exit 5.")
    ] = False,
    ttl: Annotated[
        Optional[float],
        typer.Option(
            "--ttl", metavar="MINUTES", help="Redis targets: keys expire after MINUTES (RedisSaver's default_ttl)."
        ),
    ] = None,
    shard: ShardOption = None,
    report_file: ReportOption = None,
    output: OutputOption = None,
) -> None:
    """Copy checkpoints between any two stores, idempotently: a rerun copies only what is missing.

    Ids, versions, namespaces and task ids are never rewritten. Killed midway, a rerun
    completes the copy; --verify then proves it.

    Example:
      ckpt migrate sqlite:///agent.db postgresql://user:pw@db:5432/app --verify
      ckpt migrate sqlite:///agent.db 'postgresql://db/app?schema=lg' --thread 'user-*' --dry-run
      ckpt migrate postgresql://db/app backup.jsonl.gz
      ckpt migrate sqlite:///big.db postgresql://db/app --shard auto/8 --verify --report 'r-{shard}.json'
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import CkptError, DataError
    from ckpt.backends.core.shards import shard_path
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.api import migrate as migrate_stores
    from ckpt.backends.ops.api import plan_migration
    from ckpt.backends.ops.parallel import auto_jobs, cap_jobs
    from ckpt.cli.console import info, warn
    from ckpt.cli.progress import copy_progress

    source = resolve_store(source)
    target = resolve_store(target, writes="migrate")
    chosen = selection(thread, since, until, shard=shard)
    target = shard_path(target, chosen.shard)  # into export files: one per shard, 'part-{shard}.jsonl'
    if ttl is not None:
        target = with_query(
            target, "ttl", str(ttl), only_schemes=("redis", "rediss", "redis+cluster", "rediss+cluster"), option="--ttl"
        )
    if dry_run:
        plan = plan_migration(source, target, chosen)
        if plan.checkpoints == 0:
            warn(_nothing_matched(thread, since, until))
        if output in (OutputFormat.json, OutputFormat.jsonl):
            write_json({"dry_run": True, "source": redact(source), "target": redact(target), **plan.as_json()}, output)
        else:
            info(
                f"would copy {plan.to_copy} of {plan.checkpoints} checkpoints in {plan.threads} threads "
                f"({plan.writes} writes, {human_bytes(plan.bytes)}) from {redact(source)} to {redact(target)}; "
                f"{plan.already_present} already there"
            )
        return
    with open_store(source) as src:
        total = src.count(chosen)
    if total == 0:
        warn(_nothing_matched(thread, since, until))
    workers = auto_jobs(target, total, source)
    if jobs is not None:
        workers, why = cap_jobs(jobs)
        if why:
            warn(f"--jobs {jobs}: using {workers} worker(s), capped at {why}")
    with copy_progress(total, "migrating") as progress:
        done = migrate_stores(
            source, target, chosen, verify=verify, jobs=workers, batch_size=batch_size, progress=progress,
            skip_bad=skip_bad,
        )  # fmt: skip
    report, checked = done.copied, done.verified
    if total is None and report.checkpoints_read == 0:
        warn(_nothing_matched(thread, since, until))
    _report(source, target, report, checked, output, workers, report_file, chosen)
    if report.skipped:
        raise DataError(f"{len(report.skipped)} record(s) could not be copied (see warnings); everything else was")
    if checked is not None and not checked.ok:  # exit 1, like diff(1) on a difference
        raise CkptError(
            f"verify failed: {checked.missing} missing, {checked.extra} extra, {checked.different} different "
            f"checkpoint(s) in {len(checked.threads_with_differences)} thread(s)"
        )


def _report(
    source: str,
    target: str,
    report: CopyReport,
    checked: VerifyReport | None,
    output: OutputFormat | None,
    jobs: int,
    report_file: str | None,
    chosen: Selection,
) -> None:
    from ckpt.backends.core.urls import redact
    from ckpt.cli.console import info, warn
    from ckpt.cli.output import save_report

    for line in report.skipped:
        warn(f"skipped {line}")
    body = {"source": redact(source), "target": redact(target), "jobs": jobs, **report.as_json()}
    if checked is not None:
        body["verify"] = checked.as_json()
    if chosen.shard is not None:
        body["shard"] = chosen.shard.as_json()
    if report_file is not None:
        save_report(report_file, "migrate", body, chosen.shard)
    if output in (OutputFormat.json, OutputFormat.jsonl):
        write_json(body, output)
        return
    if report.checkpoints_written == 0 and report.writes_written == 0 and not report.skipped:
        info(f"nothing new to copy: all {report.checkpoints_read} checkpoints are already in {redact(target)}")
    else:
        info(
            f"copied {report.checkpoints_written} checkpoints and {report.writes_written} writes "
            f"({human_bytes(report.bytes_read)} read) from {redact(source)} to {redact(target)}; "
            f"{report.checkpoints_skipped} checkpoints were already there"
        )
    for kind, count in sorted(report.losses.items()):
        warn(f"{count} value(s) could not be kept exactly by the target: {kind}")
    if checked is not None:
        verdict = "identical" if checked.ok else "DIFFERENT"
        info(f"verify ({checked.mode}): {checked.checkpoints} checkpoints in {checked.threads} threads {verdict}")
        for example in checked.examples:
            warn(example)


def _nothing_matched(thread: str | None, since: str | None, until: str | None) -> str:
    from ckpt.cli.options import selection_words

    narrowed = selection_words(thread, since, until)
    return f"no checkpoints matched{narrowed}: nothing to copy" if narrowed else "the source holds no checkpoints"
