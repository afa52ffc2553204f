"""The step cache as a run feature (``attest.run_features`` entry point ``cache``).

Off (imports nothing further) when ``cache.enabled`` is false or ``--no-cache`` is given.
At the end of the run it records ``cache`` in the report ({backend: hits, misses,
stored_bytes}), fails the run when ``cache.required`` and the cache failed, applies the
local size and retention limits, and saves the stat index.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from attest_cli.runner.features import Feature

if TYPE_CHECKING:
    from attest_cli.engine.run_report import RunReport
    from attest_cli.runner.features import RunContext

log = logging.getLogger("attest.cache")


def attach(run: RunContext) -> None:
    if run.options.no_cache or not run.settings["cache.enabled"]:
        return
    from attest_cli.cache.backends.bounded import interrupt_calls
    from attest_cli.cache.limits import enforce_limits
    from attest_cli.cache.setup import build_cache

    cache = build_cache(run.ctx, run.settings)
    run.set_cache(cache)
    run.on_interrupt(interrupt_calls)  # a remote call in flight must not hold the run up

    def finish(report: RunReport) -> None:
        cache.save_fresh({r.name: r.status in ("success", "cached") for r in report.steps})
        run.record("cache", {name: dict(row) for name, row in sorted(cache.counts.items())})
        if cache.required_failure is not None and report.status == "success":
            log.error("cache.required is true and the %s cache failed during the run: %s",
                      cache.backend_name, cache.required_failure)
            run.fail(f"cache.required: the {cache.backend_name} cache failed: "
                     f"{cache.required_failure}")
        stored = any(row.get("stored_bytes") for row in cache.counts.values())
        try:
            enforce_limits(cache.local, run.settings, stored=stored)
        except OSError as exc:
            log.warning("could not apply the cache size and retention limits: %s", exc)
        cache.flush()  # its sync overlaps the rest of the run's end; close waits for it

    run.before_finish(finish)
    run.on_close(cache.close)


FEATURE = Feature("cache", 100, attach)
