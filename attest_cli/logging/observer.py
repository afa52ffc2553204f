"""The logging observer: turns run events into structured log lines.

Run-level events are INFO (the ``Pipeline execution completed`` line of the seed); step and
cache events are DEBUG so a terminal's progress view is not repeated, and ``-v`` shows them.
"""

from __future__ import annotations

import logging

from attest_cli.engine.events import (
    CacheChecked,
    CacheStored,
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from attest_cli.logging.structured import TRACE, fields

pipeline_log = logging.getLogger("attest.pipeline")
cache_log = logging.getLogger("attest.cache")


class RunLogObserver:
    def __init__(self) -> None:
        # the levels are set before a run starts; what they silence is never delivered
        kinds: list[type[Event]] = [RunStarted, StepFinished, RunFinished]
        if pipeline_log.isEnabledFor(logging.DEBUG):
            kinds.append(StepStarted)
        if cache_log.isEnabledFor(logging.DEBUG):
            kinds += [CacheChecked, CacheStored]
        self.observed_events = tuple(kinds)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            pipeline_log.info("Pipeline execution started", extra=fields(
                pipeline=event.pipeline.name, run_id=event.run_id,
                steps_total=len(event.selected), parallel=event.parallel))
        elif isinstance(event, StepStarted):
            if pipeline_log.isEnabledFor(logging.DEBUG):  # per step: skip building the fields
                pipeline_log.debug("Step started", extra=fields(step=event.step, slot=event.slot))
        elif isinstance(event, StepFinished):
            r = event.result
            level = logging.WARNING if r.status == "failure" else logging.DEBUG
            if not pipeline_log.isEnabledFor(level):
                return
            pipeline_log.log(level, "Step %s", "failed" if r.status == "failure" else "finished",
                             extra=fields(step=r.name, status=r.status, exit_code=r.exit_code,
                                          duration_ms=round(r.wall_seconds * 1000),
                                          reason=r.reason))
        elif isinstance(event, CacheChecked):
            if not cache_log.isEnabledFor(logging.DEBUG):
                return  # TRACE is below DEBUG
            if event.hit:
                cache_log.debug("cache.hit", extra=fields(step=event.step, backend=event.backend,
                                                          key=event.key,
                                                          up_to_date=event.up_to_date))
            else:
                cache_log.debug("cache.miss", extra=fields(step=event.step,
                                                           backend=event.backend, key=event.key,
                                                           reason=event.reason))
            if event.components:
                cache_log.log(TRACE, "cache key components",
                              extra=fields(step=event.step, **event.components))
        elif isinstance(event, CacheStored):
            cache_log.debug("cache.store" if event.stored else "cache.store skipped",
                            extra=fields(step=event.step, backend=event.backend,
                                         bytes=event.bytes, reason=event.reason))
        elif isinstance(event, RunFinished):
            rep = event.report
            ok = rep.status == "success"
            pipeline_log.log(
                logging.INFO if ok else logging.ERROR,
                "Pipeline execution completed" if ok else "Pipeline execution failed",
                extra=fields(pipeline=rep.pipeline, duration_ms=round(rep.duration_seconds * 1000),
                             steps_total=len(rep.steps), steps_success=rep.steps_success,
                             cache_hit_rate=rep.cache_hit_rate, status=rep.status,
                             run_id=rep.run_id))
