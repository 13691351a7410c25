"""``ckpt doctor``: detect the saver and layout, and report what needs care; exit 1 with findings."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer

from ckpt.cli.options import AesKeyOption, OutputOption, StoreArgument, resolve_store
from ckpt.cli.output import OutputFormat, resolve, write_json


def doctor(
    url: StoreArgument = None,
    min_idle: Annotated[
        str, typer.Option(help="Orphans younger than this may be in flight; they are not counted.")
    ] = "5m",
    aes_key: AesKeyOption = None,
    output: OutputOption = None,
) -> None:
    """Detect the saver and its layout version, and report drift, orphans, undecodable rows and keys without TTL.

    Read-only: nothing is changed. Exit 0 when healthy, 1 with findings.

    Example:
      ckpt doctor sqlite:///agent.db
      ckpt doctor postgresql://db/app -o json
    """
    from rich.text import Text

    from ckpt.backends import open_store
    from ckpt.backends.core.errors import CkptError, ExitCode, NotAStoreError
    from ckpt.backends.core.ids import lowest_id_at
    from ckpt.backends.core.urls import redact
    from ckpt.backends.ops.doctor import diagnose
    from ckpt.backends.ops.retention import parse_duration
    from ckpt.cli.check import memory_beside
    from ckpt.cli.console import stdout
    from ckpt.formats.payloads import PayloadDecoder, aes_key_from

    url = resolve_store(url)
    fmt = resolve(output)
    seconds = parse_duration(min_idle, "--min-idle") if min_idle != "0" else 0.0
    idle_before = lowest_id_at(datetime.now(timezone.utc).timestamp() - seconds)
    try:
        with open_store(url) as store, memory_beside(url) as memory:
            report = diagnose(store, idle_before, PayloadDecoder(aes_key_from(aes_key)), memory)
    except NotAStoreError as exc:
        if fmt in (OutputFormat.json, OutputFormat.jsonl):
            write_json({"healthy": False, "store": redact(url), "findings": [str(exc)]}, fmt)
        raise CkptError(str(exc)) from exc  # exit 1: an unhealthy store is a finding, not a failure
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        write_json({"store": redact(url), **report.as_json()}, fmt)
    else:
        layout = report.layout
        console = stdout()
        console.print(
            Text(f"{redact(url)}: {layout.get('saver')} {layout.get('version')}, {report.checkpoints} checkpoints")
        )
        console.print(Text(f"  supports: {', '.join(report.capabilities) or 'reading only'}"))
        if report.memory is not None:
            held = report.memory
            vectors = f", vectors of {held['index']['dims']} dims" if held["index"] else ""
            console.print(Text(f"  memory: {held['items']} items in {held['namespaces']} namespaces{vectors}"))
        for finding in report.findings:
            console.print(Text(f"  finding: {finding}", style="yellow"))
        if report.healthy:
            console.print(Text("  healthy", style="green"))
    if not report.healthy:
        raise typer.Exit(int(ExitCode.ERROR))
