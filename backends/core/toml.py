"""Configuration files (``ckpt.toml``, ``pyproject.toml``, ``~/.config/ckpt/config.toml``) read as TOML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ckpt.backends.core.errors import UsageError


def load_toml(path: Path) -> dict[str, Any]:
    """The document in ``path``; a ``UsageError`` naming the file when it is not valid TOML."""
    if sys.version_info >= (3, 11):
        import tomllib  # here, not at the top: only the commands that read a configuration file pay for it
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: invalid TOML ({exc})") from exc
