"""URL helpers: scheme detection, SQLite paths and password redaction."""

from __future__ import annotations

import re
from urllib.parse import unquote

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")
_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def redact(text: str) -> str:
    """Mask the password of every ``scheme://user:password@`` in ``text``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased; ``jsonl`` for export files, ``sqlite`` for bare db paths."""
    if "://" in url:
        return url.partition("://")[0].lower()
    if url == "-" or url.endswith(_JSONL_SUFFIXES):
        return "jsonl"
    if url.endswith(_SQLITE_SUFFIXES):
        return "sqlite"
    return ""


def sqlite_path(url: str) -> str:
    """File path of a ``sqlite:///relative`` / ``sqlite:////absolute`` URL or a bare path."""
    if "://" not in url:
        return url
    rest = url.partition("://")[2]
    if not rest.startswith("/"):
        # sqlite://host/path is not meaningful; treat the whole remainder as the path.
        return unquote(rest)
    return unquote(rest[1:].split("?", 1)[0])


def is_jsonl_path(path: str) -> bool:
    return path == "-" or path.endswith(_JSONL_SUFFIXES)
