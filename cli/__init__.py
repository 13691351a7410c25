"""The ``ckpt`` command line: thin Typer commands over ``ckpt.backends`` and ``ckpt.formats``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("langgraph-ckpt")
except PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0+unknown"
