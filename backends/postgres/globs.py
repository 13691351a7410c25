"""fnmatch globs (``--thread``, ``--exempt``) as PostgreSQL ``LIKE`` patterns (escape character ``\\``).

Two uses, one translation: reads filter with :func:`glob_like_superset`, which turns a character
class into ``_`` and so matches at least the glob's strings (the rows are checked with fnmatch
again in Python); the server-side prune, which refuses globs with classes, needs
:func:`glob_like`, the pattern matching exactly the glob's strings.
"""

from __future__ import annotations

_LIKE = {"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}


def glob_like(glob: str) -> str:
    """The LIKE pattern matching exactly what the glob matches; ``ValueError`` for a glob with a
    character class, which has no exact LIKE form."""
    return _translate(glob, exact=True)


def glob_like_superset(glob: str) -> str:
    """A LIKE pattern matching at least what the glob matches: a character class becomes ``_``."""
    return _translate(glob, exact=False)


def _translate(glob: str, *, exact: bool) -> str:
    out, i = [], 0
    while i < len(glob):
        char = glob[i]
        end = _class_end(glob, i) if char == "[" else -1
        if end != -1:
            if exact:
                raise ValueError(f"{glob!r} has a character class: no LIKE pattern matches exactly its strings")
            out.append("_")
            i = end + 1
            continue
        out.append(_LIKE.get(char, char))
        i += 1
    return "".join(out)


def _class_end(glob: str, start: int) -> int:
    """Where the class opened by the ``[`` at ``start`` ends, as fnmatch ends it (after an optional
    ``!`` and an optional ``]`` as its first member), or -1: an unclosed ``[`` is literal."""
    j = start + 1
    j += 1 if j < len(glob) and glob[j] == "!" else 0
    j += 1 if j < len(glob) and glob[j] == "]" else 0
    return glob.find("]", j)
