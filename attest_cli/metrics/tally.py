"""The metric catalogue (SPEC §5) and the tally that turns run events into its values.

Every way metrics leave attest (the live endpoint, ``attest serve``, the Pushgateway and the
textfile) exposes the *same* numbers: cumulative counters and histograms kept per pipeline
in the run history. A :class:`Tally` is that data in memory: the history adds each run's
tally to its totals in one transaction, the live endpoint shows the totals plus the tally of
the run in progress. Plain Python only, so ``attest run`` never imports prometheus_client
for it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import Any, ClassVar, NamedTuple

from attest_cli.engine.events import (
    CacheChecked,
    Event,
    RunFinished,
    StepFinished,
    VerificationFinished,
)
from attest_cli.record import Record

# CI durations: ten milliseconds (a cached step) to an hour (a slow build).
BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                              60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
BUCKET_LABELS: tuple[str, ...] = (*(repr(b) for b in BUCKETS), "+Inf")


class MetricDef(NamedTuple):  # not a frozen dataclass: ~0.8 ms less start-up
    """One metric of the contract: its name without namespace, type, labels and help."""

    name: str
    kind: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str

    @property
    def per_pipeline(self) -> bool:
        return "pipeline" in self.labels

    @property
    def other_labels(self) -> tuple[str, ...]:
        """The labels stored beside the pipeline dimension (every label but ``pipeline``)."""
        return tuple(name for name in self.labels if name != "pipeline")


CATALOGUE: tuple[MetricDef, ...] = (
    MetricDef("pipeline_executions_total", "counter", ("pipeline", "status"),
              "Finished pipeline runs by outcome (interrupted, abandoned runs: failure)."),
    MetricDef("pipeline_duration_seconds", "histogram", ("pipeline",),
              "Wall time of whole pipeline runs."),
    MetricDef("step_duration_seconds", "histogram", ("pipeline", "step", "status"),
              "Wall time of executed steps (cache replays are counted as cache hits)."),
    MetricDef("cache_hits_total", "counter", ("backend",), "Step cache lookups that hit."),
    MetricDef("cache_misses_total", "counter", ("backend",), "Step cache lookups that missed."),
    MetricDef("cache_size_bytes", "gauge", ("backend",), "Bytes held by the step cache."),
    MetricDef("verifications_total", "counter", ("type",),
              "Verifications performed (signature, receipt, policy)."),
    MetricDef("verification_failures_total", "counter", ("reason",),
              "Verifications that failed, by reason."),
    MetricDef("verification_duration_seconds", "histogram", ("type",),
              "Time taken by verifications."),
    MetricDef("pipeline_last_success_timestamp_seconds", "gauge", ("pipeline",),
              "Unix time of the pipeline's last successful run."),
    MetricDef("pipeline_last_completion_timestamp_seconds", "gauge", ("pipeline",),
              "Unix time of the pipeline's last finished run, whatever its outcome."),
    MetricDef("build_info", "gauge", ("version",), "The attest version exporting (always 1)."),
    MetricDef("remote_executions_total", "counter", ("backend", "status"),
              "Steps sent to a remote execution backend, by outcome (success, failure, or "
              "cached: the server answered from its Action Cache)."),
    MetricDef("remote_queue_seconds", "histogram", ("backend",),
              "Time remote steps waited between being queued and a worker starting them."),
)
BY_NAME: dict[str, MetricDef] = {m.name: m for m in CATALOGUE}

# (series name, pipeline, values of MetricDef.other_labels [+ le for a histogram bucket])
SeriesKey = tuple[str, str, tuple[str, ...]]

_TOKEN = re.compile(r"[a-z][a-z0-9_]{0,39}")


@functools.lru_cache(maxsize=1024)  # asked per step with the same few values
def token(value: str | None, default: str = "other") -> str:
    """A bounded label value: short snake_case words pass, free text becomes ``other``.

    Reasons and kinds come from other modules; a message with a path or a key id in it
    would make one series per run, which Prometheus must never get.
    """
    if default == "other" and value in _KNOWN_TOKENS:  # a backend name: once per lookup
        return value
    text = (value or "").strip().lower().replace("-", "_").replace(" ", "_")
    return text if _TOKEN.fullmatch(text) else default


_KNOWN_TOKENS = frozenset({"local", "redis", "s3", "reapi", "remote", "cache"})


def bucket_label(value: float) -> str:
    for bound, label in zip(BUCKETS, BUCKET_LABELS, strict=False):
        if value <= bound:
            return label
    return "+Inf"


class Tally(Record):
    """Counter increments and gauge values, keyed by :data:`SeriesKey` (thread-safe)."""

    _uncompared: ClassVar[frozenset[str]] = frozenset({"_lock"})
    _unshown: ClassVar[frozenset[str]] = frozenset({"_lock"})

    counters: dict[SeriesKey, float]
    gauges: dict[SeriesKey, float]
    version: int  # bumped by every change: a rendered exposition is reused until then
    _lock: threading.Lock

    def __init__(self, counters: dict[SeriesKey, float] | None = None,
                 gauges: dict[SeriesKey, float] | None = None, version: int = 0,
                 _lock: threading.Lock | None = None) -> None:
        self.counters = {} if counters is None else counters
        self.gauges = {} if gauges is None else gauges
        self.version = version
        self._lock = threading.Lock() if _lock is None else _lock

    def inc(self, name: str, pipeline: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        key = (name, pipeline, labels)
        with self._lock:
            self.counters[key] = self.counters.get(key, 0.0) + amount
            self.version += 1

    def observe(self, name: str, pipeline: str, labels: tuple[str, ...], value: float) -> None:
        """One histogram observation, stored as a *non-cumulative* bucket count."""
        value = max(0.0, value)
        self.inc(f"{name}_bucket", pipeline, (*labels, bucket_label(value)))
        self.inc(f"{name}_sum", pipeline, labels, value)
        self.inc(f"{name}_count", pipeline, labels)

    def gauge_max(self, name: str, pipeline: str, labels: tuple[str, ...], value: float) -> None:
        key = (name, pipeline, labels)
        with self._lock:
            self.gauges[key] = max(self.gauges.get(key, value), value)
            self.version += 1

    def merged(self, other: Tally) -> Tally:
        """A new tally: counters added, gauges by maximum (timestamps only move forward)."""
        out = self.copy()
        with other._lock:
            counters, gauges = dict(other.counters), dict(other.gauges)
        for key, value in counters.items():
            out.counters[key] = out.counters.get(key, 0.0) + value
        for key, value in gauges.items():
            out.gauges[key] = max(out.gauges.get(key, value), value)
        return out

    def copy(self) -> Tally:
        with self._lock:
            return Tally(counters=dict(self.counters), gauges=dict(self.gauges))

    def only(self, pipelines: Iterable[str]) -> Tally:
        keep = set(pipelines)
        with self._lock:
            return Tally(counters={k: v for k, v in self.counters.items() if k[1] in keep},
                         gauges={k: v for k, v in self.gauges.items() if k[1] in keep})

    def __bool__(self) -> bool:
        return bool(self.counters or self.gauges)


def run_outcome(status: str) -> str:
    """The ``status`` label of a run: success, or failure (failed, interrupted and abandoned
    runs): the seed binds the label to these two values."""
    return "success" if status == "success" else "failure"


def account(tally: Tally, event: Event, pipeline: str) -> None:
    """Add what ``event`` means for the metrics to ``tally`` (events of other kinds: nothing)."""
    if isinstance(event, CacheChecked):
        name = "cache_hits_total" if event.hit else "cache_misses_total"
        tally.inc(name, pipeline, (token(event.backend),))
    elif isinstance(event, StepFinished):
        r = event.result
        if r.status in ("success", "failure"):
            tally.observe("step_duration_seconds", pipeline, (r.name, r.status), r.wall_seconds)
        if r.remote:
            _account_remote(tally, r.remote, r.status, pipeline)
    elif isinstance(event, VerificationFinished):
        kind = token(event.kind)
        tally.inc("verifications_total", pipeline, (kind,))
        if not event.ok:
            tally.inc("verification_failures_total", pipeline, (token(event.reason),))
        tally.observe("verification_duration_seconds", pipeline, (kind,), event.duration)
    elif isinstance(event, RunFinished):
        rep = event.report
        tally.inc("pipeline_executions_total", pipeline, (run_outcome(rep.status),))
        tally.observe("pipeline_duration_seconds", pipeline, (), rep.duration_seconds)
        finished = rep.finished_at or event.at
        tally.gauge_max("pipeline_last_completion_timestamp_seconds", pipeline, (), finished)
        if rep.status == "success":
            tally.gauge_max("pipeline_last_success_timestamp_seconds", pipeline, (), finished)


def _account_remote(tally: Tally, remote: dict[str, Any], status: str, pipeline: str) -> None:
    """A step that went to a remote executor (its ``remote`` record, docs/remote.md)."""
    backend = token(str(remote.get("backend")))
    tally.inc("remote_executions_total", pipeline, (backend, token(status)))
    queued, started = remote.get("queued"), remote.get("worker_start")
    if isinstance(queued, int | float) and isinstance(started, int | float) \
            and not remote.get("cached_result"):
        tally.observe("remote_queue_seconds", pipeline, (backend,), started - queued)
