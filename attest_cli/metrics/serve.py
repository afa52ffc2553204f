"""``attest serve``: the long-running exporter over the run history.

Its counters and histograms are the history's cumulative totals, so they survive restarts
and include runs made by any process writing the same history. It also answers the health
endpoints. It runs until SIGINT or SIGTERM and then stops cleanly.
"""

from __future__ import annotations

import time

from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.health.checks import Readiness
from attest_cli.metrics.cache_size import Reused, cache_sizes
from attest_cli.metrics.exposition import CachedExposition, namespace
from attest_cli.metrics.history import HistorySnapshots, open_history
from attest_cli.metrics.http_server import (
    EndpointServer,
    MetricsRoute,
    parse_endpoint,
    routes_for,
)
from attest_cli.runner.records import abandon_dead_runs
from attest_cli.runner.signals import StopRequest

ABANDONED_EVERY = 10.0  # seconds between looks for runs whose process died


class Exporter:
    def __init__(self, app: AppContext, settings: Settings, endpoint: str | None) -> None:
        self.app = app
        self.settings = settings
        ns = namespace(settings)
        where = ("--endpoint" if endpoint is not None else "monitoring.prometheus.endpoint")
        value = str(settings["monitoring.prometheus.endpoint"]) if endpoint is None else endpoint
        host, port = parse_endpoint(value, where)
        db = open_history(app, settings)
        text = CachedExposition(HistorySnapshots(db).keyed, ns,
                                Reused(cache_sizes(app, settings), ttl=10.0))
        self.readiness = Readiness(app, settings) if settings["health.enabled"] else None
        routes = routes_for(settings, MetricsRoute(text.negotiate),
                            self.readiness.evaluate if self.readiness else None)
        label = f"{where} {value!r}" if endpoint is not None else f"{where}: {value!r}"
        if endpoint is not None:
            label += "; config key monitoring.prometheus.endpoint"
        self.server = EndpointServer(host, port, routes, where=label)
        self.paths = sorted(routes)

    @property
    def url(self) -> str:
        return self.server.url

    def run_until_signalled(self) -> int:
        """Serve until SIGINT/SIGTERM; returns the signal number that stopped it."""
        with StopRequest() as stop:
            self.server.start()
            next_look = 0.0
            try:
                while not stop.stopped.wait(0.5):
                    if time.monotonic() >= next_look:  # runs killed since: abandoned, counted
                        abandon_dead_runs(self.app, self.settings)
                        next_look = time.monotonic() + ABANDONED_EVERY
            finally:
                self.server.stop()
                if self.readiness is not None:
                    self.readiness.close()
        return stop.signum or 0
