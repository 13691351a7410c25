"""The Typer app: the error boundary, ``--version``, and the list of commands.

Start-up is kept light: this module and the command modules import only typer and the
types their signatures need; stores, formats and rich load inside the command that uses
them, so ``ckpt --help`` and ``--version`` import none of them (tests/cli/test_startup.py).
"""

from __future__ import annotations

import os
import sys
import typing
from collections.abc import Callable
from typing import Annotated, Any, Optional, TypeVar

import typer
from typer.core import TyperGroup

from ckpt.cli import version as installed_version

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 error or differences found, 2 usage, 3 not found, "
    "4 store unavailable or driver missing, 5 unreadable data, 6 store locked by another run, 130 interrupted."
)


class CkptGroup(TyperGroup):
    """Root group: the one place a ``CkptError`` becomes a one-line message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `ckpt list ... | head`: the reader left; not an error worth a traceback.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            raise typer.Exit(0) from None  # ExitCode.OK
        except typer.Exit:
            raise  # `--help`, `--version` and commands' own exit codes: nothing to import or print
        except Exception as exc:
            from ckpt.backends.core.errors import CkptError  # here, not at the top: see the module docstring

            if not isinstance(exc, CkptError) or os.environ.get("CKPT_DEBUG"):
                raise
            from ckpt.backends.core.urls import redact
            from ckpt.cli.console import stderr

            stderr().print(f"[bold red]error:[/] {redact(str(exc))}", markup=True)
            raise typer.Exit(int(exc.exit_code)) from exc


F = TypeVar("F", bound=Callable[..., Any])


def _resolved(command: F) -> F:
    """``command`` with its annotations evaluated once, here.

    Typer reads each command's signature several times while building the commands, and with
    ``from __future__ import annotations`` it would compile and eval every annotation string each
    time: about half of the cost of ``ckpt --help`` after the imports (bench/bench_startup.py).
    """
    command.__annotations__ = typing.get_type_hints(command, include_extras=True)
    return command


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ckpt {installed_version()}")
        raise typer.Exit()


@_resolved
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
    context: Annotated[
        Optional[str],
        typer.Option("--context", help="Use the store named NAME in ckpt.toml or ~/.config/ckpt/config.toml."),
    ] = None,
    key_prefix: Annotated[
        Optional[str],
        typer.Option(
            "--key-prefix",
            help="Redis: the RedisSaver checkpoint_prefix (writes use PREFIX_write), for every redis:// URL given.",
        ),
    ] = None,
) -> None:
    """Operate LangGraph checkpoint stores."""
    from ckpt.cli.profiles import select

    select(context, key_prefix)


# Command name -> (module in ckpt.cli, function). Only the module of the command run is imported:
# the others cost ~10 ms of start-up together (`python -X importtime`), paid by every `ckpt list`.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("list_", "list_"),
    "show": ("show", "show"),
    "diff": ("diff", "diff"),
    "replay": ("replay", "replay"),
    "export": ("export", "export"),
    "import": ("import_", "import_"),
    "migrate": ("migrate", "migrate"),
    "prune": ("prune", "prune"),
    "compact": ("compact", "compact"),
    "size": ("size", "size"),
    "check": ("check", "check"),
    "doctor": ("doctor", "doctor"),
}


def _command(name: str) -> Callable[..., Any]:
    from importlib import import_module

    module, function = COMMANDS[name]
    return getattr(import_module(f"ckpt.cli.{module}"), function)  # type: ignore[no-any-return]


def build_app(only: str | None = None) -> typer.Typer:
    """The Typer app with every command, or with just ``only`` (what ``main`` runs)."""
    built = typer.Typer(
        cls=CkptGroup,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        help="Operate LangGraph checkpoint stores: list, show, export, import and migrate.\n\n" + EXIT_CODES_HELP,
        epilog=EXIT_CODES_HELP,
        rich_markup_mode=None,
    )
    built.callback()(_root)
    for name in COMMANDS if only is None else (only,):
        built.command(name)(_resolved(_command(name)))
    return built


_ROOT_OPTIONS_WITH_VALUE = ("--context", "--key-prefix")


def requested_command(args: list[str]) -> str | None:
    """The command ``args`` run, when that is certain before parsing: ``ckpt [root options] NAME ...``.

    Typer builds every registered command's parameters on each run; building only the one asked
    for saves a good part of the start-up of every command (bench/bench_startup.py). Anything
    else (``--help``, ``--version``, an unknown or misspelled name, shell completion) gets the
    whole app, so help, errors and completion are unchanged.
    """
    if any(name.startswith("_CKPT_COMPLETE") for name in os.environ):
        return None
    at = 0
    while at < len(args):
        arg = args[at]
        if arg in _ROOT_OPTIONS_WITH_VALUE:
            at += 2
        elif arg.startswith(tuple(option + "=" for option in _ROOT_OPTIONS_WITH_VALUE)):
            at += 1
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    """``app``: the whole CLI (tests, docs, completion scripts), built on first use."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    build_app(requested_command(sys.argv[1:]))(prog_name="ckpt")
