"""Named stores (contexts, like kubectl's): ``ckpt.toml`` or ``~/.config/ckpt/config.toml``.

```toml
[contexts.prod]
url = "postgresql://app:${PGPASSWORD}@db:5432/app?schema=lg"

[contexts.local]
url = "sqlite:///agent.db"
```

A store argument may be ``@NAME``; ``@`` (or an omitted store, for commands that take one) means
``--context NAME``, else ``$CKPT_URL``. ``${VAR}`` is expanded from the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_selected: dict[str, str | None] = {"context": None, "key_prefix": None}


def _usage_error(message: str) -> Exception:
    # Imported on failure only: select() runs before every command, even `ckpt CMD --help`.
    from ckpt.backends.core.errors import UsageError

    return UsageError(message)


def select(context: str | None, key_prefix: str | None = None) -> None:
    """Remember the root ``--context`` and ``--key-prefix`` for this invocation."""
    _selected["context"] = context
    _selected["key_prefix"] = key_prefix


def config_files() -> list[Path]:
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path("ckpt.toml"), home / "ckpt" / "config.toml"]


def contexts() -> dict[str, dict[str, Any]]:
    # Here, not at the top: only a store argument that needs a context reads TOML.
    from ckpt.backends.core.toml import load_toml

    found: dict[str, dict[str, Any]] = {}
    for path in reversed(config_files()):  # the project's ckpt.toml wins over the user's file
        if path.is_file():
            found.update(load_toml(path).get("contexts", {}))
    return found


def _expand(text: str, where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            raise _usage_error(f"{where} uses ${{{name}}}, which is not set")
        return os.environ[name]

    return _VAR.sub(value, text)


def context_url(name: str) -> str:
    known = contexts()
    if name not in known or "url" not in known[name]:
        listed = ", ".join(sorted(known)) or "none defined"
        raise _usage_error(f"no context {name!r} (known: {listed}) in ckpt.toml or ~/.config/ckpt/config.toml")
    return _expand(str(known[name]["url"]), f"context {name!r}")


def resolve(url: str | None) -> str:
    """A store argument with contexts and ``--key-prefix`` applied."""
    resolved = _resolve(url)
    prefix = _selected["key_prefix"]
    if prefix and resolved.startswith(("redis://", "rediss://")) and "checkpoint_prefix=" not in resolved:
        separator = "&" if "?" in resolved else "?"
        resolved += f"{separator}checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
    return resolved


def _resolve(url: str | None) -> str:
    """A store argument as given, ``@NAME``, or ``@``/omitted for the default store."""
    if url and url.startswith("@") and len(url) > 1:
        return context_url(url[1:])
    if url and url != "@":
        return url
    if _selected["context"]:
        return context_url(_selected["context"])
    if os.environ.get("CKPT_URL"):
        return _expand(os.environ["CKPT_URL"], "CKPT_URL")
    raise _usage_error("no store given: pass a URL, @NAME, --context NAME, or set CKPT_URL")
