"""``ckpt memory``: LangGraph's long-term memory stores (``BaseStore``) — list, show, export,
import, migrate, prune, size. Each command parses, makes one call into
``ckpt.backends.ops.memory`` and renders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ckpt.cli.options import OutputOption, StoreArgument, resolve_store
from ckpt.cli.output import OutputFormat, emit_rows, human_bytes, resolve, write_json

if TYPE_CHECKING:
    from ckpt.backends.ops.memory import MemoryCopyReport, MemoryPruneReport

app = typer.Typer(
    help="Long-term memory stores (LangGraph BaseStore: SqliteStore, PostgresStore, RedisStore, MongoDBStore)."
    "\n\nExample:\n\n  ckpt memory list sqlite:///agent.db",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PrefixOption = Annotated[Optional[str], typer.Option("--prefix", help="Only namespaces under this one, e.g. users/42.")]
VerifyOption = Annotated[
    bool, typer.Option("--verify", help="Afterwards, read every item back from the target and compare.")
]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Items per write transaction.")]
_COLUMNS = ("namespace", "items", "bytes", "oldest_update", "newest_update", "expiring")


def _namespace(text: str | None) -> tuple[str, ...]:
    from ckpt.backends.core.memory import parse_namespace

    return parse_namespace(text) if text else ()


@app.command("list")
def list_(
    url: StoreArgument = None,
    prefix: PrefixOption = None,
    depth: Annotated[Optional[int], typer.Option("--depth", min=1, help="Cut namespaces to N labels.")] = None,
    output: OutputOption = None,
) -> None:
    """List namespaces with their item counts, bytes, update times and expiring items.

    Example:
      ckpt memory list sqlite:///agent.db
      ckpt memory list postgresql://db/app --prefix users --depth 2 -o json
    """
    from ckpt.backends import open_memory
    from ckpt.backends.ops.memory import namespaces

    with open_memory(resolve_store(url)) as store:
        rows = [s.as_json() for s in namespaces(store, _namespace(prefix), depth)]
    emit_rows(rows, resolve(output), _COLUMNS, title=f"{len(rows)} namespaces", human={"bytes": human_bytes})


@app.command("size")
def size(
    url: StoreArgument = None,
    prefix: PrefixOption = None,
    depth: Annotated[int, typer.Option("--depth", min=1, help="Add up namespaces to N labels.")] = 1,
    top: Annotated[int, typer.Option("--top", min=1, help="Show the N largest.")] = 20,
    output: OutputOption = None,
) -> None:
    """Show where a memory store's bytes are: namespaces (cut to --depth labels), largest first.

    Example:
      ckpt memory size sqlite:///agent.db --depth 2
    """
    from ckpt.backends import open_memory
    from ckpt.backends.ops.memory import namespaces

    with open_memory(resolve_store(url)) as store:
        groups = namespaces(store, _namespace(prefix), depth)
    total = sum(g.bytes for g in groups)
    rows = [g.as_json() for g in sorted(groups, key=lambda g: -g.bytes)[:top]]
    fmt = resolve(output)
    if fmt is OutputFormat.json:
        write_json({"bytes": total, "items": sum(g.items for g in groups), "namespaces": rows})
        return
    emit_rows(rows, fmt, _COLUMNS, title=f"{human_bytes(total)} in memory", human={"bytes": human_bytes})


@app.command("show")
def show(
    url: Annotated[str, typer.Argument(help="Memory store URL.")],
    namespace: Annotated[str, typer.Argument(help="The namespace, e.g. users/42/prefs.")],
    key: Annotated[Optional[str], typer.Argument(help="One item's key (default: every item).")] = None,
    output: OutputOption = None,
) -> None:
    """Show the items of one namespace (or one item) with values, times and TTL.

    Example:
      ckpt memory show sqlite:///agent.db users/42/prefs
      ckpt memory show sqlite:///agent.db users/42/prefs theme -o json
    """
    from ckpt.backends import open_memory
    from ckpt.backends.ops.memory import item_json
    from ckpt.backends.ops.memory import show as show_items

    fmt = resolve(output)
    columns = ("key", "value", "updated_at", "expires_at")
    with open_memory(resolve_store(url)) as store:
        rows = (item_json(i) for i in show_items(store, _namespace(namespace), key))
        if fmt is OutputFormat.json and key is not None:
            write_json(next(rows))
            return
        if fmt in (OutputFormat.table, OutputFormat.csv):  # the value as JSON text, not Python's repr
            rows = ({**row, "value": _json_text(row["value"])} for row in rows)
        emit_rows(rows, fmt, columns if fmt is OutputFormat.table else (*columns, "namespace", "created_at"))


def _json_text(value: object) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _copy(src: str, dst: str, prefix: str | None, verify: bool, batch_size: int, output: OutputFormat | None) -> None:
    from ckpt.backends.core.errors import IntegrityError
    from ckpt.backends.core.memory import MemorySelection
    from ckpt.backends.ops.memory import migrate as migrate_items

    selection = MemorySelection(_namespace(prefix))
    report = migrate_items(src, dst, selection=selection, batch_size=batch_size, verify_after=verify)
    _report_copy(report, output)
    if report.differences:
        raise IntegrityError(f"verify: {len(report.differences)} item(s) differ; first: {report.differences[0]}")


def _report_copy(report: MemoryCopyReport, output: OutputFormat | None) -> None:
    from ckpt.cli.console import info, warn

    for loss in report.losses:  # on stderr in every output format: a cron log keeps it
        warn(f"not kept by the target: {loss}")
    if resolve(output) in (OutputFormat.json, OutputFormat.jsonl):
        write_json(report.as_json())
        return
    verified = "" if report.verified is None else f", {report.verified} verified"
    info(f"copied {report.items} items ({report.vectors} vectors) in {report.namespaces} namespaces{verified}")


@app.command("export")
def export(
    url: Annotated[str, typer.Argument(help="Memory store URL.")],
    file: Annotated[str, typer.Argument(help="Output .jsonl or .jsonl.gz ('-': stdout).")],
    prefix: PrefixOption = None,
    output: OutputOption = None,
) -> None:
    """Write a memory store's items to a portable JSON Lines file (docs/format.md).

    Example:
      ckpt memory export sqlite:///agent.db memories.jsonl.gz
    """
    _copy(resolve_store(url), file, prefix, False, 1000, output)


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="A memory export .jsonl or .jsonl.gz.")],
    url: Annotated[str, typer.Argument(help="Target memory store URL (set up as its store's setup() does).")],
    verify: VerifyOption = False,
    batch_size: BatchOption = 2000,
    output: OutputOption = None,
) -> None:
    """Load a memory export into a store (the whole file is checked before anything is written).

    Example:
      ckpt memory import memories.jsonl.gz postgresql://db/app --verify
    """
    _copy(file, resolve_store(url, writes="import"), None, verify, batch_size, output)


@app.command("migrate")
def migrate(
    src: Annotated[str, typer.Argument(help="Source memory store URL.")],
    dst: Annotated[str, typer.Argument(help="Target memory store URL.")],
    prefix: PrefixOption = None,
    verify: VerifyOption = False,
    batch_size: BatchOption = 2000,
    output: OutputOption = None,
) -> None:
    """Copy memories between any two stores, streamed and batched; a rerun finishes a killed one.

    Vectors are carried as stored when the target's index matches; otherwise nothing is written.

    Example:
      ckpt memory migrate sqlite:///agent.db postgresql://db/app --verify
    """
    _copy(resolve_store(src), resolve_store(dst, writes="migrate"), prefix, verify, batch_size, output)


@app.command("prune")
def prune(
    url: StoreArgument = None,
    expired: Annotated[
        bool, typer.Option("--expired", help="Items whose TTL has run out (the store's own rule).")
    ] = False,
    namespace: Annotated[
        Optional[list[str]], typer.Option("--namespace", help="Every item under this namespace (repeatable).")
    ] = None,
    older_than: Annotated[
        Optional[str], typer.Option("--older-than", help="Items not updated for this long (e.g. 90d).")
    ] = None,
    exempt: Annotated[
        Optional[list[str]], typer.Option("--exempt", help="Never touch this namespace (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and the bytes it frees; delete nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (cron).")] = False,
    output: OutputOption = None,
) -> None:
    """Delete memories that expired, a namespace, or items not updated for a while.

    The plan comes first: --dry-run prints it; a real run asks on a terminal and needs --yes
    otherwise. Deleted items are read again to prove they are gone; two runs never both delete.

    Example:
      ckpt memory prune sqlite:///agent.db --expired --dry-run
      ckpt memory prune postgresql://db/app --older-than 180d --exempt users/vip --yes -o json
    """
    from ckpt.backends import open_memory
    from ckpt.backends.core.policy import parse_duration
    from ckpt.backends.ops.memory import MemoryPolicy
    from ckpt.backends.ops.memory import prune as prune_items
    from ckpt.backends.ops.prune import Aborted
    from ckpt.cli.console import confirm

    url = resolve_store(url, writes="prune")
    policy = MemoryPolicy(
        expired=expired,
        namespaces=tuple(_namespace(n) for n in namespace or ()),
        older_than_seconds=parse_duration(older_than, "--older-than") if older_than else None,
        exempt=tuple(_namespace(n) for n in exempt or ()),
    )

    def ask(plan: MemoryPruneReport) -> bool:
        if yes:
            return True
        if not confirm(f"delete {plan.deleted} memory items ({human_bytes(plan.bytes_freed)})?"):
            raise Aborted("nothing was deleted")
        return True

    with open_memory(url, write=not dry_run) as store:
        if dry_run:
            report = prune_items(store, policy, dry_run=True)
        else:
            with store.lock("prune"):
                report = prune_items(store, policy, confirm=ask)
    _report_prune(report, resolve(output))


def _report_prune(report: MemoryPruneReport, fmt: OutputFormat) -> None:
    from ckpt.cli.console import info

    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json(report.as_json())
        return
    verb = "would delete" if report.dry_run else "deleted"
    reasons = ", ".join(f"{n} {r}" for r, n in sorted(report.by_reason.items())) or "nothing selected"
    info(f"{verb} {report.deleted} of {report.examined} items ({human_bytes(report.bytes_freed)}): {reasons}")
