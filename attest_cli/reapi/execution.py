"""``Execute`` one Action and wait for its ExecuteResponse, bounded and interruptible.

The server answers ``Execute`` with a stream of long-running Operations (queued, executing,
completed). A stream can end before the operation does (a proxy's idle timeout, a server
restart); the wait then resumes with ``WaitExecution`` on the operation's name, at most
:data:`MAX_RESUMES` times. The whole wait has one deadline (the step's timeout plus
``execution.queue_timeout``, or ``execution.max_wait``): past it the step fails and the
operation is cancelled on the server. An interrupt cuts the stream within the channel's
poll interval (:data:`attest_cli.reapi.channel.POLL_SECONDS`) and cancels the operation
with a call of at most :data:`CANCEL_SECONDS`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attest_cli.reapi import digests
from attest_cli.reapi.channel import Remote
from attest_cli.reapi.errors import ReapiUnavailable, UnsafeResult
from attest_cli.reapi.protos import code_pb2, ops_grpc, ops_pb2, re_grpc, re_pb2

MAX_RESUMES = 20  # WaitExecution calls after a stream ended early, per step
RESUME_PAUSE_SECONDS = 0.2  # before each of them
CANCEL_SECONDS = 0.5  # deadline of the best-effort CancelOperation


class Interrupted(Exception):
    """The run was interrupted while waiting: the operation is cancelled on the server."""


class ExecutionTimeout(Exception):
    """No result arrived within the wait's deadline (the operation was cancelled)."""


@dataclass(frozen=True)
class Finished:
    """A completed operation: its name and ExecuteResponse (``status`` and ``result``)."""

    operation: str
    response: Any  # re_pb2.ExecuteResponse
    status_code: int  # google.rpc code of the execution (0: it ran; see result.exit_code)
    status_message: str


def _finished(op: Any) -> Finished:
    if op.HasField("error") and op.error.code != code_pb2.OK:
        return Finished(op.name, re_pb2.ExecuteResponse(), op.error.code, op.error.message)
    response = re_pb2.ExecuteResponse()
    if not op.response.Is(re_pb2.ExecuteResponse.DESCRIPTOR) or not op.response.Unpack(response):
        raise UnsafeResult(f"operation {op.name[:80]!r} completed without an ExecuteResponse")
    return Finished(op.name, response, response.status.code, response.status.message)


class Execution:
    """The Execution service of one instance (one per run, shared by the step threads)."""

    def __init__(self, remote: Remote, fn: digests.DigestFunction) -> None:
        self.remote = remote
        self.fn = fn
        self._stub = re_grpc.ExecutionStub(remote.channel)
        self._live: set[str] = set()  # operations waited on now (cancelled on interrupt)
        self._lock = threading.Lock()

    def run(self, action_digest: Any, *, wait_seconds: float,
            skip_cache_lookup: bool = False,
            interrupted: Callable[[], bool] = lambda: False) -> Finished:
        """Execute the Action (its blobs already in the CAS) and wait for the result."""
        ends = time.monotonic() + wait_seconds
        request = re_pb2.ExecuteRequest(instance_name=self.remote.instance,
                                        action_digest=action_digest,
                                        skip_cache_lookup=skip_cache_lookup,
                                        digest_function=self.fn.value)
        name: str | None = None
        resumes = 0
        try:
            while True:
                if interrupted():
                    raise Interrupted()
                left = ends - time.monotonic()
                if left <= 0:
                    raise ExecutionTimeout(f"no result within {wait_seconds:g}s")
                if name is None:
                    answers = self.remote.stream(self._stub.Execute, request, "Execute",
                                                 seconds=left)
                else:
                    answers = self.remote.stream(
                        self._stub.WaitExecution, re_pb2.WaitExecutionRequest(name=name),
                        "WaitExecution", seconds=left)
                try:
                    for op in answers:
                        if op.name and op.name != name:
                            self._forget(name)
                            name = op.name
                            with self._lock:
                                self._live.add(name)
                        if op.done:
                            return _finished(op)
                except ReapiUnavailable:
                    if interrupted():
                        raise Interrupted() from None
                    if ends - time.monotonic() <= 0.05:
                        raise ExecutionTimeout(f"no result within {wait_seconds:g}s") from None
                    if name is None:
                        raise
                else:
                    if name is None:
                        raise ReapiUnavailable(f"REAPI Execute at {self.remote.endpoint.shown}"
                                               ": the stream ended before naming an operation")
                # the stream ended or broke before the result: wait on the operation again
                if resumes >= MAX_RESUMES:
                    raise ReapiUnavailable(f"REAPI WaitExecution at "
                                           f"{self.remote.endpoint.shown}: the operation "
                                           f"stream broke {MAX_RESUMES} times")
                resumes += 1
                time.sleep(RESUME_PAUSE_SECONDS)
        except ExecutionTimeout:
            self.cancel(name)
            raise
        except Interrupted:
            self.cancel(name)  # on this thread: the run waits for it (CANCEL_SECONDS at most)
            raise ReapiUnavailable(f"REAPI Execute at {self.remote.endpoint.shown}: given up, "
                                   "the run was interrupted") from None
        finally:
            self._forget(name)

    def _forget(self, name: str | None) -> None:
        if name is not None:
            with self._lock:
                self._live.discard(name)

    def cancel(self, name: str | None) -> None:
        """Ask the server to cancel ``name`` (best effort, at most CANCEL_SECONDS)."""
        if not name:
            return
        stub = ops_grpc.OperationsStub(self.remote.channel)
        with contextlib.suppress(Exception):  # gone already, or the server is: nothing to do
            stub.CancelOperation(ops_pb2.CancelOperationRequest(name=name),
                                 timeout=CANCEL_SECONDS, metadata=self.remote.metadata)

    def cancel_all(self) -> None:
        """Cancel every operation waited on now (on interrupt; from a helper thread)."""
        with self._lock:
            names = list(self._live)
        for name in names:
            self.cancel(name)
