"""``ckpt size``: where the bytes are, by thread, namespace or channel, and how fast they grow."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from ckpt.cli.options import (
    OutputOption,
    SinceOption,
    StoreArgument,
    ThreadOption,
    UntilOption,
    resolve_store,
    selection,
)
from ckpt.cli.output import OutputFormat, emit_rows, human_bytes, resolve, write_json

GROWTH_ADVICE = (
    "hint: every checkpoint of a thread above holds its whole state again, so the thread costs "
    "O(steps x state): keep large values out of the state (store them elsewhere and keep a key), "
    "use a DeltaChannel for append-only channels such as messages, or bound the history with "
    "`ckpt prune --keep-last N`; see docs/cli.md#growing-threads"
)


class By(str, Enum):
    thread = "thread"
    ns = "ns"
    channel = "channel"
    day = "day"


def size(
    url: StoreArgument = None,
    by: Annotated[By, typer.Option("--by", help="Group bytes by thread, namespace, channel or day.")] = By.thread,
    top: Annotated[int, typer.Option("--top", min=1, help="Show the N largest.")] = 20,
    thread: ThreadOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    output: OutputOption = None,
) -> None:
    """Show the bytes a store holds by thread, namespace, channel or day, largest first.

    Channel sizes come from the byte spans of each checkpoint's values (nothing is decoded).
    Threads whose checkpoint grows at every step (a full-snapshot store) are flagged, with what
    to do about them.

    Example:
      ckpt size sqlite:///agent.db
      ckpt size sqlite:///agent.db --by channel --top 5
      ckpt size postgresql://db/app --by day -o json
    """
    from ckpt.backends import open_store
    from ckpt.backends.ops.sizes import GROWTH_STEPS, measure
    from ckpt.cli.console import finish_reads, info, warn

    url = resolve_store(url)
    fmt = resolve(output)
    with open_store(url) as store:
        report = measure(store, selection(thread, since, until), top=top)
        finish_reads(store)
    if report.checkpoints == 0:
        from ckpt.cli.options import selection_words

        narrowed = selection_words(thread, since, until)
        warn(f"no checkpoints matched{narrowed}" if narrowed else "the store holds no checkpoints")
    if fmt is OutputFormat.json:
        write_json(report.as_json(top))
        return
    body = report.as_json(top)
    if by is By.thread:
        rows = [{"name": r["thread_id"], "bytes": r["bytes"]} for r in body["top_threads"]]
    elif by is By.day:
        rows = [{"name": day, "bytes": n} for day, n in body["growth_per_day"].items()]
    else:
        rows = body["namespaces" if by is By.ns else "channels"]
    title = f"{human_bytes(report.store_bytes)} in {report.checkpoints} checkpoints, {report.threads} threads"
    emit_rows(iter(rows), fmt, ("name", "bytes"), title=f"{title}; by {by.value}", human={"bytes": human_bytes})
    for thread_id in report.growing_threads:
        warn(
            f"thread {thread_id!r}: its checkpoint grew at every one of more than {GROWTH_STEPS} steps (full snapshots)"
        )
    if report.growing_threads:
        info(GROWTH_ADVICE)
