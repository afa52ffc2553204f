"""The console entry point (``attest``, ``python -m attest_cli``): the one error boundary.

Every exception becomes one ``attest: error: ...`` line and the exit code its type
carries; a traceback only with ``-v`` or ``ATTEST_DEBUG=1``.

A plain ``attest run`` command line (:mod:`attest_cli.cli.run_argv`) goes straight to the
run without importing Typer: importing Typer (its click, and what they import that attest
does not: ``subprocess``, ``platform``, ``difflib``...) and building the command were
~10 ms of a ~100 ms one-step run. Everything else - help, completion, every other command, and
any run command line the quick parser is not sure of - goes to Typer (cli/app.py).
"""

from __future__ import annotations

import gc
import os
import sys

from attest_cli.errors import AttestError, ExitCode, disk_full

_THRESHOLDS = gc.get_threshold()  # the interpreter's, restored when main returns


def main(argv: list[str] | None = None) -> None:
    """Run one command and exit with the code its outcome maps to."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Start-up allocates much and frees little: full collections walking every imported
    # object were several ms of each start. Collection resumes once the command is known
    # (the root options), with what was loaded so far frozen out of its way.
    gc.disable()
    code = _guarded(args)
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


def _dispatch(args: list[str]) -> int:
    quick = None
    if "run" in args:  # other commands do not load the quick parser
        from attest_cli.cli.run_argv import parse_run

        quick = parse_run(args, os.environ)
    if quick is None:
        from attest_cli.cli.app import invoke

        return invoke(args)
    from attest_cli.cli.common import root_context, settle_collector
    from attest_cli.cli.run_action import perform

    app = root_context(**quick.root)
    settle_collector()
    perform(app, quick.run)
    return 0


def _guarded(args: list[str]) -> int:
    try:
        return _dispatch(args)
    except AttestError as exc:
        if _debug(args):
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"attest: error: {one_line(exc)}\n")
        _annotate(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("attest: interrupted\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.FAILURE
    except Exception as exc:  # the last line of defence: still one line, unless -v
        if _debug(args):
            import traceback

            traceback.print_exc()
        full = disk_full(exc)  # ENOSPC from any write of any command: an error, not a bug
        if full is not None:
            sys.stderr.write(f"attest: error: {one_line(full)}\n")
            return int(full.exit_code)
        missing = _missing_dependency(exc)
        if missing is not None:
            sys.stderr.write(f"attest: error: {missing}\n")
            return ExitCode.FAILURE
        sys.stderr.write(f"attest: internal error: {type(exc).__name__}: {one_line(exc)} "
                         "(run with -v for the traceback)\n")
        return ExitCode.FAILURE


def _missing_dependency(exc: Exception) -> str | None:
    """A package attest needs that this interpreter lacks (``python -m attest_cli`` from a
    checkout that was never installed): what to do, instead of calling it attest's bug.
    A module of attest's own that is missing stays an internal error."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if top == "attest_cli":
        return None
    return (f"the Python package '{top}' is not installed for {sys.executable}: install "
            "attest with its dependencies (pip install attest; in a checkout, make)")


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


def one_line(exc: BaseException) -> str:
    """An error as printed: one line (names in it escaped), no credential inside a URL."""
    from attest_cli.escaping import escape_control
    from attest_cli.redaction import redact_text

    return escape_control(redact_text(str(exc)))


def _annotate(exc: AttestError) -> None:
    """Under GitHub Actions, the error as an ``::error file=F,line=N::`` annotation too, on
    stdout where the runner reads workflow commands."""
    from attest_cli.ui.github import error_annotation

    line = error_annotation(exc, one_line(exc), os.environ)
    if line is not None:
        sys.stdout.write(line + "\n")
