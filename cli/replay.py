"""``ckpt replay``: a thread's history as a portable JSONL timeline."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import orjson
import typer

from ckpt.cli.options import AesKeyOption, resolve_store


def replay(
    url: Annotated[str, typer.Argument(help="Store URL.")],
    thread: Annotated[str, typer.Argument(help="Thread id.")],
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", help="Write the timeline to FILE (default: stdout).")
    ] = None,
    full_state: Annotated[bool, typer.Option("--full-state", help="Whole state in every event, not deltas.")] = False,
    aes_key: AesKeyOption = None,
) -> None:
    """Write a thread's history as a JSONL timeline: one event per checkpoint, parent before child.

    The first line is a header (format, thread, store); each line after it is an event with the
    step, source, the tasks that ran and their writes, next nodes, interrupts and the state as a
    JSON Patch against its parent. Format: docs/format.md.

    Example:
      ckpt replay sqlite:///agent.db thread-1 | jq -c 'select(.event) | {step, ran: [.ran[].node]}'
      ckpt replay sqlite:///agent.db thread-1 -o thread-1.jsonl --full-state
    """
    from ckpt.backends import open_store
    from ckpt.backends.core.errors import ThreadNotFoundError
    from ckpt.cli.console import finish_reads
    from ckpt.formats.payloads import PayloadDecoder, aes_key_from
    from ckpt.formats.replay import events, header

    url = resolve_store(url)
    decoder = PayloadDecoder(aes_key_from(aes_key))
    out = _Output(output)
    try:
        with open_store(url) as store:
            out.write(orjson.dumps(header(thread, store)) + b"\n")
            count = 0
            for event in events(store, thread, decoder, full_state=full_state):
                out.write(orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS) + b"\n")
                count += 1
            finish_reads(store)
        if count == 0:
            raise ThreadNotFoundError(f"no thread {thread!r} in this store")
        out.finish()
    finally:
        out.discard()


class _Output:
    """stdout, or ``FILE`` written as ``FILE.partial`` and renamed into place only when the timeline
    is complete (:class:`~ckpt.backends.core.files.PartialFile`): a failed replay (full disk,
    read-only directory, no such thread) leaves no file."""

    def __init__(self, path: str | None) -> None:
        from ckpt.backends.core.files import PartialFile

        self.file = PartialFile(path) if path is not None else None

    def write(self, data: bytes) -> None:
        if self.file is None:
            sys.stdout.buffer.write(data)
        else:
            self.file.write(data)

    def finish(self) -> None:
        if self.file is not None:
            self.file.finish()

    def discard(self) -> None:
        """After a failure (a no-op after ``finish``): the partial file is removed."""
        if self.file is not None:
            self.file.discard()
