"""``--thread`` globs for SQLite: Python's ``fnmatch.fnmatchcase`` written as a SQLite ``GLOB``.

Every store selects threads by ``fnmatch.fnmatchcase``. SQLite's GLOB differs in its character
classes: it negates with ``[^...]`` where fnmatch uses ``[!...]`` (so ``[!a]*`` selected only a
thread named ``!bang``), and fnmatch's quirks (``]`` first in a class, reversed ranges that
vanish, an unclosed ``[`` matching itself) have no GLOB spelling of their own. Here a glob is
cut into tokens exactly as ``fnmatch.translate`` cuts it; each class's members are asked of
fnmatch itself and written back out in GLOB's syntax, so the two agree on every stored id.

Limits: lone surrogates cannot be stored as text, so they are left out of classes. GLOB reads
text only up to a NUL: a glob containing NUL gets no SQL filter at all (every row goes to the
Python check), but a stored thread id containing NUL is compared by its part before the NUL and
may be missed. The driver re-checks every id it yields with fnmatch (:meth:`Selection.matches_thread`),
so the SQL filter can only ever narrow, never widen, what is selected.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

_MAX = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
_GLOB_SPECIAL = "*?["
_CLASS_SPECIAL = {ord("]"), ord("-"), ord("^")}

Ranges = list[tuple[int, int]]
"""Inclusive code-point ranges, sorted and disjoint."""


@dataclass(frozen=True)
class GlobFilter:
    """How a glob reaches SQL: ``clause`` for ``thread_id`` with its ``params``."""

    clause: str
    params: tuple[str, ...]


NEVER = GlobFilter("0", ())
"""The glob matches no storable id (an empty class, a lone surrogate)."""
EVERYTHING = GlobFilter("1", ())
"""No SQL spelling (a NUL in the glob): every row goes to the Python check."""


@lru_cache(maxsize=64)
def glob_filter(glob: str, column: str = "thread_id") -> GlobFilter:
    """The SQL condition on ``column`` selecting exactly the ids ``fnmatchcase(id, glob)`` selects."""
    if "\x00" in glob:
        return EVERYTHING
    pattern = to_sqlite_glob(glob)
    return NEVER if pattern is None else GlobFilter(f"{column} GLOB ?", (pattern,))


def to_sqlite_glob(glob: str) -> str | None:
    """The SQLite GLOB pattern equal to the fnmatch ``glob`` on storable text, or ``None`` when
    no storable text matches it."""
    out: list[str] = []
    for token in _tokens(glob):
        piece = _piece(token)
        if piece is None:
            return None
        if piece == "*" and out and out[-1] == "*":
            continue
        out.append(piece)
    return "".join(out)


class _Literal(str):
    """One character to match as itself."""


@dataclass(frozen=True)
class _Class:
    body: str
    """The text between ``[`` and its closing ``]``, as fnmatch delimits it."""


def _tokens(glob: str) -> Iterator[str | _Class]:
    """``*``, ``?``, literal characters and classes, cut where ``fnmatch.translate`` cuts them."""
    i, n = 0, len(glob)
    while i < n:
        char = glob[i]
        i += 1
        if char != "[":
            yield char if char in "*?" else _Literal(char)
            continue
        j = i
        if j < n and glob[j] == "!":
            j += 1
        if j < n and glob[j] == "]":  # a ']' right after '[' or '[!' is a member, not the end
            j += 1
        while j < n and glob[j] != "]":
            j += 1
        if j >= n:  # unclosed: fnmatch matches the '[' itself
            yield _Literal("[")
        else:
            yield _Class(glob[i:j])
            i = j + 1


def _piece(token: str | _Class) -> str | None:
    if isinstance(token, _Class):
        return _class_glob(_members(token.body))
    if isinstance(token, _Literal):
        if _storable(ord(token)):
            return f"[{token}]" if token in _GLOB_SPECIAL else str(token)
        return None
    return token  # '*' or '?': the same in both


def _storable(code: int) -> bool:
    return 0 < code <= _MAX and not _SURROGATES[0] <= code <= _SURROGATES[1]


def _members(body: str) -> Ranges:
    """The storable characters fnmatch's class ``[body]`` matches.

    Membership can change only at a character the class names or the one after it, so asking
    fnmatch about one character of each stretch between those points decides the whole stretch.
    """
    with warnings.catch_warnings():  # re's FutureWarning on '[[' etc.: fnmatchcase would warn alike
        warnings.simplefilter("ignore")
        regex = re.compile(fnmatch.translate(f"[{body}]"))
    points = {1, _SURROGATES[0], _SURROGATES[1] + 1, _MAX + 1}
    points.update(p for c in body for p in (ord(c), ord(c) + 1))
    cuts = sorted(p for p in points if 1 <= p <= _MAX + 1)
    ranges: Ranges = []
    for start, end in zip(cuts, cuts[1:]):
        if _storable(start) and regex.match(chr(start)):
            _append(ranges, start, end - 1)
    return ranges


def _append(ranges: Ranges, lo: int, hi: int) -> None:
    if ranges and ranges[-1][1] + 1 == lo:
        ranges[-1] = (ranges[-1][0], hi)
    else:
        ranges.append((lo, hi))


def _complement(ranges: Ranges) -> Ranges:
    """The storable characters not in ``ranges``."""
    out: Ranges = []
    at = 1
    for lo, hi in [*ranges, (_MAX + 1, _MAX + 1)]:
        for a, b in _without_surrogates(at, lo - 1):
            _append(out, a, b)
        at = hi + 1
    return out


def _without_surrogates(lo: int, hi: int) -> Iterator[tuple[int, int]]:
    for a, b in ((lo, min(hi, _SURROGATES[0] - 1)), (max(lo, _SURROGATES[1] + 1), hi)):
        if a <= b:
            yield a, b


def _class_glob(members: Ranges) -> str | None:
    """A GLOB class (or single character) matching exactly ``members``; ``None`` if empty."""
    if not members:
        return None
    others = _complement(members)
    if not others:
        return "?"
    if len(members) == 1 and members[0][0] == members[0][1]:
        char = chr(members[0][0])
        return f"[{char}]" if char in _GLOB_SPECIAL else char
    # Spell the shorter of the set and its complement; '[^' is GLOB's negation.
    if _size(others) < _size(members):
        return "[^" + _class_body(others) + "]"
    return "[" + _class_body(members) + "]"


def _size(ranges: Ranges) -> int:
    return sum(1 if lo == hi else 3 for lo, hi in ranges)


def _class_body(members: Ranges) -> str:
    """Members in GLOB class syntax. GLOB reads ']' as a member only first, '-' as a member only
    where no range can be meant (first, or right after ']'), and '^' as negation when first:
    so ']' then '-' lead, '^' comes last, and no range starts or ends on any of the three."""
    specials = {c for c in _CLASS_SPECIAL if any(lo <= c <= hi for lo, hi in members)}
    head = "".join(chr(c) for c in (ord("]"), ord("-")) if c in specials)
    rest = "".join(_range_text(lo, hi) for lo, hi in _split(members, _CLASS_SPECIAL))
    tail = "^" if ord("^") in specials else ""
    return head + rest + tail  # never "^" alone: _class_glob spells a lone '^' as a literal


def _split(members: Ranges, cut: set[int]) -> Iterator[tuple[int, int]]:
    for lo, hi in members:
        start = lo
        for c in sorted(x for x in cut if lo <= x <= hi):
            if start <= c - 1:
                yield start, c - 1
            start = c + 1
        if start <= hi:
            yield start, hi


def _range_text(lo: int, hi: int) -> str:
    if lo == hi:
        return chr(lo)
    if hi == lo + 1:
        return chr(lo) + chr(hi)
    return f"{chr(lo)}-{chr(hi)}"
