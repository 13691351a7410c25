"""URL helpers: scheme detection, SQLite paths and password redaction."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")
# Query options and libpq ``key=value`` words that carry a secret: ``?password=``, ``&sslpassword=``,
# Redis ``?password=``, MongoDB ``authMechanismProperties`` (AWS session tokens) and key-file passwords.
_SECRET_OPTION = re.compile(
    r"(?P<key>(?<![\w.-])(?:password|passwd|pwd|pass|sslpassword|sslkeypassword|tlscertificatekeyfilepassword"
    r"|sslpemkeypassword|authmechanismproperties|secret|token|access_token|api_key|apikey)\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^&;\s'\"]*)",
    re.IGNORECASE,
)
_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


_MASKS: list[Callable[[str], str]] = []


def add_mask(mask: Callable[[str], str]) -> None:
    """Have :func:`redact` apply ``mask`` too (the CLI's: values expanded from ``${VAR}``)."""
    if mask not in _MASKS:
        _MASKS.append(mask)


def redact(text: str) -> str:
    """Mask every credential in ``text``: the password of each ``scheme://user:password@``, and the
    value of each secret option (``password=``, ``sslpassword=``, ``authMechanismProperties=``, ...),
    whether in a URL's query or a libpq ``key=value`` string."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _SECRET_OPTION.sub(lambda m: f"{m['key']}***" if m["value"] else m[0], text)
    for mask in _MASKS:
        text = mask(text)
    return text


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
