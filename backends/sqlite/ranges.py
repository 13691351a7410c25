"""Where to cut a large SQLite file's threads into ranges, so two processes can read them at once.

``ckpt list`` on a big store is one aggregate scan of the primary-key index (count, first and last
id per thread) plus a row of output per thread; with a core idle, the thread ids are cut into
ranges that this process and a forked child share (:mod:`ckpt.backends.ops.forked`). Each range is a
read transaction of its own: a listing taken while a writer commits may see some ranges before and
others after that commit; each thread's row is one consistent read.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ckpt.backends.ops.forked import can_fork, idle_core

MIN_FILE_BYTES = 64 << 20
"""Below this the whole scan takes a few milliseconds: a fork would cost more than it saves."""
READERS_ENV = "CKPT_SQLITE_READERS"
"""``1`` or ``2`` forces one or two readers (benchmarks, tests); unset or anything else: decide here."""


def worth_two_readers(path: str) -> bool:
    """Two readers only where they can help and forking is safe: a file of at least 64 MiB, an
    idle core, and :func:`~ckpt.backends.ops.forked.can_fork`."""
    forced = os.environ.get(READERS_ENV, "")
    if forced in ("1", "2"):
        return forced == "2" and can_fork()
    try:
        return can_fork() and os.path.getsize(path) >= MIN_FILE_BYTES and idle_core()
    except OSError:
        return False


def split_point(lower: str | None, upper: str | None, first_from: Callable[[str], str | None]) -> str | None:
    """A thread id ``s`` with ``lower < s <= upper`` near the middle of the stored ids, or ``None``.

    ``first_from(s)`` is the smallest stored id ``>= s`` (one index seek). Stepping with it
    from character to character finds which characters occur right after the common prefix
    of ``lower`` and ``upper`` (16 seeks for uuid ids); the split is at the median of those.
    It only has to be correct, not even: a lopsided split just gains less.
    """
    if lower is None or upper is None or lower >= upper:
        return None
    at = 0
    while at < len(lower) and lower[at] == upper[at]:
        at += 1
    prefix, seen = lower[:at], list[str]()
    probe: str | None = lower
    while probe is not None and len(seen) < _MAX_PROBES:
        found = first_from(probe)
        if found is None or found > upper or not found.startswith(prefix):
            break
        if len(found) == at:  # the prefix itself is an id (lower is a prefix of upper)
            probe = prefix + "\x00"
            continue
        seen.append(found[at])
        probe = _after(prefix, found[at])
    middle = prefix + seen[len(seen) // 2] if len(seen) >= 2 else None
    return middle if middle is not None and lower < middle <= upper else None


def split_points(
    lower: str | None,
    upper: str | None,
    parts: int,
    first_from: Callable[[str], str | None],
    last_before: Callable[[str], str | None],
) -> list[str]:
    """Up to ``parts - 1`` increasing ids ``s`` with ``lower < s <= upper``: :func:`split_point`
    of the whole range, then of each side (``last_before(s)``: the largest stored id ``< s``)."""
    if parts < 2:
        return []
    middle = split_point(lower, upper, first_from)
    if middle is None:
        return []
    left = split_points(lower, last_before(middle), parts // 2, first_from, last_before)
    right = split_points(first_from(middle), upper, parts - parts // 2, first_from, last_before)
    return [*left, middle, *right]


_MAX_PROBES = 128


def _after(prefix: str, char: str) -> str | None:
    """The smallest string after every string that starts with ``prefix + char``."""
    code = ord(char) + 1
    if 0xD800 <= code <= 0xDFFF:  # lone surrogates cannot be bound as UTF-8 text
        code = 0xE000
    return prefix + chr(code) if code <= 0x10FFFF else None
