"""``ckpt upgrade``: bring a store written by an old saver release to the current saver, in place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ckpt.cli.options import OutputOption, ReportOption, ShardOption, StoreArgument, parse_shard, resolve_store
from ckpt.cli.output import OutputFormat, resolve, save_report, write_json

if TYPE_CHECKING:
    from ckpt.backends.ops.upgrade import UpgradeReport


def upgrade(
    url: StoreArgument = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Upgrade without asking (cron).")] = False,
    backup: Annotated[
        Optional[str], typer.Option(help="Export the store to this .jsonl(.gz) file first (kept if it exists).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Afterwards compare the store as today's saver reads it with the backup.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Checkpoints rewritten per transaction.")] = 500,
    shard: ShardOption = None,
    report_file: ReportOption = None,
    output: OutputOption = None,
) -> None:
    """Rewrite a store written by an old saver release into the current saver's layout, in place.

    Names the layout generation found and plans first (--dry-run lists each step and how much it
    touches). Each step is idempotent and each batch one transaction: a run killed at any point is
    finished by the next. A store whose layout ckpt does not recognise is never touched (exit 5);
    a current one is left as it is. With --shard, only that shard's threads are rewritten (and
    backed up and verified; {shard} in --backup becomes K-of-N); an upgrade with store-wide
    steps runs once, without --shard.

    Example:
      ckpt upgrade sqlite:///agent.db --dry-run
      ckpt upgrade sqlite:///agent.db --backup before.jsonl.gz --verify --yes
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.upgrade import upgrade as upgrade_store
    from ckpt.cli.console import confirm

    url = resolve_store(url, writes="upgrade")
    fmt = resolve(output)

    def ask(plan: UpgradeReport) -> bool:
        return confirm(f"upgrade {redact(url)}: {_summary(plan)}?", change="upgrade")

    with open_store(url, write=not dry_run, create=False) as store:
        # A declined confirmation raises Aborted ("nothing changed"): exit 8 at the error boundary.
        report = upgrade_store(
            store,
            dry_run=dry_run,
            backup=backup,
            verify=verify,
            confirm=None if yes else ask,
            batch_size=batch_size,
            shard=parse_shard(shard),
        )
    if report_file is not None:
        save_report(report_file, "upgrade", {"store": redact(url), **report.as_json()}, report.shard)
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json({"store": redact(url), **report.as_json()}, fmt)
        return
    _print(redact(url), report)


def _summary(report: UpgradeReport) -> str:
    parts = [f"{step['description']} ({step['count']} rows)" for step in report.steps]
    if report.checkpoints_to_rewrite:
        parts.append(f"put the Sends of {report.checkpoints_to_rewrite} v<4 checkpoints inline")
    return "; ".join(parts) or "nothing to do"


def _print(url: str, report: UpgradeReport) -> None:
    from ckpt.cli.console import info

    info(f"{url}: {report.kind}, {report.generation}")
    if not report.changes:
        info("already current: nothing to do")
        return
    info(f"{'would' if report.dry_run else 'did'}: {_summary(report)}")
    if report.backup:
        info(f"backup: {report.backup}")
    if report.verified is not None:
        info(f"verified: {report.verified['checkpoints']} checkpoints read the same by today's saver")
    if not report.dry_run:
        info("the store is current" if report.current else "the store is not current yet: run upgrade again")
