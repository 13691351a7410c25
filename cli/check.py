"""``ckpt check``: size budgets in CI, exit 1 on a breach."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ckpt.cli.options import StoreArgument, ThreadOption, resolve_store
from ckpt.cli.output import human_bytes, write_json

if TYPE_CHECKING:
    from ckpt.backends.core.memory import MemoryStore
    from ckpt.backends.ops.budgets import CheckReport


def check(
    url: StoreArgument = None,
    config: Annotated[
        Optional[Path], typer.Option("--config", help="Budget file (default: ./ckpt.toml, ./pyproject.toml).")
    ] = None,
    baseline: Annotated[
        Optional[Path], typer.Option("--baseline", help="A saved `check -o json` report: fail only on growth.")
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="table, json or markdown (for a PR comment).")
    ] = "table",
    integrity: Annotated[
        bool,
        typer.Option(
            "--integrity",
            help="Instead of budgets: find checkpoints whose referenced values are gone (exit 7 if any).",
        ),
    ] = False,
    thread: ThreadOption = None,
) -> None:
    """Check a store against size budgets; exit 0 within, 1 on a breach, 2 on a config error.

    With --integrity, scan for damage instead: kept checkpoints that name a channel version whose
    value the store no longer has (left by an earlier prune, a script, a TTL), by thread; exit 7
    when any is found. Read-only, like every check.

    Budgets: max_checkpoint_bytes, max_thread_bytes, max_channel_bytes,
    max_checkpoints_per_thread, max_store_bytes; for the long-term memory in the same
    database: max_memory_bytes, max_memory_items, max_namespace_bytes, max_namespace_items
    (sizes as bytes or "256KiB", "20MB").

    Example:
      ckpt check sqlite:///agent.db
      ckpt check sqlite:///agent.db -o markdown > budget.md
      ckpt check sqlite:///agent.db -o json > baseline.json; ckpt check sqlite:///agent.db --baseline baseline.json
      ckpt check postgresql://db/app --integrity -o json
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import CkptError, UsageError
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.budgets import check as check_budgets
    from ckpt.backends.ops.budgets import load_budgets, wants_memory
    from ckpt.cli.console import finish_reads

    url = resolve_store(url)
    if output not in ("table", "json", "markdown"):
        raise UsageError(f"--output takes table, json or markdown, got {output!r}")
    if integrity:
        _integrity(url, thread, output)
        return
    budgets, source = load_budgets(config)
    previous = _baseline(baseline) if baseline else None
    with open_store(url) as store, memory_beside(url) if wants_memory(budgets) else nullcontext() as memory:
        report = check_budgets(store, budgets, source, previous, memory)
        finish_reads(store)
    if output == "json":
        write_json({"store": redact(url), **report.as_json()})
    elif output == "markdown":
        typer.echo(markdown(url, report))
    else:
        _table(url, report)
    if not report.ok:  # exit 1: a breach is a finding, like a failed test
        raise CkptError(f"{len(report.breaches)} budget(s) exceeded, first: {_describe(report.breaches[0].as_json())}")


@contextmanager
def memory_beside(url: str) -> Iterator[MemoryStore | None]:
    """The long-term memory store in the same place as the checkpoints, or ``None`` where there is
    none (no memory: 0 bytes, within every budget) or the store kind has no memory layout."""
    from ckpt.backends import open_memory
    from ckpt.backends.core.errors import NotAStoreError, UsageError

    try:
        memory = open_memory(url)
    except (NotAStoreError, UsageError):
        yield None
        return
    with memory:
        yield memory


def _baseline(path: Path) -> dict[str, int]:
    import orjson

    from ckpt.backends.core.errors import UsageError

    try:
        data = orjson.loads(path.read_bytes())
        return {str(k): int(v) for k, v in data["measurements"].items()}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: not a `ckpt check -o json` report ({exc})") from exc


def _describe(breach: dict[str, object]) -> str:
    where = ", ".join(f"{k} {v!r}" for k, v in breach.items() if k not in ("budget", "limit", "actual"))
    return f"{breach['budget']} {breach['actual']} > {breach['limit']}" + (f" ({where})" if where else "")


def _table(url: str, report: CheckReport) -> None:
    from ckpt.backends.core.urls import redact
    from ckpt.cli.console import info

    totals = f"{human_bytes(report.store_bytes)}, {report.threads} threads, {report.checkpoints} checkpoints"
    info(f"{redact(url)}: {totals}; budgets from {report.source}")
    for breach in report.breaches:
        info(f"  over budget: {_describe(breach.as_json())}")
    if report.tolerated:
        info(f"  {report.tolerated} breach(es) no larger than in the baseline were tolerated")
    if report.ok:
        info("  all budgets met")


def markdown(url: str, report: CheckReport) -> str:
    from ckpt.backends.core.urls import redact

    lines = [
        f"### ckpt budget check: {'✅ within budget' if report.ok else '❌ over budget'}",
        "",
        f"`{redact(url)}`: {human_bytes(report.store_bytes)} in {report.checkpoints} checkpoints, "
        f"{report.threads} threads.",
        "",
    ]
    if report.breaches:
        lines += ["| budget | limit | actual | where |", "|---|---|---|---|"]
        for breach in report.breaches:
            where = ", ".join(f"{k}=`{v}`" for k, v in breach.where.items()) or "store"
            lines.append(f"| {breach.budget} | {breach.limit} | {breach.actual} | {where} |")
    return "\n".join(lines)


def _integrity(url: str, thread: str | None, output: str) -> None:
    """``--integrity``: the damage scan (:mod:`ckpt.backends.ops.integrity`), reported and mapped to exit 7."""
    from rich.table import Table
    from rich.text import Text

    from ckpt.backends import Selection, open_store
    from ckpt.backends.core.errors import IntegrityError
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.integrity import scan
    from ckpt.cli.console import finish_reads, info, stdout

    with open_store(url) as store:
        report = scan(store, Selection(thread_glob=thread))
        finish_reads(store)
    if output == "json":
        write_json({"store": redact(url), **report.as_json()})
    elif report.damaged:
        table = Table("thread", "ns", "checkpoint", "channel", "why", title="damaged checkpoints", title_justify="left")
        for d in report.damaged:
            table.add_row(Text(d.thread_id), Text(d.checkpoint_ns), d.checkpoint_id, Text(d.channel), d.why)
        stdout().print(table)
    info(
        f"{report.checkpoints} checkpoints read, {len(report.damaged)} missing values in {len(report.threads)} threads"
    )
    if report.damaged:
        named = ", ".join(repr(t) for t in report.threads[:5]) + (", ..." if len(report.threads) > 5 else "")
        raise IntegrityError(f"{len(report.threads)} thread(s) have checkpoints with missing values: {named}")
