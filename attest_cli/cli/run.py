"""``attest run``: parse the options, delegate to the run service, map the outcome."""

from __future__ import annotations

import gc
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from attest_cli.cli.common import app_context, check_run_flags, configure_logging, settle_collector
from attest_cli.errors import UsageError

if TYPE_CHECKING:
    from attest_cli.context import AppContext
    from attest_cli.engine.events import Observer
    from attest_cli.engine.run_report import RunReport
    from attest_cli.profiling.session import ProfileOutcome
    from attest_cli.runner.features import RunOptions
    from attest_cli.runner.service import Loaded

HELP = "Execute the pipeline's steps as a DAG, in parallel, skipping unchanged steps."


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


def run(
    ctx: typer.Context,
    step_names: list[str] | None = typer.Argument(None, metavar="[STEP]...", show_default=False,
                                                  help="Steps to run with their needs, as "
                                                  "--step (make-style: attest run build test)."),
    pipeline: Path | None = typer.Option(None, "--pipeline", "-p",
                                         help="Pipeline file [default: attest.yaml]."),
    parallel: int | None = typer.Option(None, "--parallel", "-j", min=1,
                                        help="Commands at once [default: CPU count]."),
    step: list[str] = typer.Option([], "--step", help="Run only this step and its needs "
                                   "(repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, each step predicted "
                                 "cached or run (and why); run nothing."),
    plan_format: PlanFormat = typer.Option(PlanFormat.text, "--format", "-f",
                                           help="Format of the --dry-run plan: text or json."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither look up nor store."),
    keep_going: bool = typer.Option(False, "--keep-going", help="After a failure, still run "
                                    "every step that does not depend on it."),
    timeout: float | None = typer.Option(None, "--timeout", min=0.001, help="Seconds each step "
                                         "may run when it sets no timeout of its own."),
    sign: bool = typer.Option(False, "--sign", help="Write an Ed25519-signed receipt."),
    verify: bool = typer.Option(False, "--verify", help="Verify the run's receipt at the end; "
                                "fail the run if verification fails."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy file for --verify."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the receipt "
                                       "here (.yaml or .json)."),
    expires_in: str | None = typer.Option(None, "--expires-in", help="Receipt lifetime "
                                          "(e.g. 30d)."),
    report: Path | None = typer.Option(None, "--report", help="Also write the run report JSON "
                                       "here."),
    junit: Path | None = typer.Option(None, "--junit", help="Also write a JUnit XML report "
                                      "here (one testcase per step), even if the run fails."),
    trace: bool = typer.Option(False, "--trace", help="Export an OpenTelemetry trace."),
    remote_exec: bool = typer.Option(False, "--remote-exec", help="Run the steps on the "
                                     "REAPI server of execution.endpoint (execution.backend "
                                     "reapi for this run; see docs/remote.md)."),
    profile: Profile | None = typer.Option(None, "--profile", help="Profile attest itself: "
                                           "cpu (pyinstrument) or memory (memray)."),
    profile_output: Path | None = typer.Option(None, "--profile-output",
                                               help="Where the profile goes."),
    native: bool = typer.Option(False, "--native", help="memray: record native frames."),
    profile_steps: bool = typer.Option(False, "--profile-steps", help="With --profile memory: "
                                       "also record each Python process of the steps with "
                                       "memray (.attest/profiles/RUN-ID.steps/)."),
    log_level: LogLevel | None = typer.Option(None, "--log-level", help="Lowest level logged."),
    log_format: LogFormat | None = typer.Option(None, "--log-format", help="auto, text or json."),
    metrics_file: Path | None = typer.Option(None, "--metrics-file", help="Write Prometheus "
                                             "text format here (textfile collector)."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                help="Stream step output and debug logs (-vv: trace)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only failures and errors."),
    raw_output: bool = typer.Option(False, "--raw-output", help="Forward step output to the "
                                    "terminal as written, escape sequences included (default: "
                                    "only colours pass)."),
) -> None:
    from attest_cli.errors import Interrupted, PipelineFailed
    from attest_cli.runner import service as run_service
    from attest_cli.runner.features import RunOptions

    app = app_context(ctx)
    app.verbose = max(app.verbose, verbose)
    app.quiet = app.quiet or quiet
    options = RunOptions(
        pipeline=str(pipeline) if pipeline else None, parallel=parallel,
        steps=[*(step_names or []), *step],
        dry_run=dry_run, no_cache=no_cache, keep_going=keep_going, timeout=timeout, sign=sign,
        verify=verify, policy=str(policy) if policy else None,
        output=str(output) if output else None, report=str(report) if report else None,
        trace=trace, profile=profile.value if profile else None,
        profile_output=str(profile_output) if profile_output else None,
        profile_steps=profile_steps,
        metrics_file=str(metrics_file) if metrics_file else None, expires_in=expires_in,
        junit=str(junit) if junit else None, remote_exec=remote_exec,
    )
    check_run_flags(app, parallel=parallel, timeout=timeout, expires_in=expires_in,
                    metrics_file=options.metrics_file,
                    outputs={"--report": options.report, "--output": options.output,
                             "--profile-output": options.profile_output})
    configure_logging(app, level=log_level.value if log_level else None,
                      log_format=log_format.value if log_format else None)
    if not dry_run:  # the step launcher's start-up overlaps the loading (engine/launcher.py)
        from attest_cli.engine.launcher import shared_launcher

        shared_launcher()
    # The pipeline lives as long as the run: no collection while it loads (they walked
    # every object loaded so far, ~10% of loading 5,000 steps), none of it walked after.
    gc.disable()
    loaded = run_service.load(app, options)
    settle_collector()
    configure_logging(app, loaded[1], level=log_level.value if log_level else None,
                      log_format=log_format.value if log_format else None)
    if profile_steps and profile is None:
        raise UsageError("--profile-steps records memray captures of the steps: use it with "
                         "--profile memory")
    if native and profile is None:
        raise UsageError("--native records native frames with memray: use it with "
                         "--profile memory")
    if plan_format is PlanFormat.json and not dry_run:
        raise UsageError("--format json formats the plan of --dry-run: use it with --dry-run")
    if dry_run:
        _print_plan(app, options, as_json=plan_format is PlanFormat.json)
        return
    if profile is not None:
        from attest_cli.profiling.session import profiled

        report_obj, outcome = profiled(app, options, loaded, native=native,
                                       execute=lambda: _execute(app, options, loaded, raw_output))
        _print_profile(app, outcome)
    else:
        report_obj = _execute(app, options, loaded, raw_output)
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
