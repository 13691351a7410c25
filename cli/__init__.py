"""The ``ckpt`` command line: thin Typer commands over ``ckpt.backends`` and ``ckpt.formats``."""

from __future__ import annotations


def version() -> str:
    """The installed distribution's version (looked up only when asked: it costs start-up time)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("langgraph-ckpt")
    except PackageNotFoundError:  # running from a checkout without an install
        return "0+unknown"
