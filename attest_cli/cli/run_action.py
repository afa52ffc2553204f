"""What ``attest run`` does with its arguments, once parsed (by Typer, or by cli/run_argv).

Nothing here imports Typer: a plain ``attest run`` command line is parsed without it
(:mod:`attest_cli.cli.run_argv`, ~10 ms of each run's start-up), and both parsers hand
the same :class:`RunArgs` to :func:`perform`.
"""

from __future__ import annotations

import gc
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli.cli.common import check_run_flags, configure_logging, settle_collector
from attest_cli.errors import UsageError
from attest_cli.record import Record

if TYPE_CHECKING:
    from attest_cli.context import AppContext
    from attest_cli.engine.events import Observer
    from attest_cli.engine.run_report import RunReport
    from attest_cli.profiling.session import ProfileOutcome
    from attest_cli.runner.features import RunOptions
    from attest_cli.runner.service import Loaded


class Profile(str, Enum):
    cpu = "cpu"
    memory = "memory"


class LogFormat(str, Enum):
    auto = "auto"
    text = "text"
    json = "json"


class PlanFormat(str, Enum):
    text = "text"
    json = "json"


class LogLevel(str, Enum):
    trace = "trace"
    debug = "debug"
    info = "info"
    warn = "warn"
    error = "error"


class RunArgs(Record):
    """``attest run``'s parameters as parsed, one field per option (the names and defaults
    of :func:`attest_cli.cli.run.run`'s parameters; a test holds the two together)."""

    step_names: list[str] | None
    pipeline: Path | None
    parallel: int | None
    step: list[str]
    dry_run: bool
    plan_format: PlanFormat
    no_cache: bool
    keep_going: bool
    timeout: float | None
    sign: bool
    verify: bool
    policy: Path | None
    output: Path | None
    expires_in: str | None
    report: Path | None
    junit: Path | None
    trace: bool
    remote_exec: bool
    profile: Profile | None
    profile_output: Path | None
    native: bool
    profile_steps: bool
    log_level: LogLevel | None
    log_format: LogFormat | None
    metrics_file: Path | None
    verbose: int
    quiet: bool
    raw_output: bool

    def __init__(self, step_names: list[str] | None = None, pipeline: Path | None = None,
                 parallel: int | None = None, step: list[str] | None = None,
                 dry_run: bool = False, plan_format: PlanFormat = PlanFormat.text,
                 no_cache: bool = False, keep_going: bool = False,
                 timeout: float | None = None, sign: bool = False, verify: bool = False,
                 policy: Path | None = None, output: Path | None = None,
                 expires_in: str | None = None, report: Path | None = None,
                 junit: Path | None = None, trace: bool = False, remote_exec: bool = False,
                 profile: Profile | None = None, profile_output: Path | None = None,
                 native: bool = False, profile_steps: bool = False,
                 log_level: LogLevel | None = None, log_format: LogFormat | None = None,
                 metrics_file: Path | None = None, verbose: int = 0, quiet: bool = False,
                 raw_output: bool = False) -> None:
        self.step_names = step_names
        self.pipeline = pipeline
        self.parallel = parallel
        self.step = [] if step is None else step
        self.dry_run = dry_run
        self.plan_format = plan_format
        self.no_cache = no_cache
        self.keep_going = keep_going
        self.timeout = timeout
        self.sign = sign
        self.verify = verify
        self.policy = policy
        self.output = output
        self.expires_in = expires_in
        self.report = report
        self.junit = junit
        self.trace = trace
        self.remote_exec = remote_exec
        self.profile = profile
        self.profile_output = profile_output
        self.native = native
        self.profile_steps = profile_steps
        self.log_level = log_level
        self.log_format = log_format
        self.metrics_file = metrics_file
        self.verbose = verbose
        self.quiet = quiet
        self.raw_output = raw_output

def perform(app: AppContext, args: RunArgs) -> None:
    """Run the pipeline as ``args`` say; raises what the run's outcome maps to (exit codes
    are the entry point's)."""
    from attest_cli.errors import Interrupted, PipelineFailed
    from attest_cli.runner import service as run_service
    from attest_cli.runner.features import RunOptions

    a = args
    app.verbose = max(app.verbose, a.verbose)
    app.quiet = app.quiet or a.quiet
    options = RunOptions(
        pipeline=str(a.pipeline) if a.pipeline else None, parallel=a.parallel,
        steps=[*(a.step_names or []), *a.step],
        dry_run=a.dry_run, no_cache=a.no_cache, keep_going=a.keep_going, timeout=a.timeout,
        sign=a.sign, verify=a.verify, policy=str(a.policy) if a.policy else None,
        output=str(a.output) if a.output else None, report=str(a.report) if a.report else None,
        trace=a.trace, profile=a.profile.value if a.profile else None,
        profile_output=str(a.profile_output) if a.profile_output else None,
        profile_steps=a.profile_steps,
        metrics_file=str(a.metrics_file) if a.metrics_file else None, expires_in=a.expires_in,
        junit=str(a.junit) if a.junit else None, remote_exec=a.remote_exec,
    )
    check_run_flags(app, parallel=a.parallel, timeout=a.timeout, expires_in=a.expires_in,
                    metrics_file=options.metrics_file,
                    outputs={"--report": options.report, "--output": options.output,
                             "--profile-output": options.profile_output})
    level = a.log_level.value if a.log_level else None
    log_format = a.log_format.value if a.log_format else None
    configure_logging(app, level=level, log_format=log_format)
    if not a.dry_run:  # the step launcher's start-up overlaps the loading (engine/launcher.py)
        from attest_cli.engine.launcher import shared_launcher

        shared_launcher()
    # The pipeline lives as long as the run: no collection while it loads (they walked
    # every object loaded so far, ~10% of loading 5,000 steps), none of it walked after.
    gc.disable()
    loaded = run_service.load(app, options)
    settle_collector()
    configure_logging(app, loaded[1], level=level, log_format=log_format)
    if a.profile_steps and a.profile is None:
        raise UsageError("--profile-steps records memray captures of the steps: use it with "
                         "--profile memory")
    if a.native and a.profile is None:
        raise UsageError("--native records native frames with memray: use it with "
                         "--profile memory")
    if a.plan_format is PlanFormat.json and not a.dry_run:
        raise UsageError("--format json formats the plan of --dry-run: use it with --dry-run")
    if a.dry_run:
        _print_plan(app, options, as_json=a.plan_format is PlanFormat.json)
        return
    if a.profile is not None:
        from attest_cli.profiling.session import profiled

        report_obj, outcome = profiled(
            app, options, loaded, native=a.native,
            execute=lambda: _execute(app, options, loaded, a.raw_output))
        _print_profile(app, outcome)
    else:
        report_obj = _execute(app, options, loaded, a.raw_output)
    if report_obj.status == "interrupted":
        raise Interrupted(report_obj.interrupted_by or 2)
    if report_obj.status != "success":
        failed = [s.name for s in report_obj.steps if s.status == "failure"]
        raise PipelineFailed(f"pipeline '{report_obj.pipeline}' failed"
                             + (f": {', '.join(failed)}" if failed else ""))


def _view(app: AppContext, raw_output: bool) -> Observer:
    from attest_cli.ui.progress import choose_view

    return choose_view(app.stderr, quiet=app.quiet, verbose=bool(app.verbose),
                       environ=app.environ, raw_output=raw_output, ci_stream=app.stdout)


def _execute(app: AppContext, options: RunOptions, loaded: Loaded,
             raw_output: bool = False) -> RunReport:
    from attest_cli.runner import service as run_service
    from attest_cli.ui.progress import LiveView, PlainView

    view = _view(app, raw_output)
    if isinstance(view, LiveView):
        view.start()
    try:
        return run_service.execute(app, options, view=view, loaded=loaded)
    finally:
        if isinstance(view, LiveView):
            view.stop()
        elif isinstance(view, PlainView):
            view.close()


def _print_profile(app: AppContext, outcome: ProfileOutcome) -> None:
    """Where the profile went and what profiling cost (stderr: stdout stays machine-readable)."""
    from attest_cli.render.profile import outcome_note

    app.stderr.write(outcome_note(outcome, app.display(outcome.path)))


def _print_plan(app: AppContext, options: RunOptions, *, as_json: bool = False) -> None:
    from attest_cli.render.plan import Plan
    from attest_cli.render.registry import RUN_PLAN
    from attest_cli.runner import service as run_service

    pipeline, steps = run_service.plan(app, options)
    app.stdout.write(RUN_PLAN.render("json" if as_json else "text", Plan(pipeline.name, steps)))
