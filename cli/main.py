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
from typing import Annotated, Any, NoReturn, Optional, TypeVar

import typer
from typer._click.exceptions import NoArgsIsHelpError
from typer._click.types import IntParamType
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.exceptions import TyperException

from ckpt.cli import version as installed_version

# The help's own words; "\b" keeps the next paragraph's lines as they are (Click's marker).
HELP = """Operate LangGraph checkpoint stores: read them, move them between stores, keep them small.

\b
  read      list, show, diff, replay
  move      export, import, migrate
  maintain  prune, compact, size, check, doctor, upgrade
  threads   copy-thread, fork, delete (by thread or run, with a residue scan)
  memory    long-term memory stores: memory list, show, export, import, migrate, prune, size

Run 'ckpt COMMAND --help' for a command's options and examples; docs/cli.md has them all."""

# ckpt.backends.core.errors.ExitCode in words (not imported: see the module docstring; a test keeps them in step).
EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 error or differences found, 2 usage, 3 not found, "
    "4 store unavailable or driver missing, 5 unreadable data, 6 store locked by another run, "
    "7 integrity guard stopped a delete, 8 confirmation declined (nothing changed), "
    "70 internal error (a bug: --traceback shows where), 130 interrupted."
)


def _exit_with(message: str, code: int) -> NoReturn:
    from ckpt.cli.console import error

    error(message)
    raise typer.Exit(code)


def _usage_error(exc: TyperException) -> NoReturn:
    """Click's usage errors as one line, ``error: no such option: --x (try 'ckpt prune --help')``."""
    if isinstance(exc, NoArgsIsHelpError):  # plain `ckpt`: the help itself
        exc.show()
        raise typer.Exit(exc.exit_code)
    message = " ".join(exc.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    context = getattr(exc, "ctx", None)
    if context is not None:
        message += f" (try '{context.command_path} --help')"
    _exit_with(message, exc.exit_code)


class CkptGroup(TyperGroup):
    """Root group: the one error boundary. Every exception leaves as one line on stderr and an
    exit code: a ``CkptError`` with its own, a usage error with 2, a declined prompt with 8, any
    other exception (a bug) with 70; ``--traceback`` or ``CKPT_DEBUG=1`` prints the traceback too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_placeholders(self, "")

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except typer.Exit:
            raise  # `--help`, `--version`
        except Exception as exc:  # root options: `ckpt --bogus`, a failing option callback
            fail(exc, debug="--traceback" in args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.Exit:
            raise  # `--help`, `--version` and commands' own exit codes: nothing to import or print
        except Exception as exc:
            fail(exc, debug=bool(ctx.params.get("traceback")))


def fail(exc: Exception, *, debug: bool) -> NoReturn:
    """``exc`` as one line on stderr and its exit code (the traceback before it when ``debug``)."""
    if isinstance(exc, BrokenPipeError):
        # `ckpt list ... | head`: the reader left; not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        raise typer.Exit(0) from None  # ExitCode.OK
    if isinstance(exc, TyperException):  # Click's usage errors: an unknown option or command, a bad value
        _usage_error(exc)
    if isinstance(exc, typer.Abort):  # Ctrl-C or end of input at a confirmation prompt
        _exit_with("aborted at the prompt: nothing was changed", 8)  # ExitCode.ABORTED
    from ckpt.backends.core.errors import CkptError, ExitCode  # here, not at the top: see the module docstring

    if debug or os.environ.get("CKPT_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, CkptError):
        _exit_with(str(exc), exc.exit_code)
    if isinstance(exc, OSError):  # the machine's doing, not ckpt's: a full disk, a file it may not write
        _exit_with(str(exc), ExitCode.ERROR)
    _exit_with(
        f"internal error: {type(exc).__name__}: {exc} (a bug in ckpt; rerun with --traceback to see where)",
        ExitCode.INTERNAL,
    )


class CkptCommand(TyperCommand):
    """A command whose help keeps its examples line by line and names its placeholders."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = keep_blocks(self.help)
        _name_placeholders(self, self.name or "")

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        # `[OPTIONS] URL THREAD`, not typer's `[OPTIONS] {url} {thread}`
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def keep_blocks(help_text: str | None) -> str | None:
    """``help_text`` with Click's ``\\b`` before each paragraph whose lines after the first are
    indented (``Example:`` and its commands), so that the help prints them unwrapped."""
    if not help_text:
        return help_text
    paragraphs = help_text.split("\n\n")
    for at, paragraph in enumerate(paragraphs):
        lines = paragraph.splitlines()
        if len(lines) > 1 and all(line.startswith(" ") for line in lines[1:]) and not lines[0].startswith("\b"):
            paragraphs[at] = "\b\n" + paragraph
    return "\n\n".join(paragraphs)


# What an option's value is, shown in the help (`--since TIME`) instead of typer's `<str>`.
PLACEHOLDERS: dict[str, str] = {
    "--thread": "GLOB",
    "--exempt": "GLOB",
    "--since": "TIME",
    "--until": "TIME",
    "--keep-within": "AGE",
    "--delete-idle": "AGE",
    "--min-idle": "AGE",
    "--ns": "NS",
    "--checkpoint": "ID",
    "--from": "ID",
    "--to": "ID",
    "--aes-key": "KEY",
    "--context": "NAME",
    "--context-file": "FILE",
    "--key-prefix": "PREFIX",
    "--metadata": "KEY=VALUE",
    "--report": "json",
    "--config": "FILE",
    "--baseline": "FILE",
    "--ttl": "MINUTES",
    "diff --thread": "THREAD",
    "replay --output": "FILE",
    "check --output": "<table|json|markdown>",
    "diff thread_or_url": "THREAD|URL_B",  # an argument: by its parameter name
}


def _name_placeholders(command: Any, name: str) -> None:
    for param in command.params:
        if param.metavar is not None or getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        if isinstance(param, TyperArgument):
            param.metavar = PLACEHOLDERS.get(f"{name} {param.name}") or (param.name or "").upper()
            continue
        if param.type.get_metavar(param, ctx=None) is not None:  # a choice shows its choices
            continue
        long = max(param.opts, key=len)
        found = PLACEHOLDERS.get(f"{name} {long}") or PLACEHOLDERS.get(long)
        if found is None:
            found = "N" if isinstance(param.type, IntParamType) else (param.name or "").upper()
        param.metavar = found


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
    context_file: Annotated[
        Optional[str],
        typer.Option(
            "--context-file",
            envvar="CKPT_CONTEXT_FILE",
            help="Read contexts from this file only (needed by prune, compact, import and migrate's target "
            "when ./ckpt.toml and ~/.config/ckpt/config.toml both define the context).",
        ),
    ] = None,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="On an error, print its traceback too (also: CKPT_DEBUG=1).")
    ] = False,
) -> None:
    """Operate LangGraph checkpoint stores."""
    from ckpt.cli.profiles import select

    select(context, key_prefix, context_file)


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
    "upgrade": ("upgrade", "upgrade"),
    "copy-thread": ("threads", "copy_thread"),
    "fork": ("threads", "fork"),
    "delete": ("threads", "delete"),
}
# Command groups: name -> module in ckpt.cli whose ``app`` is a Typer of subcommands.
GROUPS: dict[str, str] = {"memory": "memory", "report": "report"}


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
        help=HELP,
        epilog=EXIT_CODES_HELP,
        rich_markup_mode=None,
    )
    built.callback()(_root)
    from importlib import import_module

    for name in COMMANDS if only is None else (only,) if only in COMMANDS else ():
        built.command(name, cls=CkptCommand)(_resolved(_command(name)))
    for name in GROUPS if only is None else (only,) if only in GROUPS else ():
        group: typer.Typer = import_module(f"ckpt.cli.{GROUPS[name]}").app
        for info in group.registered_commands:
            info.cls = CkptCommand
            if info.callback is not None:
                info.callback = _resolved(info.callback)
        built.add_typer(group, name=name)
    return built


_ROOT_OPTIONS_WITH_VALUE = ("--context", "--key-prefix", "--context-file")
_ROOT_FLAGS = ("--traceback",)


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
        elif arg.startswith(tuple(option + "=" for option in _ROOT_OPTIONS_WITH_VALUE)) or arg in _ROOT_FLAGS:
            at += 1
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in COMMANDS or arg in GROUPS else None
    return None


def __getattr__(name: str) -> Any:
    """``app``: the whole CLI (tests, docs, completion scripts), built on first use."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    build_app(requested_command(sys.argv[1:]))(prog_name="ckpt")
