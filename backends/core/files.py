"""Files ckpt writes (exports, replay timelines): written as ``<path>.partial`` and renamed into
place only when complete, so a failed or killed run never leaves a half-written file under the name.
File-system refusals become one-line errors: ``StorageError`` (full disk, read-only, permission), or
``StoreNotFoundError`` for a directory that does not exist."""

from __future__ import annotations

import os
from contextlib import suppress
from typing import IO, NoReturn

from ckpt.backends.core.errors import StorageError, StoreNotFoundError


class PartialFile:
    """``path`` written as ``path.partial``: :meth:`finish` renames it into place, :meth:`discard`
    removes it (and is a no-op after ``finish``)."""

    def __init__(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise StoreNotFoundError(f"cannot write {path}: no such directory: {directory}")
        self.path = path
        self.partial = f"{path}.partial"
        try:
            self.handle: IO[bytes] | None = open(self.partial, "wb")  # noqa: SIM115 - closed in finish()/discard()
        except OSError as exc:
            raise StorageError.from_os_error(exc, f"cannot write {path}") from None

    def write(self, data: bytes) -> None:
        assert self.handle is not None
        try:
            self.handle.write(data)
        except OSError as exc:
            self.refused(exc)

    def finish(self) -> None:
        if self.handle is None:
            return
        try:
            self.handle.close()
            os.replace(self.partial, self.path)
        except OSError as exc:
            self.refused(exc)
        self.handle = None

    def discard(self) -> None:
        if self.handle is None:
            return
        with suppress(OSError):  # a full disk fails the last flush too: the file goes anyway
            self.handle.close()
        with suppress(FileNotFoundError):
            os.unlink(self.partial)
        self.handle = None

    def refused(self, exc: OSError) -> NoReturn:
        """The partial file removed, and the refusal as ``StorageError`` naming the target."""
        self.discard()
        raise StorageError.from_os_error(exc, f"cannot write {self.path}") from None
