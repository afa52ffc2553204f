"""The root command and the one error boundary of attest.

Every exception becomes one ``attest: error: ...`` line and the exit code its type
carries; a traceback only with ``-v`` or ``ATTEST_DEBUG=1``.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import typer

from attest_cli import __version__
from attest_cli.cli import examples
from attest_cli.cli.common import settle_collector
from attest_cli.errors import AttestError, ExitCode, disk_full

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

    workdir = (working_dir or Path.cwd()).resolve()
    if working_dir is not None and not workdir.is_dir():
        raise AttestError(f"-C {working_dir}: not a directory")
    given = ctx.obj if isinstance(ctx.obj, AppContext) else AppContext()  # a caller's streams
    ctx.obj = AppContext(workdir=workdir, config_file=config_file, verbose=verbose, quiet=quiet,
                         stdout=given.stdout, stderr=given.stderr)
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


def _debug(argv: list[str]) -> bool:
    if os.environ.get("ATTEST_DEBUG") == "1":
        return True
    for arg in argv:
        if arg == "--":
            break
        if arg == "--verbose" or (arg.startswith("-") and not arg.startswith("--")
                                  and "v" in arg[1:] and arg[1:].isalpha()):
            return True
    return False


def _one_line(exc: BaseException) -> str:
    """An error as printed: one line (names in it escaped), no credential inside a URL."""
    from attest_cli.escaping import escape_control
    from attest_cli.redaction import redact_text

    return escape_control(redact_text(str(exc)))


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
    line = f"attest: error: {_one_line(Exception(message))}"
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click_exc.UsageError) and ctx is not None:
        line += f" (see '{ctx.command_path} --help')"
    return line


def _annotate(exc: AttestError) -> None:
    """Under GitHub Actions, the error as an ``::error file=F,line=N::`` annotation too, on
    stdout where the runner reads workflow commands."""
    from attest_cli.ui.github import error_annotation

    line = error_annotation(exc, _one_line(exc), os.environ)
    if line is not None:
        sys.stdout.write(line + "\n")


_THRESHOLDS = gc.get_threshold()  # the interpreter's, restored when main returns


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and map every outcome to an exit code."""
    from typer._click import exceptions as click_exc

    args = list(sys.argv[1:] if argv is None else argv)
    # Start-up allocates much and frees little: full collections walking every imported
    # object were several ms of each start. Collection resumes once the command is known
    # (root, below), with what was loaded so far frozen out of its way.
    gc.disable()
    command = click_command()
    code: int
    try:
        rv = command.main(args=args, prog_name="attest", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except AttestError as exc:
        if _debug(args):
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"attest: error: {_one_line(exc)}\n")
        _annotate(exc)
        code = int(exc.exit_code)
    except click_exc.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
            exc.show()
        else:
            sys.stderr.write(_click_error_line(exc) + "\n")
        code = ExitCode.USAGE if exc.exit_code in (1, 2) else exc.exit_code
    except (click_exc.TyperException, typer.Abort):
        code = ExitCode.FAILURE
    except KeyboardInterrupt:
        sys.stderr.write("attest: interrupted\n")
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        code = ExitCode.FAILURE
    except Exception as exc:  # the last line of defence: still one line, unless -v
        if _debug(args):
            import traceback

            traceback.print_exc()
        full = disk_full(exc)  # ENOSPC from any write of any command: an error, not a bug
        if full is not None:
            sys.stderr.write(f"attest: error: {_one_line(full)}\n")
            code = int(full.exit_code)
        else:
            sys.stderr.write(f"attest: internal error: {type(exc).__name__}: {_one_line(exc)} "
                             "(run with -v for the traceback)\n")
            code = ExitCode.FAILURE
    if argv is None:
        # The process ends here (the console script, python -m attest_cli). Finalisation
        # runs a full collection over every object still alive, which was 15 ms of each
        # run and 40 ms after a 5,000-step one; frozen, they are freed by reference count
        # as the modules are torn down, without being walked. (atexit handlers - logging,
        # exporters - still run first; every file attest writes is closed where written.)
        gc.freeze()
    else:  # called in-process (tests, embedding): leave the collector as it was
        gc.unfreeze()
        gc.set_threshold(*_THRESHOLDS)
        gc.enable()
    sys.stdout.flush()
    sys.exit(code)
