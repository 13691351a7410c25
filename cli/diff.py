"""``ckpt diff``: what changed between two checkpoints, or between one thread in two stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import orjson
import typer

from ckpt.cli.options import AesKeyOption, OutputOption, resolve_store
from ckpt.cli.output import OutputFormat, resolve, write_json

if TYPE_CHECKING:
    from ckpt.backends.core.base import Store
    from ckpt.formats.payloads import PayloadDecoder
    from ckpt.formats.state import CheckpointView


def diff(
    url: Annotated[str, typer.Argument(help="Store URL.")],
    thread_or_url: Annotated[str, typer.Argument(help="Thread id, or a second store URL (with --thread).")],
    from_id: Annotated[
        Optional[str], typer.Option("--from", help="Older checkpoint id (default: the parent of --to).")
    ] = None,
    to_id: Annotated[Optional[str], typer.Option("--to", help="Newer checkpoint id (default: the latest).")] = None,
    thread: Annotated[
        Optional[str], typer.Option("--thread", "-t", help="Thread to compare across two stores.")
    ] = None,
    ns: Annotated[
        Optional[str],
        typer.Option(
            "--ns",
            help="Checkpoint namespace ('' = root graph). Default: the root graph for one store, "
            "every namespace for two.",
        ),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include internal channels (branch:to:*, __pregel_tasks, …).")
    ] = False,
    aes_key: AesKeyOption = None,
    output: OutputOption = None,
) -> None:
    """Show what changed: per channel, messages as appended/removed/changed; exit 1 when different.

    With -o json the difference is an RFC 6902 JSON Patch. Two store URLs and --thread compare
    every checkpoint of that thread in both stores (to check a migration).

    Example:
      ckpt diff sqlite:///agent.db thread-1
      ckpt diff sqlite:///agent.db thread-1 --from 1f0…-8001-… --to 1f0…-8003-… -o json
      ckpt diff sqlite:///agent.db postgresql://db/app --thread thread-1
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import CheckpointNotFoundError, ExitCode, UsageError
    from ckpt.backends.core.urls import scheme_of
    from ckpt.backends.ops.api import show as show_checkpoint
    from ckpt.formats.diff import document, json_patch
    from ckpt.formats.payloads import PayloadDecoder, aes_key_from

    url = resolve_store(url)
    decoder = PayloadDecoder(aes_key_from(aes_key))
    fmt = resolve(output)
    if thread is not None and thread_or_url.startswith("@"):
        thread_or_url = resolve_store(thread_or_url)
    if scheme_of(thread_or_url) and thread is not None:
        _two_stores(url, thread_or_url, thread, ns, decoder, show_all, fmt)
        return
    if thread is not None:
        raise UsageError(f"{thread_or_url!r} is not a store URL; --thread is for comparing two stores")
    ns = ns or ""
    with open_store(url) as store:
        newer = show_checkpoint(store, thread_or_url, ns, to_id, decoder=decoder)
        older_id = from_id or newer.parent_checkpoint_id
        if older_id is None:
            raise CheckpointNotFoundError(f"checkpoint {newer.checkpoint_id} has no parent; pass --from")
        older = show_checkpoint(store, thread_or_url, ns, older_id, decoder=decoder)
    a, b = document(older, include_internal=show_all), document(newer, include_internal=show_all)
    patch = json_patch(a, b)
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json(patch, pretty=fmt is OutputFormat.json)
    else:
        _print(older, newer, a, b)
    if patch:
        raise typer.Exit(int(ExitCode.ERROR))  # like diff(1): "different" is a result, not an error


def _two_stores(
    url_a: str, url_b: str, thread: str, ns: str | None, decoder: PayloadDecoder, show_all: bool, fmt: OutputFormat
) -> None:
    """Every checkpoint of ``thread`` in both stores, in every namespace unless ``ns`` narrows it.
    JSON keys are checkpoint ids for the root graph and ``ns/checkpoint_id`` for subgraphs."""
    from rich.text import Text

    from ckpt.backends import open_store
    from ckpt.backends.core.errors import ExitCode
    from ckpt.backends.core.urls import redact
    from ckpt.cli.console import stdout
    from ckpt.formats.diff import document, json_patch

    with open_store(url_a) as a, open_store(url_b) as b:
        left, right = _views(a, thread, ns, decoder), _views(b, thread, ns, decoder)
    patches: dict[str, Any] = {}
    for key in sorted(set(left) | set(right)):
        name = key[1] if key[0] == "" else f"{key[0]}/{key[1]}"
        if key not in right:
            patches[name] = f"only in {redact(url_a)}"
        elif key not in left:
            patches[name] = f"only in {redact(url_b)}"
        else:
            ops = json_patch(
                document(left[key], include_internal=show_all), document(right[key], include_internal=show_all)
            )
            if ops:
                patches[name] = ops
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json(patches, pretty=fmt is OutputFormat.json)
    else:
        for name, found in patches.items():
            stdout().print(Text(f"{name}: {found if isinstance(found, str) else _short(found)}"))
        namespaces = {k[0] for k in (*left, *right)}
        if ns is None:
            scope = f"{len(namespaces)} namespace{'s' if len(namespaces) != 1 else ''} (all)"
        else:
            scope = "namespace (root) only" if ns == "" else f"namespace {ns!r} only"
        checkpoints = len(set(left) | set(right))
        verdict = "identical in both stores" if not patches else f"{len(patches)} differ"
        stdout().print(Text(f"thread {thread!r}, {scope}: {checkpoints} checkpoints, {verdict}"))
    if patches:
        raise typer.Exit(int(ExitCode.ERROR))


def _views(store: Store, thread: str, ns: str | None, decoder: PayloadDecoder) -> dict[tuple[str, str], CheckpointView]:
    from ckpt.backends import Selection
    from ckpt.backends.ops.sends import LANGGRAPH, saver_view
    from ckpt.formats.state import view_record

    records = saver_view(store.records(Selection(thread_id=thread, checkpoint_ns=ns)), store, LANGGRAPH)
    return {(r.key.checkpoint_ns, r.key.checkpoint_id): view_record(r, decoder) for r in records}


def _short(value: Any, width: int = 160) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def _print(older: CheckpointView, newer: CheckpointView, a: dict[str, Any], b: dict[str, Any]) -> None:
    from rich.text import Text

    from ckpt.cli.console import stdout
    from ckpt.formats.diff import channel_changes
    from ckpt.formats.view import message_line

    console = stdout()
    console.print(Text(f"{older.checkpoint_id} → {newer.checkpoint_id}", style="bold"))
    for change in channel_changes(a["values"], b["values"]):
        if change.kind == "messages":
            for label, messages in (("+", change.appended), ("-", change.removed), ("~", change.changed)):
                for message in messages:
                    console.print(Text(f"  {change.channel} {label} {message_line(message)}"))
        elif change.kind == "changed":
            console.print(Text(f"  {change.channel}: {_short(change.before, 70)} → {_short(change.after, 70)}"))
        else:
            value = change.after if change.kind == "added" else change.before
            console.print(Text(f"  {change.channel} {change.kind}: {_short(value, 140)}"))
    for field in ("metadata", "next", "interrupts"):
        if a[field] != b[field]:
            console.print(Text(f"  {field}: {_short(a[field], 70)} → {_short(b[field], 70)}"))
