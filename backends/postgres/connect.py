"""Connecting to PostgreSQL: ckpt's URL (with ``?schema=``) to a libpq URI, one autocommit connection."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ckpt.backends.core.errors import BackendUnavailableError, NotAStoreError
from ckpt.backends.core.urls import redact
from ckpt.backends.postgres import SCHEMES

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class Handle:
    """The psycopg connection (kept behind a handle so closing stays one call for the store)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def close(self) -> None:
        self.conn.close()


_SCHEMES = (*SCHEMES, "postgresql+psycopg", "postgresql+psycopg2")  # with a driver name, as SQLAlchemy URLs have


def conninfo(url: str) -> tuple[str, str]:
    """``(schema, libpq URI)``: ckpt's ``?schema=`` taken out, a driver name (``+psycopg``) dropped.

    Everything else (user, percent-encoded password, hosts, ``sslmode`` and other parameters) is
    libpq's own URI syntax, passed through as written.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise NotAStoreError(f"not a PostgreSQL URL: {redact(url)}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), "public")
    rest = urlencode([(key, value) for key, value in query if key != "schema"], quote_via=quote)
    return schema, urlunsplit(("postgresql", parts.netloc, parts.path, rest, parts.fragment))


def _url_options(uri: str) -> str:
    try:
        return str(conninfo_to_dict(uri).get("options") or "")
    except psycopg.ProgrammingError:
        return ""  # an invalid URI: psycopg.connect reports it


def connect(url: str, *, read_only: bool) -> tuple[str, Handle]:
    schema, uri = conninfo(url)
    if not _IDENT.match(schema):
        raise NotAStoreError(f"invalid schema name {schema!r}")
    # the URL's own ``options`` (``-c statement_timeout=…``) kept: a keyword argument would replace them
    options = " ".join(filter(None, [_url_options(uri), "-c default_transaction_read_only=on" if read_only else ""]))
    try:
        # autocommit: explicit transactions only, one per write batch, one snapshot per read
        target = make_conninfo(uri, options=options) if options else uri
        conn = psycopg.connect(target, connect_timeout=10, autocommit=True)
    except psycopg.Error as error:
        reason = (str(error).strip().splitlines() or ["unknown error"])[0]
        raise BackendUnavailableError(f"cannot connect to {redact(url)}: {redact(reason)}") from None
    return schema, Handle(conn)
