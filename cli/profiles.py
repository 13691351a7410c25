"""Named stores (contexts, like kubectl's): ``ckpt.toml`` or ``~/.config/ckpt/config.toml``.

```toml
[contexts.prod]
url = "postgresql://app:${PGPASSWORD}@db:5432/app?schema=lg"

[contexts.local]
url = "sqlite:///agent.db"
```

A store argument may be ``@NAME``; ``@`` (or an omitted store, for commands that take one) means
``--context NAME``, else ``$CKPT_URL``. ``${VAR}`` is expanded from the environment.

The working directory's ``ckpt.toml`` comes from whoever made the directory (a cloned repository),
so it is never trusted silently (issue #19, item 22):

- every context used is named on stderr with the file it came from;
- when ``ckpt.toml`` defines a context that the user's own file defines too (with another URL),
  reads use ``ckpt.toml``'s and say so, and a verb that deletes or writes into the store refuses
  unless ``--context-file PATH`` (``$CKPT_CONTEXT_FILE``) names the one file to read contexts from;
- every value ``${VAR}`` expanded to is remembered (:func:`mask`), so that no message, warning or
  report shows it: not a password only, but a host, a path or a query value a file put it into.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_selected: dict[str, str | None] = {"context": None, "key_prefix": None, "context_file": None}

# Every value a ${VAR} was expanded to in this run, in the forms a message may show it in.
_expanded: set[str] = set()
# Shorter values are left alone in text: they hold no secret, and masking them would garble counts.
MIN_MASKED = 3
MASK = "***"


def _usage_error(message: str) -> Exception:
    # Imported on failure only: select() runs before every command, even `ckpt CMD --help`.
    from ckpt.backends.core.errors import UsageError

    return UsageError(message)


def select(context: str | None, key_prefix: str | None = None, context_file: str | None = None) -> None:
    """Remember the root ``--context``, ``--key-prefix`` and ``--context-file`` for this invocation."""
    _selected["context"] = context
    _selected["key_prefix"] = key_prefix
    _selected["context_file"] = context_file or None
    _expanded.clear()


def project_file() -> Path:
    """The working directory's ``ckpt.toml``."""
    return Path("ckpt.toml")


def user_file() -> Path:
    """The user's own ``$XDG_CONFIG_HOME/ckpt/config.toml`` (``~/.config/ckpt/config.toml``)."""
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return home / "ckpt" / "config.toml"


def config_files() -> list[Path]:
    """The files contexts are read from, the winner first: ``--context-file`` alone, if given."""
    chosen = _selected["context_file"]
    return [Path(chosen)] if chosen else [project_file(), user_file()]


def shown_path(path: Path) -> str:
    """``./ckpt.toml``, ``~/.config/ckpt/config.toml``, or the path as given."""
    if path == project_file():
        return f"./{path}"
    try:
        return f"~/{path.relative_to(Path.home())}"
    except (ValueError, RuntimeError):
        return str(path)


@dataclass(frozen=True)
class Context:
    """A context as written (``${VAR}`` not expanded), and where it came from."""

    name: str
    url: str
    source: Path
    shadows: Path | None = None
    """The user's file, when it defines this context too, with another URL (``source`` won)."""


def _contexts_in(path: Path) -> dict[str, Any]:
    # Here, not at the top: only a store argument that needs a context reads TOML.
    from ckpt.backends.core.toml import load_toml

    found = load_toml(path).get("contexts", {})
    return found if isinstance(found, dict) else {}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def find(name: str) -> Context:
    """The context ``name``: from ``--context-file`` if given, else the first file defining it."""
    files = [path for path in config_files() if path.is_file()]
    chosen = _selected["context_file"]
    if chosen and not files:
        raise _usage_error(f"--context-file {chosen}: no such file")
    tables = [(path, _contexts_in(path)) for path in files]
    defining = [(path, table[name]) for path, table in tables if name in table]
    if not defining or not isinstance(defining[0][1], dict) or "url" not in defining[0][1]:
        listed = ", ".join(sorted({known for _, table in tables for known in table})) or "none defined"
        where = chosen or "ckpt.toml or ~/.config/ckpt/config.toml"
        raise _usage_error(f"no context {name!r} (known: {listed}) in {where}")
    (source, winner), others = defining[0], defining[1:]
    shadows = None
    for path, loser in others:
        if _same_file(path, source):
            continue
        if not isinstance(loser, dict) or str(loser.get("url")) != str(winner["url"]):
            shadows = path
    return Context(name, str(winner["url"]), source, shadows)


def _expand(text: str, where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            raise _usage_error(f"{where} uses ${{{name}}}, which is not set")
        _remember(os.environ[name])
        return os.environ[name]

    return _VAR.sub(value, text)


def _remember(value: str) -> None:
    from ckpt.backends.core.urls import add_mask

    add_mask(mask)  # every URL or message ckpt prints goes through redact()
    forms = {value, quote(value, safe=""), quote(value), unquote(value)}
    _expanded.update(form for form in forms if len(form) >= MIN_MASKED)


def expanded_values() -> frozenset[str]:
    """The values ``${VAR}`` expanded to in this run (each in its plain and URL-quoted forms)."""
    return frozenset(_expanded)


def mask(text: str) -> str:
    """``text`` with every value a ``${VAR}`` was expanded to in this run shown as ``***``.

    Apply it wherever a resolved URL, or a message that may quote one, is shown; together with
    ``ckpt.backends.core.urls.redact`` (passwords) it is what may be printed."""
    for value in sorted(_expanded, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def context_url(name: str, *, writes: str | None = None) -> str:
    """The URL of context ``name``, ``${VAR}`` expanded; its source is named on stderr.

    ``writes`` is the verb when the command deletes from or writes into this store: a context
    that the working directory's file shadows is then refused (see the module docstring)."""
    context = find(name)
    source = shown_path(context.source)
    if context.shadows is not None:
        shadowed = shown_path(context.shadows)
        if writes:
            raise _usage_error(
                f"context {name!r} is defined in both {source} and {shadowed}: refusing to {writes} a store "
                f"the working directory chose; pass --context-file with the file to use"
            )
        _tell(f"using context {name!r} from {source} (it shadows the one in {shadowed})")
    else:
        _tell(f"using context {name!r} from {source}")
    return _expand(context.url, f"context {name!r}")


def _tell(message: str) -> None:
    from ckpt.cli.console import info

    info(message)


def resolve(url: str | None, *, writes: str | None = None) -> str:
    """A store argument with contexts and ``--key-prefix`` applied.

    ``writes``: the verb, when the command deletes from or writes into this store."""
    resolved = _resolve(url, writes)
    prefix = _selected["key_prefix"]
    if prefix and resolved.startswith(("redis://", "rediss://")) and "checkpoint_prefix=" not in resolved:
        separator = "&" if "?" in resolved else "?"
        resolved += f"{separator}checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
    return resolved


def _resolve(url: str | None, writes: str | None) -> str:
    """A store argument as given, ``@NAME``, or ``@``/omitted for the default store."""
    if url and url.startswith("@") and len(url) > 1:
        return context_url(url[1:], writes=writes)
    if url and url != "@":
        return url
    if _selected["context"]:
        return context_url(_selected["context"], writes=writes)
    if os.environ.get("CKPT_URL"):
        return _expand(os.environ["CKPT_URL"], "CKPT_URL")
    raise _usage_error("no store given: pass a URL, @NAME, --context NAME, or set CKPT_URL")
