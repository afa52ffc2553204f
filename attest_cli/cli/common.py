"""Small pieces every command module shares: the context, logging set-up, output."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest_cli.errors import AttestError, NotAvailableError, UsageError

if TYPE_CHECKING:  # imported lazily: `attest --help` must not pay for YAML and config
    import typer  # nor `attest run` for Typer (cli/run_argv.py)

    from attest_cli.config.layers import Settings
    from attest_cli.context import AppContext


def app_context(ctx: typer.Context) -> AppContext:
    """The :class:`AppContext` built by the root callback (a default one in isolation)."""
    from attest_cli.context import AppContext

    obj = ctx.find_root().obj
    if isinstance(obj, AppContext):
        return obj
    return AppContext()


def root_context(*, working_dir: Path | None, config_file: Path | None, verbose: int,
                 quiet: bool, given: AppContext | None = None) -> AppContext:
    """The :class:`AppContext` of attest's root options (``-C``, ``--config``, ``-v``,
    ``-q``), on ``given``'s streams (a caller's, in-process)."""
    from attest_cli.context import AppContext

    workdir = (working_dir or Path.cwd()).resolve()
    if working_dir is not None and not workdir.is_dir():
        raise AttestError(f"-C {working_dir}: not a directory")
    app = AppContext(workdir=workdir, config_file=config_file, verbose=verbose, quiet=quiet)
    if given is not None:
        app.stdout, app.stderr = given.stdout, given.stderr
    return app


def configure_logging(app: AppContext, settings: Settings | None = None, *,
                      level: str | None = None, log_format: str | None = None) -> str:
    """Apply the log level precedence: ``--log-level`` > ``-v``/``-q`` > env > config."""
    from attest_cli.logging import structured as attest_logging

    chosen = level
    if chosen is None and app.verbose:
        chosen = "trace" if app.verbose > 1 else "debug"
    if chosen is None and app.quiet:
        chosen = "error"
    if chosen is None:
        if settings is not None:
            chosen = settings["log_level"]
        else:
            env = app.environ.get("ATTEST_LOG_LEVEL", "").lower()
            chosen = env if env in attest_logging.LEVELS else "info"
    fmt = log_format or (settings["log_format"] if settings is not None else
                         app.environ.get("ATTEST_LOG_FORMAT", "auto"))
    if fmt not in ("auto", "text", "json"):
        fmt = "auto"
    return attest_logging.configure(chosen, fmt, stream=None, environ=app.environ)


def not_available(what: str, issue: int) -> None:
    """Registered but not built yet: say so and exit 2 rather than pretend."""
    raise NotAvailableError(f"'{what}' is not available yet in this version of attest "
                            f"(tracked as issue #{issue})")


def print_json(app: AppContext, data: Any) -> None:
    """Write ``data`` as indented JSON to the command's stdout (``app.stdout``)."""
    import json

    app.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def check_run_flags(app: AppContext, *, parallel: int | None, timeout: float | None,
                    expires_in: str | None, outputs: dict[str, str | None],
                    metrics_file: str | None) -> None:
    """Refuse bad numbers and unwritable targets while parsing, before any step runs
    (docs/security.md, "Bad input is exit 2 before anything runs")."""
    from attest_cli.config.schema import lookup, parse_duration

    maximum = lookup("parallel").maximum
    if parallel is not None and maximum is not None and parallel > maximum:
        raise UsageError(f"--parallel {parallel}: must be <= {maximum:g}")
    for option, raw in (("--timeout", timeout), ("--expires-in", expires_in)):
        if raw is not None:
            try:
                parse_duration(raw)
            except ValueError as exc:
                raise UsageError(f"{option} {raw}: {exc}") from None
    for option, value in {**outputs, "--metrics-file": metrics_file}.items():
        if value:
            check_output_target(app, value, option, parent_must_exist=option == "--metrics-file")


def check_output_target(app: AppContext, value: str, option: str, *,
                        parent_must_exist: bool = False) -> None:
    """A file attest will write (``--report``, ``--metrics-file``...) must be absent, a
    regular file or a stream (see :func:`attest_cli.atomic.target_kind`)."""
    from attest_cli.atomic import STREAM, target_kind
    from attest_cli.errors import InputError

    path = Path(value) if value == "-" else app.path(value)
    try:
        kind = target_kind(path, label=value)
    except InputError as exc:
        raise UsageError(f"{option} {exc.message}") from None
    if kind != STREAM and parent_must_exist and not path.parent.is_dir():
        raise UsageError(f"{option} {value}: directory {path.parent} does not exist")


def settle_collector() -> None:
    """Freeze what is loaded (it lives as long as the process) and collect again.

    attest disables the cyclic collector while it starts and while ``attest run`` loads a
    pipeline: those phases allocate much and free little, and each full collection walked
    everything loaded so far (several ms of a start, ~10% of loading 5,000 steps).

    The first generation is also collected every 20,000 allocations instead of 700: a run
    allocates a few objects per event, and the default made ~200 collections (24 ms) of a
    5,000-step no-op run; with this, 27 (12 ms). Cycles are still collected."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    gc.enable()
