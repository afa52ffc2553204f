"""Keep-or-drop at the end of a trace, and a bounded background export queue.

Why not the SDK's sampler and BatchSpanProcessor: a head sampler that drops creates
non-recording spans, so nothing is left to keep when an error shows up later, and the SDK's
processors skip unsampled spans. So every span is recorded (``ALWAYS_ON``), and this
processor decides per trace:

* the *head* decision is ``ParentBased(TraceIdRatio(rate))`` (made by the caller, see
  :func:`head_decision`): when it says keep, spans are exported as they end;
* otherwise spans are buffered (at most ``max_buffered`` per trace, oldest dropped first)
  until the local root ends and every span of the trace has ended; the buffer is then
  exported if the trace holds an error and ``always_sample_errors`` is on, else released.
  An error seen earlier decides "keep" at once and flushes the buffer.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from attest_cli.record import Record
from attest_cli.tracing.context import TraceParent, ratio_keeps
from attest_cli.tracing.spans import to_readable

# Spans are attest's RecordedSpan (or, in unit tests, the SDK's ReadableSpan): anything with
# ``context.trace_id``/``context.span_id`` and ``status.status_code`` (value 2 = ERROR).
SpanLike = Any
ERROR = 2


def exported_ok(result: Any) -> bool:
    """True for the SDK's ``SpanExportResult.SUCCESS`` and attest's own."""
    return getattr(result, "name", None) == "SUCCESS"

log = logging.getLogger("attest.tracing")


def head_decision(trace_id: int, rate: float, parent: TraceParent | None,
                  hint: bool | None) -> bool:
    """ParentBased(TraceIdRatio): a remote parent's flag wins; an outer attest run's hint
    (which sends a sampled flag while its own decision may still change) wins over the flag."""
    if parent is None:
        return ratio_keeps(trace_id, rate)
    if hint is not None:
        return hint
    return parent.sampled


# Spans leave in batches of this many while the run goes, on the queue's thread, which has
# a core to itself while steps run: the end of the run then waits for the last batch only
# (a 200-step run's 201 spans in one batch at the end: ~4 ms of its close).
BATCH_SIZE = 64


class ExportQueue:
    """Exports batches on one daemon thread; shutdown waits at most ``timeout`` seconds.

    The exporter is *built* on that thread too, when the first span to export arrives:
    loading an exporter library (OTLP pulls in protobuf, the encoder and the SDK, gRPC also
    grpcio) takes tens of ms, which then overlaps the run, and a run whose trace is dropped
    never pays it. Spans reach exporters that need the SDK's ``ReadableSpan`` converted
    here, on this thread (:func:`attest_cli.tracing.spans.to_readable`).
    """

    def __init__(self, make_exporter: Callable[[], Any], *, max_queue: int = 100_000,
                 batch_size: int = BATCH_SIZE, explain: Callable[[], str | None] = lambda: None
                 ) -> None:
        self.make_exporter = make_exporter
        self.exporter: Any = None
        self.explain = explain  # the reason behind a FAILURE result, when the exporter logged it
        self.max_queue = max_queue
        self.batch_size = batch_size
        self._items: deque[SpanLike] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self.exported = 0
        self.failed = 0
        self.dropped = 0  # queue overflow
        self.first_error: str | None = None
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="attest-trace-export",
                                        daemon=True)
        self._thread.start()

    def put(self, spans: Sequence[SpanLike]) -> None:
        with self._cond:
            room = self.max_queue - len(self._items)
            self._items.extend(spans[:max(0, room)])
            self.dropped += max(0, len(spans) - max(0, room))
            if self.exporter is None or len(self._items) >= self.batch_size:
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:  # a trace that is dropped never pays for loading the exporter
            while not self._items and not self._closing:
                self._cond.wait()
            if not self._items:
                return
        try:
            self.exporter = self.make_exporter()
        except Exception as exc:
            self.first_error = f"could not set up the exporter: {exc}"
            log.debug("building the trace exporter failed", exc_info=True)
            with self._cond:
                while not self._closing:
                    self._cond.wait()
                self.failed += len(self._items)
                self._items.clear()
            return
        while True:
            with self._cond:
                while not self._closing and len(self._items) < self.batch_size:
                    self._cond.wait(timeout=2.0)
                    if self._items and not self._closing:
                        break  # periodic flush of a slow trickle
                if not self._items and self._closing:
                    break
                batch = [self._items.popleft()
                         for _ in range(min(self.batch_size, len(self._items)))]
                self._in_flight = len(batch)
            if batch:
                self._export(batch)
            with self._cond:
                self._in_flight = 0
        try:
            self.exporter.shutdown()
        except Exception as exc:
            log.debug("trace exporter shutdown failed: %s", exc)

    def _export(self, batch: list[SpanLike]) -> None:
        try:
            if not getattr(self.exporter, "takes_recorded_spans", False):
                batch = to_readable(batch)  # the SDK's class, built here, off the run's path
            result = self.exporter.export(batch)
            error = None if exported_ok(result) else (
                getattr(self.exporter, "last_error", None) or self.explain()
                or "the collector refused or could not be reached")
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        if error is None:
            self.exported += len(batch)
        else:
            self.failed += len(batch)
            self.first_error = self.first_error or error

    def shutdown(self, timeout: float) -> int:
        """Flush what is queued within ``timeout``; returns the spans left unexported."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        thread = self._thread
        thread.join(timeout)
        if thread.is_alive():
            with self._cond:
                return len(self._items) + self._in_flight
        return 0


class _Trace(Record):
    head: bool
    root_span_id: int
    keep: bool | None  # None: undecided
    error: bool
    root_ended: bool
    open: int
    buffer: deque[SpanLike]
    dropped: int

    def __init__(self, head: bool, root_span_id: int, keep: bool | None = None,
                 error: bool = False, root_ended: bool = False, open: int = 0,
                 buffer: deque[SpanLike] | None = None, dropped: int = 0) -> None:
        self.head = head
        self.root_span_id = root_span_id
        self.keep = keep
        self.error = error
        self.root_ended = root_ended
        self.open = open
        self.buffer = deque() if buffer is None else buffer
        self.dropped = dropped


class TailSamplingProcessor:
    """Records every span and decides per trace when its local root has ended.

    Duck-types the SDK's ``SpanProcessor`` (``on_start``/``on_end``...), so the module never
    imports the SDK; attest's tracer calls it with its own recorded spans."""

    def __init__(self, queue: ExportQueue, *, always_sample_errors: bool,
                 max_buffered: int) -> None:
        self.queue = queue
        self.always_sample_errors = always_sample_errors
        self.max_buffered = max_buffered
        self._traces: dict[int, _Trace] = {}
        self._lock = threading.Lock()

    def begin(self, trace_id: int, root_span_id: int, head: bool) -> None:
        """Register a trace right after its local root ``root_span_id`` started (the root is
        counted as its one open span; its children are counted by :meth:`on_start`)."""
        with self._lock:
            self._traces[trace_id] = _Trace(head=head, root_span_id=root_span_id,
                                            keep=True if head else None, open=1)

    def may_keep(self, trace_id: int) -> bool:
        """Whether the trace can still be exported (what a child's sampled flag should say)."""
        with self._lock:
            t = self._traces.get(trace_id)
            if t is None:
                return True
            return t.keep is not False and (t.head or t.keep is True
                                            or self.always_sample_errors)

    def decision(self, trace_id: int) -> bool | None:
        """True kept, False dropped, None not decided yet."""
        with self._lock:
            t = self._traces.get(trace_id)
            return t.keep if t else None

    def buffer_dropped(self, trace_id: int) -> int:
        with self._lock:
            t = self._traces.get(trace_id)
            return t.dropped if t else 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        with self._lock:
            t = self._traces.get(span.context.trace_id)
            if t is not None:
                t.open += 1

    def on_end(self, span: SpanLike) -> None:
        ctx = span.context
        assert ctx is not None
        out: list[SpanLike] = []
        with self._lock:
            t = self._traces.get(ctx.trace_id)
            if t is None:
                out.append(span)  # not a trace this run began: export it as is
            else:
                t.open -= 1
                if span.status.status_code.value == ERROR:
                    t.error = True
                if ctx.span_id == t.root_span_id:
                    t.root_ended = True
                if t.keep is True:
                    out.append(span)
                elif t.keep is None:
                    self._buffer(t, span)
                    if t.error and self.always_sample_errors:
                        t.keep = True
                        out.extend(t.buffer)
                        t.buffer.clear()
                    elif t.root_ended and t.open <= 0:
                        t.keep = False
                        t.buffer.clear()
        if out:
            self.queue.put(out)

    def _buffer(self, t: _Trace, span: SpanLike) -> None:
        if len(t.buffer) >= self.max_buffered:
            t.buffer.popleft()
            t.dropped += 1
        t.buffer.append(span)

    def _on_ending(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
