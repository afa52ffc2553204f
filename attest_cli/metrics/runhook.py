"""Metrics and history as a run feature (``attest.run_features`` entry point ``metrics``).

Always: the history observer (every run is recorded, failed and interrupted ones too).
When configured: the live endpoint (``monitoring.prometheus.enabled``), a Pushgateway push
at the end of the run (``monitoring.prometheus.pushgateway``) and the textfile
(``--metrics-file``). prometheus_client is imported only when one of those is on.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest_cli.engine.events import Event, RunFinished
from attest_cli.metrics.history import HistoryDB, HistoryRecorder
from attest_cli.metrics.tally import Tally
from attest_cli.runner.features import Feature

if TYPE_CHECKING:
    from attest_cli.runner.features import RunContext

log = logging.getLogger("attest.metrics")


def attach(setup: RunContext) -> None:
    db = HistoryDB.from_settings(setup.ctx, setup.settings)
    recorder = HistoryRecorder(db)
    setup.subscribe(recorder)
    db.hold()  # one WAL checkpoint per run, not one per write
    setup.on_close(db.release)
    setup.on_close(recorder.close)

    s = setup.settings
    live = bool(s["monitoring.prometheus.enabled"])
    gateway = str(s["monitoring.prometheus.pushgateway"]).strip()
    textfile = setup.options.metrics_file
    if not (live or gateway or textfile):
        return
    from attest_cli.metrics.cache_size import Reused, cache_sizes
    from attest_cli.metrics.exposition import namespace

    ns = namespace(s)  # a bad prefix fails before anything runs
    if textfile:
        _check_writable(setup.ctx.path(textfile))
    sizes = Reused(cache_sizes(setup.ctx, s), ttl=5.0)
    if live:
        _start_live_endpoint(setup, db, recorder, ns, sizes)
    if gateway or textfile:
        setup.subscribe(_Finisher(setup, db, recorder, ns, sizes))


def _check_writable(path: Path) -> None:
    """``--metrics-file`` that can never be written is a usage error before the run."""
    from attest_cli.errors import UsageError

    if path.is_dir():
        raise UsageError(f"--metrics-file {path}: is a directory")
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--metrics-file {path}: cannot create a file in {probe}")


def _totals(db: HistoryDB, pipeline: str | None) -> Tally:
    """The history's totals, or nothing (with a warning) when the history is unusable."""
    try:
        return db.snapshot(pipeline)
    except Exception as exc:
        log.warning("run history %s unreadable; metrics cover this run only: %s", db.path, exc)
        return Tally()


def _start_live_endpoint(setup: RunContext, db: HistoryDB, recorder: HistoryRecorder, ns: str,
                         sizes: Any) -> None:
    from attest_cli.metrics.exposition import CachedExposition
    from attest_cli.metrics.http_server import (
        EndpointServer,
        MetricsRoute,
        PortInUse,
        parse_endpoint,
        routes_for,
    )

    s = setup.settings
    value = str(s["monitoring.prometheus.endpoint"])
    where = f"monitoring.prometheus.endpoint: {value!r}"
    host, port = parse_endpoint(value, "monitoring.prometheus.endpoint")
    base = _totals(db, None)  # earlier runs; this run's tally is added live
    live = recorder.tally
    text = CachedExposition(lambda: (live.version, lambda: base.merged(live)), ns, sizes)
    readiness = _LazyReadiness(setup) if s["health.enabled"] else None
    routes = routes_for(s, MetricsRoute(text.negotiate),
                        readiness.evaluate if readiness else None)
    try:
        server = EndpointServer(host, port, routes, where=where)
    except PortInUse as exc:
        # another run or `attest serve` has the port: the run and its history matter more
        # than a live view of it (serve already exposes the history's totals)
        log.warning("%s; running without the live metrics endpoint (the run is still "
                    "recorded in the history)", exc)
        return
    server.start(wait=False)  # listening already; the loop starts beside the run
    setup.on_close(server.stop)
    if readiness is not None:
        setup.on_close(readiness.close)
    log.info("serving live metrics on %s%s", server.url, s["monitoring.prometheus.path"])


class _LazyReadiness:
    """The readiness checks, set up at the first readiness request: loading the health
    check plug-ins (an entry-point scan, ~30 ms) is not paid by runs nobody probes."""

    def __init__(self, setup: RunContext) -> None:
        self.setup = setup
        self._checks: Any = None
        self._lock = threading.Lock()

    def evaluate(self) -> Any:
        with self._lock:
            if self._checks is None:
                from attest_cli.health.checks import Readiness

                self._checks = Readiness(self.setup.ctx, self.setup.settings)
        return self._checks.evaluate()

    def close(self) -> None:
        with self._lock:
            if self._checks is not None:
                self._checks.close()


class _Finisher:
    """At RunFinished (after the history wrote the run): push and/or write the textfile."""

    def __init__(self, setup: RunContext, db: HistoryDB, recorder: HistoryRecorder, ns: str,
                 sizes: Any) -> None:
        self.setup = setup
        self.db = db
        self.recorder = recorder
        self.ns = ns
        self.sizes = sizes

    def _source(self, pipeline: str | None) -> Tally:
        totals = _totals(self.db, pipeline)
        if not self.recorder.recorded:  # the history missed this run: add it by hand
            own = self.recorder.tally
            totals = totals.merged(own if pipeline is None else own.only([pipeline]))
        return totals

    def __call__(self, event: Event) -> None:
        if not isinstance(event, RunFinished):
            return
        from attest_cli.metrics.exposition import registry_for

        s = self.setup.settings
        pipeline = event.report.pipeline
        if str(s["monitoring.prometheus.pushgateway"]).strip():
            from attest_cli.metrics.pushgateway import push

            totals = self._source(pipeline)
            push(s, pipeline, registry_for(lambda: totals, self.ns, self.sizes))
        if self.setup.options.metrics_file:
            from attest_cli.errors import AttestError
            from attest_cli.metrics.textfile import write_textfile

            path = self.setup.ctx.path(self.setup.options.metrics_file)
            totals_all = self._source(None)
            try:
                write_textfile(path, registry_for(lambda: totals_all, self.ns, self.sizes))
            except (OSError, AttestError) as exc:
                log.warning("--metrics-file %s: could not write: %s", path, exc)


FEATURE = Feature("metrics", 300, attach)
