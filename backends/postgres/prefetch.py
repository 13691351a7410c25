"""One step ahead: the next page's queries run while the caller works on this one.

A copy out of PostgreSQL waits on the server (index probes for blobs and writes) about a third
of its time, and spends the rest in Python assembling checkpoints and writing the target.
psycopg releases the GIL while it waits, so a thread that fetches page N+1 while page N is
assembled and written overlaps the two (issue #24). The connection is shared: psycopg
serialises its use, and every query stays inside the caller's snapshot transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Full, Queue
from typing import TypeVar

T = TypeVar("T")

DEPTH = 2
"""Pages fetched ahead at most: memory stays a few pages, whatever the store's size."""


def prefetched(items: Iterator[T], depth: int = DEPTH) -> Iterator[T]:
    """``items`` as they are, produced in a thread up to ``depth`` ahead of the caller.

    Stopping early (``break``, an error, garbage collection) stops the thread after its current
    item and waits for it, so no query outlives the caller's transaction."""
    queue: Queue[tuple[bool, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as error:  # handed to the caller, raised there
            put((False, error))
            return
        put((False, None))

    worker = threading.Thread(target=produce, name="ckpt-pg-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            more, value = queue.get()
            if not more:
                if isinstance(value, BaseException):
                    raise value
                return
            yield value  # type: ignore[misc]
    finally:
        stop.set()  # a blocked put gives up within 0.05 s; a running query is waited for
        worker.join()
        if hasattr(items, "close"):
            items.close()  # the producer is done: closing its generator from here is safe
