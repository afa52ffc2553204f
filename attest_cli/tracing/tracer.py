"""OpenTelemetry spans from run events: a root per run, a child per step and per operation.

An observer like the others: it turns :mod:`attest_cli.engine.events` into spans with the
events' own timestamps, hands every step process a ``TRACEPARENT`` for that step's span
(so a nested ``attest run`` or any OTel-aware tool joins the trace) and lets the JSON logs
carry ``trace_id``/``span_id``. Sampling is decided at the end of the trace
(:mod:`attest_cli.tracing.sampling`). Imported only when tracing is on.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from attest_cli import __version__
from attest_cli.engine.events import (
    CacheChecked,
    CacheStored,
    Event,
    ReceiptSigned,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    VerificationFinished,
)
from attest_cli.engine.masking import SecretMasker
from attest_cli.engine.run_report import RunReport, StepResult
from attest_cli.tracing.config import TracingConfig
from attest_cli.tracing.context import (
    ATTEST_KEY,
    TraceParent,
    format_traceparent,
    format_tracestate,
    head_hint,
    parse_traceparent,
    parse_tracestate,
    with_member,
)
from attest_cli.tracing.exporters import build_exporter
from attest_cli.tracing.sampling import (
    ExportQueue,
    TailSamplingProcessor,
    head_decision,
)

log = logging.getLogger("attest.tracing")

_RESULT = {"success": "success", "failure": "failure", "interrupted": "cancellation"}


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


class _ForwardToDebug(logging.Handler):
    """The SDK's own log lines (retries, refused connections) become attest debug lines, so
    an unreachable collector yields the one warning attest prints, not a stack of them."""

    last_problem: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            _ForwardToDebug.last_problem = message.splitlines()[0][:300] if message else None
        log.debug("%s: %s", record.name, message)


def quiet_sdk_logs() -> None:
    otel = logging.getLogger("opentelemetry")
    if not any(isinstance(h, _ForwardToDebug) for h in otel.handlers):
        otel.addHandler(_ForwardToDebug())
    otel.propagate = False


def vcs_attributes(root: Path) -> dict[str, str]:
    """Revision and branch when the project is a git checkout (never the remote URL, which
    may carry credentials)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return {}
    attrs = {"vcs.ref.head.revision": lines[0]}
    if lines[1] != "HEAD":
        attrs["vcs.ref.head.name"] = lines[1]
    return attrs


def remote_parent(environ: Mapping[str, str]) -> tuple[TraceParent | None,
                                                       list[tuple[str, str]]]:
    """TRACEPARENT/TRACESTATE from the environment; invalid values are ignored (W3C)."""
    parent, why = parse_traceparent(environ.get("TRACEPARENT"))
    if why:
        log.debug("ignoring TRACEPARENT %r: %s; starting a new trace",
                  environ.get("TRACEPARENT"), why)
        return None, []
    if parent is None:
        return None, []
    members, why = parse_tracestate(environ.get("TRACESTATE"))
    if why:
        log.debug("ignoring TRACESTATE: %s", why)
    return parent, members


class RunTracer:
    """One run's tracing: the SDK provider, the span bookkeeping and the step environment."""

    def __init__(self, cfg: TracingConfig, *, workdir: Path, environ: Mapping[str, str],
                 masker: SecretMasker, pipeline_root: Path,
                 make_exporter: Callable[[], Any] | None = None) -> None:
        """``make_exporter`` replaces the configured exporter (tests pass the SDK's
        ``InMemorySpanExporter``); by default ``cfg`` decides."""
        quiet_sdk_logs()
        self.cfg = cfg
        self.masker = masker
        self.pipeline_root = pipeline_root
        self.queue = ExportQueue(make_exporter or (lambda: build_exporter(cfg, workdir)),
                                 explain=lambda: _ForwardToDebug.last_problem)
        self.processor = TailSamplingProcessor(self.queue,
                                               always_sample_errors=cfg.always_sample_errors,
                                               max_buffered=cfg.max_buffered_spans)
        from opentelemetry.sdk.version import __version__ as sdk_version

        attrs: dict[str, Any] = {k: masker(v) for k, v in cfg.resource_attributes.items()}
        attrs.update({"service.name": cfg.service_name, "service.version": __version__,
                      "telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry",
                      "telemetry.sdk.version": sdk_version})
        provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource(attrs),
                                  shutdown_on_exit=False)
        # attest's own setting decided that tracing is on (tracing/config.py documents how
        # OTEL_SDK_DISABLED is weighed), so the SDK must not switch itself off from os.environ.
        if getattr(provider, "_disabled", False):
            provider._disabled = False
        provider.add_span_processor(self.processor)
        self.tracer = provider.get_tracer("attest", __version__)
        self.parent, self.parent_state = remote_parent(environ)
        self.root: Any = None
        self.root_context: Any = None
        self.head = True
        self.steps: dict[str, Any] = {}
        self._thread_span = threading.local()
        self._vcs: dict[str, str] = {}
        self._vcs_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------
    def _attrs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Drop empty values and mask every string: secrets never reach an attribute."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            out[key] = self.masker(value) if isinstance(value, str) else value
        return out

    def _child(self, name: str, parent: Any, start: float, attrs: Mapping[str, Any]) -> Any:
        ctx = trace.set_span_in_context(parent) if parent is not None else self.root_context
        return self.tracer.start_span(self.masker(name), context=ctx, start_time=_ns(start),
                                      attributes=self._attrs(attrs))

    # -- the observer --------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        if self.root is None:
            return
        if isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, StepStarted):
            self._step_started(event)
        elif isinstance(event, CacheChecked):
            self._cache_checked(event)
        elif isinstance(event, CacheStored):
            self._cache_stored(event)
        elif isinstance(event, StepFinished):
            self._step_finished(event)
        elif isinstance(event, ReceiptSigned):
            self._timed("sign receipt", event.at, event.duration,
                        {"attest.receipt.path": event.path})
        elif isinstance(event, VerificationFinished):
            span = self._child(f"verify {event.kind}", self.root, event.at - event.duration,
                               {"attest.verification.type": event.kind,
                                "attest.verification.ok": event.ok,
                                "attest.verification.reason": event.reason})
            if not event.ok:
                span.set_status(Status(StatusCode.ERROR, self.masker(event.reason or "failed")))
            span.end(end_time=_ns(event.at))
        elif isinstance(event, RunFinished):
            self._run_finished(event.report)

    def start_root(self, report: RunReport) -> str:
        """Open the run's root span as soon as the run exists, so every log line of the run
        (even "Pipeline execution started") carries its trace id; returns that id (hex)."""
        parent_ctx = None
        if self.parent is not None:
            remote = SpanContext(trace_id=self.parent.trace_id, span_id=self.parent.span_id,
                                 is_remote=True, trace_flags=TraceFlags(self.parent.flags & 1),
                                 trace_state=TraceState(self.parent_state))
            parent_ctx = trace.set_span_in_context(NonRecordingSpan(remote))
        attrs = {"cicd.pipeline.name": report.pipeline,
                 "cicd.pipeline.run.id": report.run_id,
                 "service.version": __version__,
                 "attest.pipeline.file": report.pipeline_file,
                 "host.name": report.hostname}
        self.root = self.tracer.start_span(self.masker(f"run {report.pipeline}"),
                                           context=parent_ctx, start_time=_ns(report.started_at),
                                           attributes=self._attrs(attrs))
        sc = self.root.get_span_context()
        hint = head_hint(self.parent_state) if self.parent is not None else None
        self.head = head_decision(sc.trace_id, self.cfg.rate, self.parent, hint)
        self.processor.begin(sc.trace_id, sc.span_id, self.head)
        self.root_context = trace.set_span_in_context(self.root)
        self.trace_id = f"{sc.trace_id:032x}"
        # `git rev-parse` takes tens of ms: ask while the run goes, add it when the root ends
        self._vcs_thread = threading.Thread(target=self._ask_vcs, name="attest-trace-vcs",
                                            daemon=True)
        self._vcs_thread.start()
        return self.trace_id

    def _ask_vcs(self) -> None:
        self._vcs = vcs_attributes(self.pipeline_root)

    def _run_started(self, event: RunStarted) -> None:
        self.root.set_attributes({"attest.run.parallel": event.parallel,
                                  "attest.run.steps_selected": len(event.selected)})

    def _step_started(self, event: StepStarted) -> None:
        span = self._child(f"step {event.step}", self.root, event.at,
                           {"cicd.pipeline.task.name": event.step,
                            "cicd.pipeline.task.run.id": f"{event.run_id}/{event.step}",
                            "attest.step.command": event.command,
                            "attest.step.slot": event.slot})
        with self._lock:
            self.steps[event.step] = span
        self._thread_span.span = span  # the worker thread that runs this step

    def _cache_checked(self, event: CacheChecked) -> None:
        span = self._child("cache lookup", self.steps.get(event.step), event.at - event.duration,
                           {"attest.cache.backend": event.backend,
                            "attest.cache.hit": event.hit,
                            "attest.cache.key": event.key,
                            "attest.cache.miss_reason": event.reason})
        span.end(end_time=_ns(event.at))

    def _cache_stored(self, event: CacheStored) -> None:
        span = self._child("cache store", self.steps.get(event.step), event.at - event.duration,
                           {"attest.cache.backend": event.backend,
                            "attest.cache.key": event.key,
                            "attest.cache.bytes": event.bytes,
                            "attest.cache.stored": event.stored,
                            "attest.cache.not_stored_reason": event.reason})
        span.end(end_time=_ns(event.at))

    def _timed(self, name: str, at: float, duration: float, attrs: Mapping[str, Any]) -> None:
        self._child(name, self.root, at - duration, attrs).end(end_time=_ns(at))

    def _step_finished(self, event: StepFinished) -> None:
        r: StepResult = event.result
        with self._lock:
            span = self.steps.pop(r.name, None)
        if span is None:  # skipped: never started, a zero-length span says why
            span = self._child(f"step {r.name}", self.root, event.at,
                               {"cicd.pipeline.task.name": r.name})
        span.set_attributes(self._attrs({
            "cicd.pipeline.task.run.result": r.status,
            "process.exit.code": r.exit_code,
            "attest.step.cache_hit": r.cache_hit,
            "attest.cache.backend": r.cache_backend,
            "attest.step.duration_seconds": round(r.wall_seconds, 6),
            "attest.step.cpu_user_seconds": round(r.cpu_user_seconds, 6),
            "attest.step.cpu_system_seconds": round(r.cpu_system_seconds, 6),
            "attest.step.max_rss_bytes": r.max_rss_bytes,
            "attest.step.timed_out": r.timed_out or None,
            "attest.step.signal": r.signal,
            "attest.step.reason": r.reason,
        }))
        if r.status == "failure":
            reason = self.masker(r.reason or "failed")
            span.add_event("exception", self._attrs({
                "exception.type": "StepFailed", "exception.message": reason,
                "process.exit.code": r.exit_code}))
            span.set_status(Status(StatusCode.ERROR, reason))
        end = r.finished_at if r.finished_at is not None else event.at
        span.end(end_time=_ns(end))

    def _run_finished(self, report: RunReport) -> None:
        if self.root is None or not self.root.is_recording():
            return
        root = self.root
        failed = [s.name for s in report.steps if s.status == "failure"]
        root.set_attributes(self._attrs({
            "cicd.pipeline.result": _RESULT.get(report.status, report.status),
            "attest.run.status": report.status,
            "process.exit.code": report.exit_code,
            "attest.run.steps_total": len(report.steps),
            "attest.run.steps_success": report.steps_success,
            "attest.run.cache_hit_rate": report.cache_hit_rate,
            "attest.run.failed_steps": ",".join(failed) or None,
        }))
        if self._vcs_thread is not None:
            self._vcs_thread.join(2)  # git answers in ms; never hold the run's end long
            root.set_attributes(self._attrs(self._vcs))
        dropped = self.processor.buffer_dropped(root.get_span_context().trace_id)
        if dropped:
            root.set_attribute("attest.trace.dropped_spans", dropped)
        if report.status != "success":
            message = f"pipeline {report.status}" + (f": {', '.join(failed)}" if failed else "")
            root.add_event("exception", self._attrs({
                "exception.type": "PipelineFailed" if report.status == "failure"
                else "Interrupted",
                "exception.message": message, "process.exit.code": report.exit_code}))
            root.set_status(Status(StatusCode.ERROR, self.masker(message)))
        end = report.finished_at or None
        root.end(end_time=_ns(end) if end else None)

    # -- context out ---------------------------------------------------------------------
    def step_environment(self, step: str) -> dict[str, str]:
        """The EnvProvider: TRACEPARENT/TRACESTATE of the step's span for its process."""
        with self._lock:
            span = self.steps.get(step)
        if span is None:
            return {}
        sc = span.get_span_context()
        sampled = self.processor.may_keep(sc.trace_id)
        members = with_member(self.parent_state, ATTEST_KEY, "h1" if self.head else "h0")
        return {"TRACEPARENT": format_traceparent(sc.trace_id, sc.span_id, sampled=sampled),
                "TRACESTATE": format_tracestate(members)}

    def current_ids(self) -> tuple[str, str] | None:
        """For JSON logs: this thread's step span, else the run's root span."""
        span = getattr(self._thread_span, "span", None) or self.root
        if span is None:
            return None
        sc = span.get_span_context()
        return f"{sc.trace_id:032x}", f"{sc.span_id:016x}"

    # -- shutdown ------------------------------------------------------------------------
    def close(self) -> None:
        """End what is still open (a run that crashed), then flush within the timeout."""
        with self._lock:
            leftovers = list(self.steps.values())
            self.steps.clear()
        for span in leftovers:
            span.set_status(Status(StatusCode.ERROR, "the run ended before the step finished"))
            span.end()
        if self.root is not None and self.root.is_recording():
            self.root.set_status(Status(StatusCode.ERROR, "the run ended abnormally"))
            self.root.end()
        left = self.queue.shutdown(self.cfg.timeout)
        q = self.queue
        if q.failed or left or q.dropped or (q.exporter is None and q.first_error):
            lost = q.failed + left + q.dropped
            why = q.first_error or f"export did not finish within {self.cfg.timeout:g}s"
            log.warning("could not export %d span(s) to %s (%s): %s; the run's result is "
                        "unaffected", lost, self.cfg.target or self.cfg.wire, self.cfg.wire, why)
