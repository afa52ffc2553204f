"""``attach(setup)``: turn tracing on for one run when configured (``FEATURES`` entry).

Imports nothing from OpenTelemetry unless ``tracing.enabled`` or ``--trace``; a tracing
set-up that fails (an exporter library that will not load) is a warning, never a failed run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from attest_cli.logging import structured as attest_logging
from attest_cli.tracing.config import resolve

if TYPE_CHECKING:
    from attest_cli.run import RunSetup

log = logging.getLogger("attest.tracing")


def attach(setup: RunSetup) -> None:
    if not (setup.options.trace or setup.settings["tracing.enabled"]):
        return
    cfg = resolve(setup.settings, setup.ctx.environ, trace_flag=setup.options.trace)
    if not cfg.enabled:
        log.debug("tracing is configured but %s turns it off", cfg.disabled_by)
        return
    try:
        from attest_cli.tracing.tracer import RunTracer

        tracer = RunTracer(cfg, workdir=setup.ctx.workdir, environ=setup.ctx.environ,
                           masker=setup.masker, pipeline_root=setup.pipeline.root)
        tracer.start_root(setup.report)
    except Exception as exc:
        log.warning("tracing is off for this run: could not set up the %s exporter: %s",
                    cfg.wire, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return
    setup.bus.subscribe(tracer)
    setup.env_providers.append(tracer.step_environment)
    attest_logging.trace_context = tracer.current_ids

    def close() -> None:
        attest_logging.trace_context = None
        tracer.close()

    setup.closers.append(close)
