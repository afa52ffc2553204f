"""``attest run`` as a service: load, compose the features, schedule, decide, record.

This is the composition root of a run. The engine publishes events; each feature (cache,
history, metrics, tracing, signing, JUnit, a third party's) is found through the
``attest.run_features`` entry points (:mod:`attest_cli.runner.plugins`) and attaches
itself through a :class:`~attest_cli.runner.features.RunContext`, doing nothing (importing
nothing heavy) unless its configuration turns it on. :func:`decide_status` is the one
place a run's status is decided.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli import __version__, procid
from attest_cli.atomic import write_atomic
from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.engine.events import Event, EventBus, RunFinished, RunStarted
from attest_cli.engine.launcher import shared_launcher
from attest_cli.engine.masking import SecretMasker
from attest_cli.engine.run_report import RunReport, StepResult
from attest_cli.engine.scheduler import Scheduler, SchedulerOptions
from attest_cli.errors import AttestError
from attest_cli.logging.observer import RunLogObserver
from attest_cli.logging.structured import RunLogScope
from attest_cli.pipeline.model import Pipeline
from attest_cli.record import Record
from attest_cli.retention import apply_retention
from attest_cli.runner.features import RunContext, RunOptions
from attest_cli.runner.loading import Loaded, load, run_secrets
from attest_cli.runner.plugins import load_features, user_cache_dir
from attest_cli.runner.records import abandon_dead_runs
from attest_cli.runner.signals import routed

if TYPE_CHECKING:
    from attest_cli.cache.predict import Prediction

log = logging.getLogger("attest.pipeline")


def new_run_id() -> str:
    """Sortable and unique: UTC time to the millisecond plus 6 random hex digits."""
    now = time.time()
    return (time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z-"
            + os.urandom(3).hex())  # secrets.token_hex, without loading OpenSSL (~3 ms)


def parallelism(settings: Settings) -> int:
    return int(settings["parallel"]) or os.cpu_count() or 1


def execute(ctx: AppContext, options: RunOptions, *, view: Callable[[Event], None] | None = None,
            loaded: Loaded | None = None) -> RunReport:
    """Run the pipeline; always returns the finished (possibly failed) report."""
    # The step launcher (an interpreter start, ~15 ms) starts while the pipeline loads and
    # the features attach, not when the first step is already waiting for it.
    shared_launcher()
    pipeline, settings, order = loaded or load(ctx, options)
    run_id = new_run_id()
    masker = SecretMasker(run_secrets(ctx, pipeline, settings))
    me = procid.current()
    report = RunReport(run_id=run_id, pipeline=pipeline.name,
                       pipeline_file=ctx.display(pipeline.path), started_at=time.time(),
                       parallel=parallelism(settings), attest_version=__version__,
                       hostname=me.host, pid=me.pid, process_start=me.start)
    abandon_dead_runs(ctx, settings)  # before the features read the history's totals
    bus = EventBus()
    run = RunContext(ctx=ctx, settings=settings, options=options, pipeline=pipeline,
                     masker=masker, run_id=run_id, publish=bus.publish,
                     snapshot=report.snapshot)
    path = ctx.state_dir / "runs" / f"{run_id}.json"
    stage = _Stage()
    with RunLogScope(masker if masker else None) as logs:
        try:
            attach_features(run)
            logs.trace_ids = run.trace_ids
            for observer in run.observers:
                bus.subscribe(observer)
            # Logs and the view observe after the features, so a step's log lines already
            # carry the span that tracing opened for it.
            bus.subscribe(RunLogObserver())
            if view is not None:
                bus.subscribe(view)
            scheduler = Scheduler(
                pipeline, order, report, bus,
                SchedulerOptions(parallel=report.parallel,
                                 logs_dir=ctx.state_dir / "logs" / run_id,
                                 keep_going=options.keep_going, default_timeout=options.timeout,
                                 use_cache=not options.no_cache and settings["cache.enabled"],
                                 base_env=ctx.environ, threads=options.profile == "cpu"),
                cache=run.cache, env_providers=run.env_providers, masker=masker,
                runner=run.step_runner)
            conclude(report, run)
            # The "running" report is replaced by the final one (written with an fsync):
            # losing it to a power cut loses nothing the history does not also record.
            write_report(report, path, sync=False)
            # Signals are routed to the scheduler from the first event to the last record,
            # so a Ctrl-C can never land as KeyboardInterrupt inside an observer.
            with routed(lambda signum: _interrupt(scheduler, run, signum)):
                stage.started = True
                bus.publish(RunStarted(run_id=run_id, pipeline=pipeline, selected=tuple(order),
                                       parallel=report.parallel, report=report.snapshot()))
                scheduler.run()
                report.finished_at = time.time()
                for hook in run.finish_hooks:  # each sees the status decided so far
                    conclude(report, run, interrupted=scheduler.interrupted)
                    hook(report.snapshot())
                conclude(report, run, interrupted=scheduler.interrupted)
                stage.finished = True
                bus.publish(RunFinished(report=report.snapshot()))
                if scheduler.interrupted is not None and report.interrupted_by is None:
                    # a signal during the end-of-run work (e.g. a stalled metrics push, which
                    # then gives up): the run still ends as interrupted, exit 130/143
                    conclude(report, run, interrupted=scheduler.interrupted)
                write_report(report, path)
                apply_retention(ctx.state_dir, int(settings["history.keep_runs"]), run_id)
            if options.report:  # "-" is standard output (docs/security.md)
                write_report(report, Path("-") if options.report == "-" else
                             ctx.path(options.report))
        except BaseException as exc:
            if not stage.finished:
                _close_failed(report, run, path, exc, bus if stage.started else None)
            raise
        finally:
            _close_all(run.closers)
    return report


def _close_all(closers: Sequence[Callable[[], None]]) -> None:
    """Every closer, in reverse order of registration. One that raises is a warning; an
    interrupt inside one (a second Ctrl-C: signals are no longer routed here) stops that
    closer, not the others - the cache's close writes the entries still waiting and syncs
    them - and is raised once they have all run."""
    interrupt: BaseException | None = None
    for close in reversed(closers):
        try:
            close()
        except Exception as exc:
            log.warning("shutting down a run feature failed: %s", exc)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit
            interrupt = interrupt or exc
    if interrupt is not None:
        raise interrupt


class _Stage:
    __slots__ = ("finished", "started")

    def __init__(self) -> None:
        self.started = False  # RunStarted was published
        self.finished = False  # RunFinished was published


def attach_features(run: RunContext) -> None:
    """Attach every installed run feature, in order. A third-party feature whose
    ``attach`` raises anything but an AttestError (a usage error is meant) is a warning,
    and what it had registered before raising is undone."""
    for item in load_features(cache_dir=user_cache_dir(run.ctx.environ)):
        mark = run.mark()
        try:
            item.feature.attach(run)
        except AttestError:
            raise
        except Exception as exc:
            if item.builtin:
                raise
            run.roll_back(mark)
            log.warning("run feature %s failed to attach and is skipped: %s", item.name, exc,
                        exc_info=log.isEnabledFor(logging.DEBUG))


def decide_status(steps: Sequence[StepResult], interrupted: int | None,
                  failures: Sequence[str]) -> tuple[str, int]:
    """THE one decision of a run's status and exit code: a signal wins (128+N); a failed
    or skipped step, or a feature's :meth:`RunContext.fail`, is a failure (1)."""
    if interrupted is not None:
        return "interrupted", 128 + interrupted
    if failures or any(s.status in ("failure", "skipped") for s in steps):
        return "failure", 1
    return "success", 0


def conclude(report: RunReport, run: RunContext, *, interrupted: int | None = None) -> None:
    """Bring into the report what the features recorded and, once the steps are done, the
    status :func:`decide_status` gives."""
    for name, value in run.fields.items():
        setattr(report, name, value)
    report.failures = list(run.failures)
    if report.finished_at is None:
        return
    report.status, report.exit_code = decide_status(report.steps, interrupted, run.failures)
    report.interrupted_by = interrupted


def _interrupt(scheduler: Scheduler, run: RunContext, signum: int) -> None:
    log.warning("received %s, stopping running steps", signal.Signals(signum).name)
    for hook in run.interrupt_hooks:  # e.g. a remote cache call in flight gives up
        hook()
    scheduler.interrupt(signum)


def write_report(report: RunReport, path: Path, *, sync: bool = True) -> None:
    try:
        write_atomic(path, report.to_json(), sync=sync)
    except OSError as exc:  # name the file (a full disk says where it was writing)
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _close_failed(report: RunReport, run: RunContext, path: Path, exc: BaseException,
                  bus: EventBus | None) -> None:
    """A run that raised (a full disk, an internal error) ends ``failure``: for the
    observers (RunFinished, when RunStarted was published) and in its report, when the
    report can still be written."""
    run.fail(f"the run stopped on an error: {exc}" if str(exc)
             else f"the run stopped on {type(exc).__name__}")
    report.finished_at = report.finished_at or time.time()
    conclude(report, run)
    if bus is not None:
        bus.publish(RunFinished(report=report.snapshot()))
    try:
        if path.exists():
            write_report(report, path)
    except OSError as err:
        log.warning("could not record the end of the run in %s: %s", path, err)


class PlannedStep(Record):
    """One step of a dry run's plan: predicted cached or run, and why."""

    name: str
    command: str
    needs: list[str]
    level: int
    cache: bool
    timeout: float | None
    prediction: Prediction | None  # restored or run, and why (the cache's probe)

    def __init__(self, name: str, command: str, needs: list[str], level: int, cache: bool,
                 timeout: float | None, prediction: Prediction | None = None) -> None:
        self.name = name
        self.command = command
        self.needs = needs
        self.level = level
        self.cache = cache
        self.timeout = timeout
        self.prediction = prediction


def plan(ctx: AppContext, options: RunOptions) -> tuple[Pipeline, list[PlannedStep]]:
    """What ``--dry-run`` prints: the steps that would run, in order, nothing executed, each
    with the cache's prediction (restored or run, and why)."""
    from attest_cli.cache.predict import predict

    pipeline, settings, order = load(ctx, options)
    predictions = predict(ctx, pipeline, settings, order, no_cache=options.no_cache)
    masker = SecretMasker(run_secrets(ctx, pipeline, settings))
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
