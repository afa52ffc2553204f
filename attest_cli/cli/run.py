"""``attest run``: its options as Typer declares them (help, completion, man page).

What the run does is :func:`attest_cli.cli.run_action.perform`, which a plain command line
reaches without Typer (:mod:`attest_cli.cli.run_argv`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from attest_cli.cli.common import app_context
from attest_cli.cli.run_action import LogFormat, LogLevel, PlanFormat, Profile, RunArgs, perform

HELP = "Execute the pipeline's steps as a DAG, in parallel, skipping unchanged steps."


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
    parsed = dict(locals())  # exactly the parameters: RunArgs has one field for each
    del parsed["ctx"]
    perform(app_context(ctx), RunArgs(**parsed))
