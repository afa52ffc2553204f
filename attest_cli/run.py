"""``attest run`` as a service: load, compose the observers, schedule, record.

This is the composition root of a run. The engine publishes events; each feature (cache,
history, metrics, tracing, signing) attaches itself through a small ``attach(setup)``
function listed in :data:`FEATURES`, and does nothing (imports nothing heavy) unless its
configuration turns it on.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest_cli import __version__, procid
from attest_cli.atomic import write_atomic
from attest_cli.cache.backends.bounded import interrupt_calls
from attest_cli.config.layers import Settings
from attest_cli.config.schema import suggest
from attest_cli.context import AppContext
from attest_cli.engine.events import Event, EventBus, RunFinished, RunStarted
from attest_cli.engine.interfaces import EnvProvider, StepCache
from attest_cli.engine.masking import SecretMasker
from attest_cli.engine.run_report import RunReport
from attest_cli.engine.scheduler import Scheduler, SchedulerOptions
from attest_cli.errors import UsageError
from attest_cli.logging import structured as attest_logging
from attest_cli.logging.observer import RunLogObserver
from attest_cli.pipeline.confine import check_state_outputs
from attest_cli.pipeline.graph import topological_order, with_needs
from attest_cli.pipeline.loader import load_pipeline
from attest_cli.pipeline.model import Pipeline
from attest_cli.redaction import settings_credentials
from attest_cli.runs import abandon_dead_runs

if TYPE_CHECKING:
    from attest_cli.cache.predict import Prediction

log = logging.getLogger("attest.pipeline")

# "module:function" of every feature that can attach to a run, in attach order.
FEATURES: list[str] = [
    "attest_cli.cache.runhook:attach",
    "attest_cli.tracing.runhook:attach",
    "attest_cli.metrics.runhook:attach",
    "attest_cli.attestation.runhook:attach",
    "attest_cli.analysis.junit_hook:attach",
]


@dataclass
class RunOptions:
    """Every option of ``attest run`` (SPEC §2); features read the ones they own."""

    pipeline: str | None = None
    parallel: int | None = None
    steps: list[str] = field(default_factory=list)
    dry_run: bool = False
    no_cache: bool = False
    keep_going: bool = False
    timeout: float | None = None
    sign: bool = False
    verify: bool = False
    policy: str | None = None
    output: str | None = None
    report: str | None = None
    trace: bool = False
    profile: str | None = None
    profile_output: str | None = None
    metrics_file: str | None = None
    expires_in: str | None = None
    junit: str | None = None


@dataclass
class RunSetup:
    """What a feature's ``attach`` may read and extend for one run."""

    ctx: AppContext
    settings: Settings
    options: RunOptions
    pipeline: Pipeline
    report: RunReport
    bus: EventBus
    masker: SecretMasker
    env_providers: list[EnvProvider] = field(default_factory=list)
    cache: StepCache | None = None
    before_finish: list[Callable[[RunReport], None]] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)


def new_run_id() -> str:
    """Sortable and unique: UTC time to the millisecond plus 6 random hex digits."""
    now = time.time()
    return (time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z-"
            + secrets.token_hex(3))


Loaded = tuple[Pipeline, Settings, list[str]]


def load(ctx: AppContext, options: RunOptions) -> Loaded:
    """Load the pipeline and settings, and resolve the steps to run, in order."""
    doc = ctx.pipeline_doc(options.pipeline, required=True)
    assert doc is not None
    pipeline = load_pipeline(ctx.pipeline_path(options.pipeline), doc=doc)
    settings = ctx.settings(pipeline_doc=doc, flags={"parallel": options.parallel})
    check_state_outputs(doc, pipeline, settings, ctx.state_dir)
    order = topological_order(pipeline)
    if options.steps:
        for name in options.steps:
            if name not in pipeline.steps:
                raise UsageError(f"--step {name}: no such step in {doc.path}"
                                 f"{suggest(name, pipeline.steps)}")
        chosen = with_needs(pipeline, options.steps)
        order = [n for n in order if n in chosen]
    return pipeline, settings, order


def parallelism(settings: Settings) -> int:
    return int(settings["parallel"]) or os.cpu_count() or 1


def secret_values(pipeline: Pipeline, environ: dict[str, str]) -> list[str]:
    merged = {**environ, **pipeline.env}
    for step in pipeline.steps.values():
        merged.update(step.env)
    return [merged[n] for n in pipeline.secret_names if merged.get(n)]


def execute(ctx: AppContext, options: RunOptions, *, view: Callable[[Event], None] | None = None,
            loaded: Loaded | None = None) -> RunReport:
    """Run the pipeline; always returns the finished (possibly failed) report."""
    pipeline, settings, order = loaded or load(ctx, options)
    run_id = new_run_id()
    masker = SecretMasker([*secret_values(pipeline, ctx.environ),
                           *settings_credentials(settings.values, ctx.environ)])
    attest_logging.masker = masker if masker else None
    me = procid.current()
    report = RunReport(run_id=run_id, pipeline=pipeline.name,
                       pipeline_file=ctx.display(pipeline.path), started_at=time.time(),
                       parallel=parallelism(settings), attest_version=__version__,
                       hostname=me.host, pid=me.pid, process_start=me.start)
    abandon_dead_runs(ctx, settings)  # before the features read the history's totals
    bus = EventBus()
    setup = RunSetup(ctx=ctx, settings=settings, options=options, pipeline=pipeline,
                     report=report, bus=bus, masker=masker)
    runs_dir = ctx.state_dir / "runs"
    try:
        for spec in FEATURES:
            module, func = spec.split(":")
            getattr(importlib.import_module(module), func)(setup)
        # Logs and the view observe after the features, so a step's log lines already carry
        # the span that tracing opened for it.
        bus.subscribe(RunLogObserver())
        if view is not None:
            bus.subscribe(view)
        scheduler = Scheduler(
            pipeline, order, report, bus,
            SchedulerOptions(parallel=report.parallel, logs_dir=ctx.state_dir / "logs" / run_id,
                             keep_going=options.keep_going, default_timeout=options.timeout,
                             use_cache=not options.no_cache and settings["cache.enabled"],
                             base_env=ctx.environ),
            cache=setup.cache, env_providers=setup.env_providers, masker=masker)
        write_report(report, runs_dir / f"{run_id}.json")
        # Signals are routed to the scheduler from the first event to the last record, so a
        # Ctrl-C can never land as KeyboardInterrupt inside an observer (e.g. mid-SQLite).
        with _signals_to(scheduler):
            bus.publish(RunStarted(run_id=run_id, pipeline=pipeline, selected=tuple(order),
                                   parallel=report.parallel, report=report))
            scheduler.run()
            report.finished_at = time.time()
            finalize_status(report, scheduler.interrupted)
            for hook in setup.before_finish:
                hook(report)
            bus.publish(RunFinished(report=report))
            if scheduler.interrupted is not None and report.interrupted_by is None:
                # a signal during the end-of-run work (e.g. a stalled metrics push, which
                # then gives up): the run still ends as interrupted, exit 130/143
                finalize_status(report, scheduler.interrupted)
            write_report(report, runs_dir / f"{run_id}.json")
        if options.report:  # "-" is standard output (docs/security.md)
            write_report(report, Path("-") if options.report == "-" else
                         ctx.path(options.report))
    except BaseException:
        _close_failed(report, runs_dir / f"{run_id}.json")
        raise
    finally:
        for close in reversed(setup.closers):
            try:
                close()
            except Exception as exc:
                log.warning("shutting down a run feature failed: %s", exc)
        attest_logging.masker = None
    return report


def finalize_status(report: RunReport, interrupted: int | None) -> None:
    if interrupted is not None:
        report.status = "interrupted"
        report.interrupted_by = interrupted
        report.exit_code = 128 + interrupted
    elif any(s.status in ("failure", "skipped") for s in report.steps):
        report.status = "failure"
        report.exit_code = 1
    else:
        report.status = "success"
        report.exit_code = 0


def write_report(report: RunReport, path: Path) -> None:
    try:
        write_atomic(path, report.to_json())
    except OSError as exc:  # name the file (a full disk says where it was writing)
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _close_failed(report: RunReport, path: Path) -> None:
    """A run that raised (a full disk, an internal error) ends ``failure`` in its report,
    when the report can still be written; the history recorder closes its row likewise."""
    if report.status != "running":
        return
    report.status = "failure"
    report.exit_code = 1
    report.finished_at = report.finished_at or time.time()
    try:
        if path.exists():
            write_report(report, path)
    except OSError as exc:
        log.warning("could not record the end of the run in %s: %s", path, exc)


class _signals_to:
    """Route SIGINT/SIGTERM to the scheduler while it runs (main thread only)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        log.warning("received %s, stopping running steps", signal.Signals(signum).name)
        interrupt_calls()  # a remote cache call in flight must not hold the run up
        self.scheduler.interrupt(signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@dataclass
class PlannedStep:
    name: str
    command: str
    needs: list[str]
    level: int
    cache: bool
    timeout: float | None
    prediction: Prediction | None = None  # restored or run, and why (the cache's probe)


def plan(ctx: AppContext, options: RunOptions) -> tuple[Pipeline, list[PlannedStep]]:
    """What ``--dry-run`` prints: the steps that would run, in order, nothing executed, each
    with the cache's prediction (restored or run, and why)."""
    from attest_cli.cache.predict import predict

    pipeline, settings, order = load(ctx, options)
    predictions = predict(ctx, pipeline, settings, order, no_cache=options.no_cache)
    masker = SecretMasker([*secret_values(pipeline, ctx.environ),
                           *settings_credentials(settings.values, ctx.environ)])
    level: dict[str, int] = {}
    out = []
    for name in order:
        step = pipeline.steps[name]
        level[name] = 1 + max((level[d] for d in step.needs if d in level), default=-1)
        out.append(PlannedStep(name=name, command=masker(step.run), needs=list(step.needs),
                               level=level[name], cache=step.cache and not options.no_cache,
                               timeout=step.timeout or options.timeout,
                               prediction=predictions.get(name)))
    return pipeline, out
