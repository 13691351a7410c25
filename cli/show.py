"""``ckpt show``: one checkpoint decoded: state, metadata, next nodes, pending writes, interrupts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import orjson
import typer

from ckpt.cli.options import AesKeyOption, OutputOption, iso_time, resolve_store
from ckpt.cli.output import OutputFormat, emit_rows, resolve, write_json

if TYPE_CHECKING:
    from ckpt.formats.state import CheckpointView


def show(
    url: Annotated[str, typer.Argument(help="Store URL or export file.")],
    thread: Annotated[str, typer.Argument(help="Thread id.")],
    checkpoint: Annotated[
        Optional[str], typer.Option("--checkpoint", "-c", help="Checkpoint id (default: the latest).")
    ] = None,
    ns: Annotated[str, typer.Option("--ns", help="Checkpoint namespace ('' = root graph).")] = "",
    aes_key: AesKeyOption = None,
    output: OutputOption = None,
) -> None:
    """Show one checkpoint decoded: state values, metadata, next nodes, pending writes and interrupts.

    Nothing stored is executed: classes are shown by name, pickle and encrypted payloads
    stay opaque (pass --aes-key to read encrypted ones).

    Example:
      ckpt show sqlite:///agent.db thread-1
      ckpt show sqlite:///agent.db thread-1 --checkpoint 1f0c...-8002-... -o json
    """
    from ckpt.backends import open_store
    from ckpt.backends.ops.api import show as show_checkpoint
    from ckpt.cli.console import finish_reads
    from ckpt.formats.payloads import PayloadDecoder, aes_key_from

    url = resolve_store(url)
    fmt = resolve(output)
    decoder = PayloadDecoder(aes_key_from(aes_key))
    with open_store(url) as store:
        view = show_checkpoint(store, thread, ns, checkpoint, decoder=decoder)
        finish_reads(store)
    if fmt is OutputFormat.table:
        _print_view(view)
    elif fmt is OutputFormat.csv:
        rows = ({"channel": k, "value": orjson.dumps(v).decode()} for k, v in view.values.items())
        emit_rows(rows, fmt, ("channel", "value"))
    else:
        write_json(view.as_json(), pretty=fmt is OutputFormat.json)


def _print_view(view: CheckpointView) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from ckpt.backends.core.ids import checkpoint_time
    from ckpt.cli.console import stdout

    console = stdout()
    meta = view.metadata if isinstance(view.metadata, dict) else {}
    head = Table.grid(padding=(0, 2))
    for label, value in (
        ("thread", view.thread_id),
        ("namespace", view.checkpoint_ns or "(root)"),
        ("checkpoint", view.checkpoint_id),
        ("parent", view.parent_checkpoint_id or "-"),
        ("time", view.checkpoint.get("ts") or iso_time(checkpoint_time(view.checkpoint_id))),
        ("step / source", f"{meta.get('step')} / {meta.get('source')}"),
        ("next", ", ".join(view.next) or "-"),
    ):
        head.add_row(label, Text(str(value)))
    console.print(Panel(head, title="checkpoint", title_align="left"))
    if view.interrupts:
        for item in view.interrupts:
            console.print(
                Text.assemble(("interrupt ", "bold yellow"), f"{item['id'] or ''}: {_short(item['value'], 200)}")
            )
    if "$opaque" in view.values:
        console.print(
            Text(f"checkpoint payload is opaque ({view.values['$opaque']}): {view.values['reason']}", style="yellow")
        )
    else:
        values = Table("channel", "value", title="values", title_justify="left")
        for channel, value in view.values.items():
            values.add_row(Text(channel), Text(_render(value)))
        console.print(values)
    if view.pending_writes:
        writes = Table("task", "idx", "channel", "value", title="pending writes", title_justify="left")
        for w in view.pending_writes:
            writes.add_row(w["task_id"][:8], str(w["idx"]), Text(w["channel"]), Text(_short(w["value"], 120)))
        console.print(writes)
    console.print(Panel(Text(_short(view.metadata, 400)), title="metadata", title_align="left"))


def _render(value: Any) -> str:
    from ckpt.formats.view import is_message, message_line

    if isinstance(value, list) and value and all(is_message(v) for v in value):
        return "\n".join(message_line(v) for v in value)
    return _short(value, 300)


def _short(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return text if len(text) <= width else text[: width - 1] + "…"
