"""The ``tgspread`` app: the global options, and the commands, in the order ``tgspread --help`` lists them.

Each command lives in its own module of ``collector/_cli/`` and adds itself with ``register(app)``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Any, NoReturn

import typer
from typer._click.core import Context as ClickContext
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from collector._version import __version__

from . import (
    channels,
    check,
    collect,
    comments,
    demo,
    discover,
    export,
    hydrate,
    importing,
    login,
    media,
    publish,
    run,
    shards,
    status,
    summaries,
    verify,
)
from .common import Exit, fail, set_debug

HELP_OPTIONS = ["-h", "--help"]

#: Every command module, in help order.
COMMANDS = (login, check, collect, importing, demo, status, run, channels, discover, comments, media, verify, export,
            hydrate, summaries, publish, shards)


class _OneLineUsageErrors(TyperGroup):
    """A bad option value, an unknown option or a missing argument: one line on stderr and exit 2, like every
    other error (not click's usage box). ``tgspread`` alone still prints the help."""

    def make_context(self, info_name: str | None, args: list[str], parent: ClickContext | None = None,
                     **extra: Any) -> ClickContext:
        _no_flag_types(self)
        _errors_name_their_command(self)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise
            _usage_error(exc)

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            _usage_error(exc)


def _no_type(ctx: Any) -> None:
    """The type column of an argument in ``--help``: empty (typer would print ``<list[str]>``)."""
    return None


def _no_flag_types(command: Any) -> None:
    """A flag takes no value, so its help shows no type (typer would print ``<bool>`` beside every flag);
    arguments that take several values show their metavar, not ``<list[str]>``."""
    if hasattr(command, "get_help_option"):     # --help itself is made on first use; make it now
        command.get_help_option(SimpleNamespace(help_option_names=HELP_OPTIONS))
    for param in [*getattr(command, "params", []), getattr(command, "_help_option", None)]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if getattr(param, "param_type_name", None) == "argument":   # its name says it: no <list[str]>, <path>
            param.display_type_rich = _no_type
    for sub in getattr(command, "commands", {}).values():
        _no_flag_types(sub)


def _errors_name_their_command(command: Any) -> None:
    """Give every usage error of ``command`` and its subcommands the context it happened in: the parser raises
    some without one (an option missing its value), and the hint must name the command (``tgspread channels list
    --help``), not ``tgspread --help``."""
    parse = command.parse_args
    if not getattr(parse, "names_its_command", False):
        def parse_args(ctx: ClickContext, args: list[str]) -> list[str]:
            try:
                return parse(ctx, args)
            except UsageError as exc:
                if exc.ctx is None:
                    exc.ctx = ctx
                raise

        parse_args.names_its_command = True  # type: ignore[attr-defined]
        command.parse_args = parse_args
    for sub in getattr(command, "commands", {}).values():
        _errors_name_their_command(sub)


def _command_path(ctx: ClickContext | None) -> str:
    """The command as typed after ``tgspread``, e.g. ``channels list`` (empty for ``tgspread`` itself): the info
    names of the contexts below the root (the root's is the program's name, ``__main__.py`` under ``-m``)."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(n for n in names if n)


def _usage_error(exc: UsageError) -> NoReturn:
    command = _command_path(exc.ctx)
    option = getattr(exc, "option_name", None) or ""
    if option[1:2].isdigit():   # -1001234567890: a Bot API channel id read as options
        fail(Exit.USAGE, "a negative channel id (-100...) is read as an option: put `--` before the channel ids "
                          "(tgspread collect -- -1001234567890) or drop the -100 prefix")
    fail(Exit.USAGE, f"{exc.format_message().rstrip('.')} (see `tgspread {command + ' ' if command else ''}--help`)")


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="tgspread",
    help="Archive public Telegram channels, with engagement over time, into one DuckDB file.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,   # a plain traceback (with --debug), never one that shows local values
    context_settings={"help_option_names": HELP_OPTIONS},
)


def _version(value: bool) -> None:
    if value:
        import telethon

        typer.echo(f"tgspread {__version__} (telethon {telethon.__version__})")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")] = False,
) -> None:
    """Archive public Telegram channels, with engagement over time, into one DuckDB file.

    Exit codes: 0 ok, 1 some channels not collected, 2 usage/config/credentials, 3 archive busy,
    4 archive unusable, 5 Telegram unreachable.
    """
    set_debug(debug)


for _command in COMMANDS:
    _command.register(app)
