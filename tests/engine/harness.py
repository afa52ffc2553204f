"""A scheduler wired to the fakes of ``attest_cli.engine.testing``, for in-process tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from attest_cli.engine.events import EventBus
from attest_cli.engine.interfaces import StepCache
from attest_cli.engine.run_report import RunReport
from attest_cli.engine.scheduler import Scheduler, SchedulerOptions
from attest_cli.engine.testing import FakeClock, FakeStepRunner, RecordingObserver, Script
from attest_cli.pipeline.model import Pipeline, Step


@dataclass
class Harness:
    """One scheduler wired to fakes, with what a test asserts on."""

    scheduler: Scheduler
    runner: FakeStepRunner
    clock: FakeClock
    events: RecordingObserver
    report: RunReport


MakeScheduler = Callable[..., Harness]


def scheduler_factory(tmp_path: Path) -> MakeScheduler:
    """A function building a :class:`Harness` from steps, scripts and scheduler options."""

    def make(steps: list[Step], scripts: Mapping[str, Script] | None = None, *,
             parallel: int = 1, keep_going: bool = False, timeout: float | None = None,
             cache: StepCache | None = None, order: list[str] | None = None) -> Harness:
        pipeline = Pipeline(name="p", path=tmp_path / "attest.yaml", root=tmp_path,
                            steps={s.name: s for s in steps})
        clock = FakeClock()
        runner = FakeStepRunner(scripts, clock=clock)
        bus = EventBus()
        events = RecordingObserver()
        bus.subscribe(events)
        report = RunReport(run_id="r1", pipeline="p", pipeline_file="attest.yaml",
                           started_at=clock.time(), parallel=parallel)
        options = SchedulerOptions(parallel=parallel, logs_dir=tmp_path / "logs",
                                   keep_going=keep_going, default_timeout=timeout,
                                   base_env={"PATH": "/bin"})
        scheduler = Scheduler(pipeline, order or [s.name for s in steps], report, bus, options,
                              cache=cache, runner=runner, clock=clock)
        return Harness(scheduler, runner, clock, events, report)

    return make
