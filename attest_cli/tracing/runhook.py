"""Tracing as a run feature (``attest.run_features`` entry point ``tracing``).

Imports nothing from OpenTelemetry unless ``tracing.enabled`` or ``--trace``; a tracing
set-up that fails (an exporter library that will not load) is a warning, never a failed run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from attest_cli.runner.features import Feature

if TYPE_CHECKING:
    from attest_cli.runner.features import RunContext

log = logging.getLogger("attest.tracing")


def attach(run: RunContext) -> None:
    if not (run.options.trace or run.settings["tracing.enabled"]):
        return
    from attest_cli.tracing.config import resolve  # ~1 ms: only when tracing is asked for

    cfg = resolve(run.settings, run.ctx.environ, trace_flag=run.options.trace)
    if not cfg.enabled:
        log.debug("tracing is configured but %s turns it off", cfg.disabled_by)
        return
    try:
        from attest_cli.tracing.tracer import RunTracer

        tracer = RunTracer(cfg, workdir=run.ctx.workdir, environ=run.ctx.environ,
                           masker=run.masker, pipeline_root=run.pipeline.root)
        run.record("trace_id", tracer.start_root(run.report))
    except Exception as exc:
        log.warning("tracing is off for this run: could not set up the %s exporter: %s",
                    cfg.wire, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return
    if cfg.defaulted_to_file:
        log.info("tracing: no exporter endpoint configured; writing spans to %s",
                 cfg.target)
    run.subscribe(tracer)
    run.add_env_provider(tracer.step_environment)
    run.set_log_trace(tracer.current_ids)
    run.on_close(tracer.close)


FEATURE = Feature("tracing", 200, attach)
