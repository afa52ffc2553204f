"""attest's Typer app: the root options and the command tree, built lazily.

The console entry point and its error boundary are cli/entry.py; a plain ``attest run``
command line does not come here (cli/run_argv.py).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import typer

from attest_cli import __version__
from attest_cli.cli import examples
from attest_cli.cli.common import root_context, settle_collector
from attest_cli.cli.entry import one_line
from attest_cli.errors import ExitCode

app = typer.Typer(
    name="attest",
    help="Run pipelines whose every step is cached, signed and observable.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: keeps `attest --help` from importing rich
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"attest {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                help="More output: step output and debug logs; -vv for trace."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and the final result."),
    config_file: Path | None = typer.Option(None, "--config", envvar="ATTEST_CONFIG",
                                            help="Extra configuration file (above project)."),
    working_dir: Path | None = typer.Option(None, "--working-dir", "-C",
                                            help="Run as if started in this directory."),
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    from attest_cli.context import AppContext

    given = ctx.obj if isinstance(ctx.obj, AppContext) else None  # a caller's streams
    ctx.obj = root_context(working_dir=working_dir, config_file=config_file, verbose=verbose,
                           quiet=quiet, given=given)
    settle_collector()


# attest's commands, each in the module attest_cli.cli.<name> (a function <name>, or a group
# `app`, and its HELP), in help order: typer lists the commands, then the groups
COMMANDS = ("run", "init", "verify", "history", "serve", "health", "analyze", "completion")
GROUPS = ("pipeline", "config", "cache", "keys", "receipt", "monitoring", "benchmark")


def click_command() -> Any:
    """The click command tree of :data:`app`, every command's help ending in an example.

    Its commands are imported and built on first use (:class:`_LazyCommands`): importing
    every command's module and building each from its signature cost ~10 ms of every
    invocation that runs only one (``attest run``).
    """
    group = typer.main.get_command(app)
    group.epilog = examples.epilog("", group=True)
    group.commands = _LazyCommands(  # type: ignore[attr-defined]
        {name: functools.partial(_build, name, name in GROUPS) for name in (*COMMANDS, *GROUPS)})
    return group


def _build(name: str, group: bool) -> Any:
    """Command ``name`` as ``app.command(name, help=HELP)`` or ``app.add_typer`` make it."""
    module = importlib.import_module(f"attest_cli.cli.{name}")
    holder = typer.Typer()
    command: Any
    if group:
        holder.add_typer(module.app, name=name, help=module.HELP)
        command = typer.main.get_group_from_info(
            holder.registered_groups[0], pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode, suggest_commands=app.suggest_commands)
    else:
        holder.command(name, help=module.HELP)(getattr(module, name))
        command = typer.main.get_command_from_info(
            holder.registered_commands[0], pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode)
    return examples.add_epilogs(command, (name,))


class _LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name, in order, each built from its typer definition when it
    is first looked up; listing the names builds none, help and docgen build them all."""

    def __init__(self, builders: dict[str, Callable[[], Any]]) -> None:
        self._builders = builders
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._builders[name]()
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._builders[name] = lambda: command
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._builders[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


def _click_error_line(exc: Exception) -> str:
    """click's usage errors in attest's own style: ``attest: error: ...`` on one line.

    click prints a usage line, a hint and a capitalised ``Error:`` over four lines; attest's
    other errors are one line, so scripts and people read both the same way. A usage error
    ends with where help is: ``(see 'attest run --help')``.
    """
    from typer._click import exceptions as click_exc

    if isinstance(exc, click_exc.MissingParameter) and exc.param is not None \
            and exc.param.param_type_name == "argument":
        message = f"missing argument '{(exc.param.metavar or exc.param.name or '').upper()}'"
    else:
        message = exc.format_message() if isinstance(exc, click_exc.ClickException) else str(exc)
    message = " ".join(message.split()).rstrip(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    line = f"attest: error: {one_line(Exception(message))}"
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click_exc.UsageError) and ctx is not None:
        line += f" (see '{ctx.command_path} --help')"
    return line


def invoke(args: list[str]) -> int:
    """Run ``args`` through Typer; click's own errors become attest's one line and exit 2
    (everything else is the entry point's to map: cli/entry.py)."""
    from typer._click import exceptions as click_exc

    try:
        rv = click_command().main(args=args, prog_name="attest", standalone_mode=False)
    except click_exc.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
            exc.show()
        else:
            sys.stderr.write(_click_error_line(exc) + "\n")
        return ExitCode.USAGE if exc.exit_code in (1, 2) else exc.exit_code
    except (click_exc.TyperException, typer.Abort):
        return ExitCode.FAILURE
    if rv == ExitCode.INTERRUPTED:  # Typer's Exit(130) for a Ctrl-C: said as entry.py says it
        sys.stderr.write("attest: interrupted\n")
    return rv if isinstance(rv, int) else 0
