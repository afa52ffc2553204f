"""``attest run`` integration: ``attach(setup)`` gives the scheduler its step cache.

Off (imports nothing further) when ``cache.enabled`` is false or ``--no-cache`` is given.
At the end of the run it fills ``report.cache`` ({backend: hits, misses, stored_bytes}),
applies the local size and retention limits, and saves the stat index.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attest_cli.engine.run_report import RunReport
    from attest_cli.run import RunSetup

log = logging.getLogger("attest.cache")


def attach(setup: RunSetup) -> None:
    if setup.options.no_cache or not setup.settings["cache.enabled"]:
        return
    from attest_cli.cache.maintenance import enforce_limits
    from attest_cli.cache.setup import build_cache

    cache = build_cache(setup.ctx, setup.settings)
    setup.cache = cache

    def finish(report: RunReport) -> None:
        report.cache = {name: dict(row) for name, row in sorted(cache.counts.items())}
        if cache.required_failure is not None and report.status == "success":
            log.error("cache.required is true and the %s cache failed during the run: %s",
                      cache.backend_name, cache.required_failure)
            report.status = "failure"
            report.exit_code = 1
        stored = any(row.get("stored_bytes") for row in cache.counts.values())
        try:
            enforce_limits(cache.local, setup.settings, stored=stored)
        except OSError as exc:
            log.warning("could not apply the cache size and retention limits: %s", exc)

    setup.before_finish.append(finish)
    setup.closers.append(cache.close)
