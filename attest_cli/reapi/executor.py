"""Remote execution: a :class:`~attest_cli.engine.interfaces.StepRunner` that runs each step
as an ``Execute`` request on a REAPI server, beside the local process runner.

Per step: the Action (:func:`attest_cli.reapi.action.spec_for_step`, salted with attest's
cache key when there is one, timed out by the step's effective timeout) over an input root
of its declared inputs and its direct needs' declared outputs (:mod:`.merkle`); the blobs
the server lacks are uploaded; the wait is bounded (:mod:`.execution`); the outputs come
back through the safe restore of :mod:`.results` and stdout, then stderr, into the step log.
Where and how it ran (worker, the worker's timestamps, the Action and result digests) is
the step's ``remote`` record, for the run report, traces, metrics and receipts.

A step stays on this machine when it says ``remote: false``, or when it declares
``secrets`` (their values would have to be written into the Command, in the server's CAS).
When the server fails (unreachable, or refusing calls), the step and every later one run
locally after one warning; under ``execution.required`` the step fails instead. A result
that cannot be trusted (a path out of the workspace, a blob not matching its digest) fails
the step: it is never written, and never silently replaced by a local run.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any

from attest_cli import deadline
from attest_cli.engine.interfaces import StepRequest, StepRunner
from attest_cli.engine.process import ProcessOutcome
from attest_cli.pathspec import covers, expand
from attest_cli.pipeline.model import Pipeline, Step
from attest_cli.reapi import action, digests, merkle, results
from attest_cli.reapi.capabilities import Capabilities
from attest_cli.reapi.cas import Cas
from attest_cli.reapi.channel import Remote
from attest_cli.reapi.errors import ReapiUnavailable, UnsafeResult
from attest_cli.reapi.execution import Execution, ExecutionTimeout, Finished
from attest_cli.reapi.protos import code_pb2

log = logging.getLogger("attest.remote")

BACKEND = "reapi"
TIMEOUT_EXIT_CODE = 124  # as a local step stopped by its timeout reports
NO_EXIT_CODE = -1  # the command never ran, or its result was refused (recorded as null)
CANCEL_WAIT_SECONDS = 2.0  # at exit after an interrupt, for the CancelOperation calls


@dataclasses.dataclass(frozen=True)
class Waits:
    """How long a step's result is waited for (seconds; docs/remote.md)."""

    queue_timeout: float  # beyond the step's own timeout: queueing, input fetch, upload
    max_wait: float  # a step without a timeout


def _stamp(ts: Any) -> float | None:
    return ts.seconds + ts.nanos / 1e9 if ts.seconds or ts.nanos else None


def digest_text(fn: digests.DigestFunction, digest: Any) -> str:
    """A digest as the run report and receipts record it: ``sha256:<hex>/<size>``."""
    return f"{fn.name}:{digest.hash}/{digest.size_bytes}"


class RemoteStepRunner:
    """Runs steps on a REAPI server; hands a step to ``local`` when it must stay here."""

    def __init__(self, remote: Remote, caps: Capabilities, pipeline: Pipeline,
                 local: StepRunner, *, required: bool, waits: Waits,
                 limits: results.Limits, terminated: threading.Event | None = None) -> None:
        self.remote = remote
        self.caps = caps
        self.fn = caps.digest_function
        self.pipeline = pipeline
        self.local = local
        self.required = required
        self.waits = waits
        self.limits = limits
        self.cas = Cas(remote, caps)
        self.execution = Execution(remote, self.fn)
        # set by terminate_all; the channel's calls watch it too (``Remote(interrupted=)``)
        self.terminated = terminated or threading.Event()
        self._signals = deadline.signals_seen()  # a signal after this interrupts the run
        self._cancelled = threading.Event()  # terminate_all has sent its cancellations
        self.broken: str | None = None  # the server failed: later steps run here
        self._lock = threading.Lock()

    # -- StepRunner ----------------------------------------------------------------------
    def run(self, request: StepRequest) -> ProcessOutcome:
        step = self.pipeline.steps[request.step]
        stay = self.stays_local(step)
        if stay is not None:
            log.debug("step %s runs locally: %s", step.name, stay)
            return self.local.run(request)
        started = time.monotonic()
        try:
            return self._run_remote(step, request, started)
        except ReapiUnavailable as exc:
            if self.interrupted():
                return self._failed(started, "killed by interrupt")
            if self.required:
                return self._failed(started, f"execution.required: {exc}")
            self._break(str(exc))
            return self.local.run(request)
        except (UnsafeResult, merkle.InputError) as exc:
            return self._failed(started, f"remote execution: {exc}")

    def terminate_all(self) -> None:
        """Stop waiting (the channel cuts the calls in flight) and cancel the operations."""
        self.terminated.set()
        try:
            self.local.terminate_all()
            self.execution.cancel_all()
        finally:
            self._cancelled.set()

    def close(self) -> None:
        """At the end of the run: after an interrupt, give the cancellations (sent from a
        helper thread) the time to reach the server before the process exits."""
        if self.terminated.is_set():
            self._cancelled.wait(CANCEL_WAIT_SECONDS)
        self.remote.close()

    def interrupted(self) -> bool:
        """The run is being stopped: terminate_all ran, or a signal arrived (noted before
        the scheduler starts terminate_all on a helper thread)."""
        return self.terminated.is_set() or deadline.signals_seen() != self._signals

    # -- decisions -----------------------------------------------------------------------
    def stays_local(self, step: Step) -> str | None:
        """Why ``step`` runs on this machine, or None when it runs remotely."""
        if not step.remote:
            return "remote: false"
        if step.secrets:
            return "it declares secrets, whose values would be written into the server's CAS"
        if self.broken is not None:
            return f"the execution server failed earlier in this run ({self.broken})"
        return None

    def _break(self, why: str) -> None:
        with self._lock:
            first = self.broken is None
            self.broken = self.broken or why
        if first:
            log.warning("remote execution failed, running this and the remaining steps "
                        "locally: %s", why)

    # -- one remote step -----------------------------------------------------------------
    def input_paths(self, step: Step) -> list[str]:
        """What the worker sees: the declared inputs and the direct needs' declared
        outputs, as in the workspace now. Nothing else (hermeticity; docs/remote.md)."""
        root = self.pipeline.root
        patterns = list(step.inputs)
        for need in step.needs:
            patterns += self.pipeline.steps[need].outputs
        return expand(root, patterns, follow_links=True)

    def _run_remote(self, step: Step, request: StepRequest, started: float) -> ProcessOutcome:
        spec = action.spec_for_step(self.pipeline, step, request.env,
                                    salt=request.cache_key or "")
        spec = dataclasses.replace(spec, timeout=request.timeout)
        tree = merkle.build(self.pipeline.root, self.input_paths(step), self.fn)
        built = action.build(spec, tree.digest, self.fn)
        self.cas.upload([*built.blobs, *tree.blobs()])
        wait = (request.timeout + self.waits.queue_timeout if request.timeout
                else self.waits.max_wait)
        try:
            done = self.execution.run(built.action_digest, wait_seconds=wait,
                                      skip_cache_lookup=step.do_not_cache,
                                      interrupted=self.interrupted)
        except ExecutionTimeout as exc:
            return self._failed(started, f"remote execution: {exc} (the step's timeout plus "
                                "execution.queue_timeout, or execution.max_wait)",
                                remote=self._record(built, None, None))
        return self._finish(step, request, started, built, done)

    def _finish(self, step: Step, request: StepRequest, started: float,
                built: action.BuiltAction, done: Finished) -> ProcessOutcome:
        response = done.response
        result = response.result
        record = self._record(built, done, result)
        logged = self._write_log(request, result, response)
        timed_out = done.status_code == code_pb2.DEADLINE_EXCEEDED
        if timed_out:
            return ProcessOutcome(exit_code=TIMEOUT_EXIT_CODE,
                                  wall_seconds=time.monotonic() - started,
                                  cpu_user_seconds=0.0, cpu_system_seconds=0.0,
                                  max_rss_bytes=0, timed_out=True, logged=logged,
                                  remote=record)
        if done.status_code != code_pb2.OK:
            code = code_pb2.Code.Name(done.status_code) if done.status_code in \
                code_pb2.Code.values() else str(done.status_code)
            return self._failed(started, f"remote execution failed: {code}: "
                                f"{done.status_message[:300]}", remote=record, logged=logged)
        if result.exit_code == 0:
            # a glob's output path is its whole directory: keep what the globs cover
            outputs = results.plan(result, self.cas, self.limits,
                                   allowed=lambda p: covers(step.outputs, p),
                                   drop_uncovered=True)
            results.restore(self.pipeline.root, outputs, self.cas, self.limits)
        return ProcessOutcome(exit_code=result.exit_code,
                              wall_seconds=time.monotonic() - started, cpu_user_seconds=0.0,
                              cpu_system_seconds=0.0, max_rss_bytes=0, logged=logged,
                              remote=record,
                              cached_by=BACKEND if response.cached_result else None)

    def _write_log(self, request: StepRequest, result: Any, response: Any) -> bool:
        """stdout, then stderr, masked, into the step log and the live view; whether the
        step printed anything (a silent step leaves no log file, as locally)."""
        text = b"".join(results.read_log(self.cas, raw, digest) for raw, digest in (
            (result.stdout_raw, result.stdout_digest if result.HasField("stdout_digest")
             else None),
            (result.stderr_raw, result.stderr_digest if result.HasField("stderr_digest")
             else None))).decode("utf-8", "replace")
        if not text:
            return False
        lines = [request.mask(line) for line in text.splitlines()]
        path: Path = request.log_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        for line in lines:
            request.on_line(line)
        return True

    def _record(self, built: action.BuiltAction, done: Finished | None, result: Any
                ) -> dict[str, Any]:
        """The step's ``remote`` record (docs/remote.md, "What a run records")."""
        record: dict[str, Any] = {
            "backend": BACKEND, "endpoint": self.remote.endpoint.shown,
            "instance": self.remote.instance,
            "action_digest": digest_text(self.fn, built.action_digest),
        }
        if done is None:
            return record
        record["operation"] = done.operation
        record["cached_result"] = bool(done.response.cached_result)
        if result is not None and result.ByteSize():
            rdigest, _ = self.fn.message_digest(result)
            record["result_digest"] = digest_text(self.fn, rdigest)
            meta = result.execution_metadata
            record["worker"] = meta.worker
            for name in ("queued_timestamp", "worker_start_timestamp",
                         "worker_completed_timestamp", "execution_start_timestamp",
                         "execution_completed_timestamp"):
                when = _stamp(getattr(meta, name))
                if when is not None:
                    record[name.removesuffix("_timestamp")] = round(when, 6)
        return record

    def _failed(self, started: float, reason: str, *, remote: dict[str, Any] | None = None,
                logged: bool = False) -> ProcessOutcome:
        return ProcessOutcome(exit_code=NO_EXIT_CODE, wall_seconds=time.monotonic() - started,
                              cpu_user_seconds=0.0, cpu_system_seconds=0.0, max_rss_bytes=0,
                              logged=logged, remote=remote, reason=reason)
