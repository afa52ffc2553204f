"""Prometheus exposition of the metric catalogue, built from a :class:`Tally` snapshot.

One collector serves every way out (live endpoint, ``attest serve``, Pushgateway, textfile):
it reads a snapshot of cumulative values (from the run history, plus the run in progress)
and yields exactly the SPEC §5 families under ``monitoring.prometheus.namespace``.
prometheus_client is imported only inside these functions (module import stays cheap).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from attest_cli import __version__
from attest_cli.config.layers import Settings
from attest_cli.errors import ConfigError
from attest_cli.metrics.tally import BUCKET_LABELS, CATALOGUE, MetricDef, Tally

SnapshotSource = Callable[[], Tally]
SizeSource = Callable[[], dict[str, int]]

_PAIRED = ("cache_hits_total", "cache_misses_total")
_NAMESPACE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def namespace(settings: Settings) -> str:
    """The configured metric prefix, checked so a typo is one clear line, not a crash."""
    ns = str(settings["monitoring.prometheus.namespace"]).strip()
    if ns and not _NAMESPACE.fullmatch(ns):
        raise ConfigError(f"monitoring.prometheus.namespace: {ns!r} is not a valid metric "
                          "name prefix (letters, digits and _, not starting with a digit)")
    return ns


def full_name(ns: str, name: str) -> str:
    return f"{ns}_{name}" if ns else name


class SnapshotCollector:
    """A prometheus_client collector over a snapshot source (called once per scrape)."""

    def __init__(self, source: SnapshotSource, ns: str, sizes: SizeSource | None = None) -> None:
        self.source = source
        self.ns = ns
        self.sizes = sizes

    def describe(self) -> list[Any]:
        return []  # families vary with the data; no registration-time collision check

    def collect(self) -> Iterator[Any]:
        snap = self.source()
        for metric in CATALOGUE:
            if metric.kind == "histogram":
                yield self._histogram(metric, snap)
            elif metric.kind == "counter":
                yield self._counter(metric, snap)
            else:
                yield self._gauge(metric, snap)

    # -- families ---------------------------------------------------------------------
    def _labels(self, metric: MetricDef, pipeline: str, values: tuple[str, ...]
                ) -> tuple[str, ...]:
        if not metric.per_pipeline:
            return values
        out, rest = [], iter(values)
        for name in metric.labels:
            out.append(pipeline if name == "pipeline" else next(rest, ""))
        out.extend(rest)  # a histogram bucket's ``le``
        return tuple(out)

    def _sum(self, series: dict[Any, float], metric: MetricDef, name: str
             ) -> dict[tuple[str, ...], float]:
        """Values of one series name, summed over pipelines unless the metric has the label."""
        out: dict[tuple[str, ...], float] = {}
        for (sname, pipeline, values), value in series.items():
            if sname == name:
                key = self._labels(metric, pipeline, values)
                out[key] = out.get(key, 0.0) + value
        return out

    def _counter(self, metric: MetricDef, snap: Tally) -> Any:
        from prometheus_client.core import CounterMetricFamily

        fam = CounterMetricFamily(full_name(self.ns, metric.name), metric.help,
                                  labels=list(metric.labels))
        values = self._sum(snap.counters, metric, metric.name)
        if metric.name == "pipeline_executions_total":
            # Both outcomes exist for every pipeline seen, so ratios never lack a side.
            for pipeline, _status in list(values):
                for status in ("success", "failure"):
                    values.setdefault((pipeline, status), 0.0)
        elif metric.name in _PAIRED:
            # hits and misses exist for the same backends, for the same reason; and for
            # every configured backend from the first scrape, at 0: rate() ignores a
            # counter's first sample, so a series born at 1 would lose the first lookup
            # (and a cache that only ever misses would never raise its alert)
            for (name, _pipeline, labels), _value in snap.counters.items():
                if name in _PAIRED:
                    values.setdefault(labels, 0.0)
            for backend in (self.sizes() if self.sizes else {}):
                values.setdefault((backend,), 0.0)
        for labels, value in sorted(values.items()):
            fam.add_metric(list(labels), value)
        return fam

    def _gauge(self, metric: MetricDef, snap: Tally) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        fam = GaugeMetricFamily(full_name(self.ns, metric.name), metric.help,
                                labels=list(metric.labels))
        if metric.name == "build_info":
            fam.add_metric([__version__], 1.0)
        elif metric.name == "cache_size_bytes":
            for backend, size in sorted((self.sizes() if self.sizes else {}).items()):
                fam.add_metric([backend], float(size))
        else:
            latest: dict[tuple[str, ...], float] = {}
            for (name, pipeline, values), value in snap.gauges.items():
                if name == metric.name:
                    key = self._labels(metric, pipeline, values)
                    latest[key] = max(latest.get(key, value), value)
            for labels, value in sorted(latest.items()):
                fam.add_metric(list(labels), value)
        return fam

    def _histogram(self, metric: MetricDef, snap: Tally) -> Any:
        from prometheus_client.core import HistogramMetricFamily

        fam = HistogramMetricFamily(full_name(self.ns, metric.name), metric.help,
                                    labels=list(metric.labels))
        counts = self._sum(snap.counters, metric, f"{metric.name}_count")
        sums = self._sum(snap.counters, metric, f"{metric.name}_sum")
        raw = self._sum(snap.counters, metric, f"{metric.name}_bucket")
        # bucket series carry ``le`` as their last label value: regroup by the other labels
        per_le: dict[tuple[str, ...], dict[str, float]] = {}
        for labels, value in raw.items():
            per_le.setdefault(labels[:-1], {})[labels[-1]] = value
        for labels in sorted(counts):
            running, buckets = 0.0, []
            for le in BUCKET_LABELS:
                running += per_le.get(labels, {}).get(le, 0.0)
                buckets.append((le, running))
            fam.add_metric(list(labels), buckets, sums.get(labels, 0.0))
        return fam


def registry_for(source: SnapshotSource, ns: str, sizes: SizeSource | None = None) -> Any:
    """A fresh ``CollectorRegistry`` holding only the attest families (no process metrics)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(source, ns, sizes))
    return registry


def exposition(registry: Any) -> bytes:
    """The Prometheus text format (0.0.4) of ``registry``."""
    from prometheus_client import generate_latest

    return bytes(generate_latest(registry))


class CachedExposition:
    """The exposition text, rendered again only when its inputs changed.

    ``keyed`` returns a key that changes whenever the values do (the history's generation,
    a tally's version) and a thunk building the snapshot. Fifty scrapers between two runs
    then cost fifty key look-ups and one rendering, not fifty renderings.
    """

    def __init__(self, keyed: Callable[[], tuple[Hashable, Callable[[], Tally]]], ns: str,
                 sizes: SizeSource | None = None) -> None:
        self.keyed = keyed
        self.sizes = sizes
        self.ns = ns
        self._snapshot = Tally()
        self._sizes: dict[str, int] = {}
        self._registry: Any = None  # built at the first scrape: a run nobody scrapes never
        # imports prometheus_client (~30 ms)
        self._key: Hashable = object()
        self._bodies: dict[str, bytes] = {}  # Content-Type -> body, for the current key
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        """The Prometheus text format (0.0.4)."""
        return self.negotiate("")[1]

    def negotiate(self, accept: str) -> tuple[str, bytes]:
        """``(Content-Type, body)`` for a scraper's ``Accept`` header.

        prometheus_client's own ``choose_encoder`` decides, so attest answers exactly as a
        client-library exporter does: OpenMetrics (ending ``# EOF``) when the header asks
        for ``application/openmetrics-text``, the 0.0.4 text format otherwise.
        """
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        with self._lock:
            key, build = self.keyed()
            sizes = self.sizes() if self.sizes else {}
            full_key = (key, tuple(sorted(sizes.items())))
            if full_key != self._key:
                if self._registry is None:
                    self._registry = registry_for(lambda: self._snapshot, self.ns,
                                                  lambda: self._sizes)
                self._snapshot, self._sizes = build(), sizes
                self._bodies = {}
                self._key = full_key
            body = self._bodies.get(content_type)
            if body is None:
                body = self._bodies[content_type] = bytes(encoder(self._registry))
            return content_type, body
