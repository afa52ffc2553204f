"""OpenTelemetry spans from run events: a root per run, a child per step and per operation.

An observer like the others: it turns :mod:`attest_cli.engine.events` into spans with the
events' own timestamps, hands every step process a ``TRACEPARENT`` for that step's span
(so a nested ``attest run`` or any OTel-aware tool joins the trace) and lets the JSON logs
carry ``trace_id``/``span_id``. Sampling is decided at the end of the trace
(:mod:`attest_cli.tracing.sampling`). Imported only when tracing is on; spans are attest's
own records (:mod:`attest_cli.tracing.spans`), so the run never loads the OpenTelemetry SDK
on its own thread (the export thread does, for the exporters that need it).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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
from attest_cli.engine.stepscope import current_step
from attest_cli.procid import hostname
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
from attest_cli.tracing.spans import (
    RecordedSpan,
    Resource,
    Scope,
    SpanIds,
    SpanKind,
    StatusCode,
    new_span_id,
    new_trace_id,
)

log = logging.getLogger("attest.tracing")

# OpenTelemetry CI/CD semantic conventions (cicd.pipeline.result and
# cicd.pipeline.task.run.result enum values; tests check them against the semconv package)
RUN_RESULT = {"success": "success", "failure": "failure", "interrupted": "cancellation",
               "abandoned": "error"}
ACTION = "RUN"  # cicd.pipeline.action.name: attest runs a pipeline; the root is "RUN <name>"


def task_result(r: StepResult) -> tuple[str, str | None]:
    """``(cicd.pipeline.task.run.result, error.type)`` of a finished step.

    A cached step is ``success`` (its outputs are the ones a run would make;
    ``attest.step.cache_hit`` tells it apart); a step that never ran is ``skip``. Failures
    are told apart by why: the step's timeout (``timeout``), attest's interrupt
    (``cancellation``), a step attest could not start or watch (``error``, exit code
    unknown), else the command's own ``failure`` with its exit code or signal as the
    low-cardinality ``error.type``.
    """
    if r.status in ("success", "cached"):
        return "success", None
    if r.status == "skipped":
        return "skip", None
    if r.timed_out:
        return "timeout", "timeout"
    if (r.reason or "").startswith("killed by interrupt"):
        return "cancellation", "interrupted"
    if r.signal:
        try:
            return "failure", signal.Signals(r.signal).name  # e.g. SIGKILL (the OOM killer)
        except ValueError:
            return "failure", f"signal_{r.signal}"
    if r.exit_code is None:
        return "error", "internal"
    return "failure", f"exit_code_{r.exit_code}"


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def run_error_type(report: RunReport) -> str | None:
    """``error.type`` of a run that did not succeed: its first failed step's, else why."""
    if report.status == "success":
        return None
    if report.status == "interrupted":
        return "interrupted"
    if report.status == "abandoned":
        return "abandoned"
    for step in report.steps:
        if step.status == "failure":
            return task_result(step)[1]
    return "step_skipped" if any(s.status == "skipped" for s in report.steps) else "internal"


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


REMOTE_ATTRIBUTES = ("backend", "endpoint", "instance", "worker", "operation", "action_digest",
                     "result_digest", "cached_result", "queued", "worker_start",
                     "worker_completed", "execution_start", "execution_completed")


def remote_attributes(remote: Mapping[str, Any] | None) -> dict[str, Any]:
    """``attest.remote.*``: where a remotely executed step ran (docs/remote.md)."""
    if not remote:
        return {}
    return {f"attest.remote.{name}": remote[name] for name in REMOTE_ATTRIBUTES
            if remote.get(name) not in (None, "")}


def vcs_attributes(root: Path) -> dict[str, str]:
    """Revision and branch when the project is a git checkout (never the remote URL, which
    may carry credentials). Outside a checkout no ``git`` process is started (a few stats
    instead of a fork and exec per traced run)."""
    if not os.environ.get("GIT_DIR") and not any(
            (d / ".git").exists() for d in (root.resolve(), *root.resolve().parents)):
        return {}
    import subprocess  # a checkout only: not part of every traced run's start-up

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
    """One run's tracing: the span bookkeeping, the tail sampler and the step environment."""

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
        from opentelemetry.sdk.version import __version__ as sdk_version  # a constant

        attrs: dict[str, Any] = {k: masker(v) for k, v in cfg.resource_attributes.items()}
        attrs.update({"service.name": cfg.service_name, "service.version": __version__,
                      "host.name": hostname(),
                      "telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry",
                      "telemetry.sdk.version": sdk_version})
        self.resource = Resource(attrs)
        self.scope = Scope("attest", __version__)
        self.parent, self.parent_state = remote_parent(environ)
        self.root: RecordedSpan | None = None
        self.head = True
        self.steps: dict[str, Any] = {}
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

    def _span(self, name: str, context: SpanIds, parent: SpanIds | None, start_ns: int,
              attrs: Mapping[str, Any], kind: SpanKind = SpanKind.INTERNAL) -> RecordedSpan:
        span = RecordedSpan(self.masker(name), context=context, parent=parent, kind=kind,
                            start_time=start_ns, attributes=self._attrs(attrs),
                            resource=self.resource, scope=self.scope,
                            on_end=self.processor.on_end)
        self.processor.on_start(span)
        return span

    def _child(self, name: str, parent: RecordedSpan | None, start: float,
               attrs: Mapping[str, Any]) -> RecordedSpan:
        assert self.root is not None
        up = (parent or self.root).context
        ids = SpanIds(up.trace_id, new_span_id(), trace_state=up.trace_state)
        return self._span(name, ids, up, _ns(start), attrs)

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
                span.set_status(StatusCode.ERROR, self.masker(event.reason or "failed"))
            span.end(end_time=_ns(event.at))
        elif isinstance(event, RunFinished):
            self._run_finished(event.report)

    def start_root(self, report: RunReport) -> str:
        """Open the run's root span as soon as the run exists, so every log line of the run
        (even "Pipeline execution started") carries its trace id; returns that id (hex)."""
        remote = None
        if self.parent is not None:
            remote = SpanIds(self.parent.trace_id, self.parent.span_id,
                             trace_flags=self.parent.flags & 1, is_remote=True,
                             trace_state=tuple(self.parent_state))
        attrs = {"cicd.pipeline.name": report.pipeline,
                 "cicd.pipeline.run.id": report.run_id,
                 "cicd.pipeline.action.name": ACTION,
                 "attest.pipeline.file": report.pipeline_file}
        # CI/CD semconv: a SERVER span named "{action} {pipeline}"; host.name and
        # service.version are on the resource, where they describe every span
        ids = SpanIds(remote.trace_id if remote else new_trace_id(), new_span_id(),
                      trace_state=remote.trace_state if remote else ())
        self.root = self._span(f"{ACTION} {report.pipeline}", ids, remote,
                               _ns(report.started_at), attrs, kind=SpanKind.SERVER)
        sc = self.root.context
        hint = head_hint(self.parent_state) if self.parent is not None else None
        self.head = head_decision(sc.trace_id, self.cfg.rate, self.parent, hint)
        self.processor.begin(sc.trace_id, sc.span_id, self.head)
        self.trace_id = f"{sc.trace_id:032x}"
        # `git rev-parse` takes tens of ms: ask while the run goes, add it when the root ends
        self._vcs_thread = threading.Thread(target=self._ask_vcs, name="attest-trace-vcs",
                                            daemon=True)
        self._vcs_thread.start()
        return self.trace_id

    def _ask_vcs(self) -> None:
        self._vcs = vcs_attributes(self.pipeline_root)

    def _run_started(self, event: RunStarted) -> None:
        assert self.root is not None  # __call__ ignores events before the root exists
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
        result, error_type = task_result(r)
        span.set_attributes(self._attrs({
            "cicd.pipeline.task.run.result": result,
            "error.type": error_type,
            "attest.step.status": r.status,
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
            **remote_attributes(r.remote),
        }))
        end = r.finished_at if r.finished_at is not None else event.at
        if r.status == "failure":
            reason = self.masker(r.reason or "failed")
            # stamped when the step ended, so collectors draw it inside its span
            span.add_event("exception", self._attrs({
                "exception.type": "StepFailed", "exception.message": reason,
                "process.exit.code": r.exit_code}), timestamp=_ns(end))
            span.set_status(StatusCode.ERROR, reason)
        span.end(end_time=_ns(end))

    def _run_finished(self, report: RunReport) -> None:
        if self.root is None or not self.root.is_recording():
            return
        root = self.root
        failed = [s.name for s in report.steps if s.status == "failure"]
        root.set_attributes(self._attrs({
            "cicd.pipeline.result": RUN_RESULT.get(report.status, "error"),
            "error.type": run_error_type(report),
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
        dropped = self.processor.buffer_dropped(root.context.trace_id)
        if dropped:
            root.set_attribute("attest.trace.dropped_spans", dropped)
        end = report.finished_at or None
        if report.status != "success":
            message = f"pipeline {report.status}" + (f": {', '.join(failed)}" if failed else "")
            root.add_event("exception", self._attrs({
                "exception.type": "PipelineFailed" if report.status == "failure"
                else "Interrupted",
                "exception.message": message, "process.exit.code": report.exit_code}),
                timestamp=_ns(end) if end else None)
            root.set_status(StatusCode.ERROR, self.masker(message))
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
        """For JSON logs: the span of the step the logging code works for, else the run's
        root span."""
        step = current_step()
        span = (self.steps.get(step) if step is not None else None) or self.root
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
            span.set_status(StatusCode.ERROR, "the run ended before the step finished")
            span.end()
        if self.root is not None and self.root.is_recording():
            self.root.set_status(StatusCode.ERROR, "the run ended abnormally")
            self.root.end()
        left = self.queue.shutdown(self.cfg.timeout)
        q = self.queue
        if q.failed or left or q.dropped or (q.exporter is None and q.first_error):
            lost = q.failed + left + q.dropped
            why = q.first_error or f"export did not finish within {self.cfg.timeout:g}s"
            log.warning("could not export %d span(s) to %s (%s): %s; the run's result is "
                        "unaffected", lost, self.cfg.target or self.cfg.wire, self.cfg.wire, why)
