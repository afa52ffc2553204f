"""Real REAPI servers for the tests: BuildGrid (``bgd``) with an in-memory CAS and Action
Cache, a recording gRPC proxy in front of it, and a black hole that never answers.

A server that cannot start is a skip with the reason locally and a failure under
``CI=true`` (``.ci/run`` installs the ``reapi`` extra, which brings ``bgd``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import serve_on_free_port

INSTANCE = "main"

BGD_CONFIG = """
server:
  - !channel
    address: "127.0.0.1:{port}"
{channel_security}
authorization:
  method: none
storages:
  - !lru-storage &cas
    size: 256MB
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: true
instances:
  - name: {instance}
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"""


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (under CI=true) a test whose server cannot run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required under CI=true; .ci/run installs it)")
    pytest.skip(reason)


def bgd_binary() -> str:
    path = Path(sys.executable).parent / "bgd"
    if not path.exists():
        unavailable("bgd (BuildGrid, the 'reapi' extra) is not installed in this venv")
    return str(path)


@dataclass
class ReapiServer:
    port: int
    instance: str
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_buildgrid(directory: Path, tls: tuple[Path, Path] | None = None) -> ReapiServer:
    """``bgd server start`` on a free loopback port (cache-only: no scheduler, no DB);
    ``tls``: its (key, certificate) files, serving TLS only."""
    binary = bgd_binary()
    security = "    insecure-mode: true" if tls is None else (
        "    insecure-mode: false\n    credentials:\n"
        f"      tls-server-key: {tls[0]}\n      tls-server-cert: {tls[1]}")

    def argv(port: int) -> list[str]:
        config = directory / f"bgd-{port}.yml"
        config.write_text(BGD_CONFIG.format(port=port, instance=INSTANCE,
                                            channel_security=security))
        return [binary, "server", "start", str(config)]

    try:
        proc, port = serve_on_free_port(argv, cwd=directory, timeout=60)
    except AssertionError as exc:
        unavailable(f"BuildGrid did not start: {exc}")
        raise
    return ReapiServer(port=port, instance=INSTANCE, proc=proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def buildgrid(tmp_path: Path) -> Iterator[ReapiServer]:
    server = start_buildgrid(tmp_path)
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="module")
def shared_buildgrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReapiServer]:
    """One server for a module's tests that only read what they wrote themselves
    (content-addressed blobs): fewer ``bgd`` start-ups."""
    server = start_buildgrid(tmp_path_factory.mktemp("bgd"))
    try:
        yield server
    finally:
        stop(server.proc)


# -- a recording proxy -------------------------------------------------------------------
_STREAM_OUT = {"/google.bytestream.ByteStream/Read",
               "/build.bazel.remote.execution.v2.Execution/Execute",
               "/build.bazel.remote.execution.v2.Execution/WaitExecution",
               "/build.bazel.remote.execution.v2.ContentAddressableStorage/GetTree"}
_STREAM_IN = {"/google.bytestream.ByteStream/Write"}
MUTATING = {"/build.bazel.remote.execution.v2.ActionCache/UpdateActionResult",
            "/build.bazel.remote.execution.v2.ContentAddressableStorage/BatchUpdateBlobs",
            "/google.bytestream.ByteStream/Write"}


@dataclass
class RecordingProxy:
    """Forwards every gRPC call to ``upstream`` as raw bytes; records each method's name and
    its metadata. What attest sends is what the server gets: nothing is mocked. A lying
    server: ``answers[method name]`` (serialised bytes) replaces the server's answer."""

    upstream: str
    calls: list[str] = field(default_factory=list)
    answers: dict[str, bytes] = field(default_factory=dict)
    metadata: list[dict[str, str]] = field(default_factory=list)
    # a flaky network: ``stream_limit[method name]`` ends that stream after so many messages
    stream_limit: dict[str, int] = field(default_factory=dict)
    port: int = 0
    server: Any = None

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def methods(self) -> set[str]:
        return {c.rsplit("/", 1)[-1] for c in self.calls}


def start_proxy(upstream: str) -> RecordingProxy:
    import grpc

    proxy = RecordingProxy(upstream)
    channel = grpc.insecure_channel(upstream)
    lock = threading.Lock()

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: Any) -> Any:
            method = details.method
            meta = dict(details.invocation_metadata)
            with lock:
                proxy.calls.append(method)
                proxy.metadata.append(meta)
            forward = [(k, v) for k, v in meta.items() if not k.startswith(("grpc-", ":"))
                       and k not in ("user-agent", "content-type", "te")]
            if method in _STREAM_OUT:
                call = channel.unary_stream(method)

                def unary_stream(request: bytes, context: Any) -> Iterator[bytes]:
                    limit = proxy.stream_limit.get(method.rsplit("/", 1)[-1])
                    try:
                        answers = call(request, metadata=forward)
                        for count, answer in enumerate(answers, 1):
                            yield answer
                            if limit is not None and count >= limit:
                                answers.cancel()
                                return
                    except grpc.RpcError as exc:
                        context.abort(exc.code(), exc.details())
                return grpc.unary_stream_rpc_method_handler(unary_stream)
            if method in _STREAM_IN:
                up = channel.stream_unary(method)

                def stream_unary(requests: Iterator[bytes], context: Any) -> bytes:
                    try:
                        return up(requests, metadata=forward)
                    except grpc.RpcError as exc:
                        context.abort(exc.code(), exc.details())
                        raise
                return grpc.stream_unary_rpc_method_handler(stream_unary)
            single = channel.unary_unary(method)

            def unary_unary(request: bytes, context: Any) -> bytes:
                lie = proxy.answers.get(method.rsplit("/", 1)[-1])
                if lie is not None:
                    return lie
                try:
                    return single(request, metadata=forward)
                except grpc.RpcError as exc:
                    context.abort(exc.code(), exc.details())
                    raise
            return grpc.unary_unary_rpc_method_handler(unary_unary)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers([Handler()])
    proxy.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    proxy.server = server
    return proxy


@pytest.fixture
def recording_proxy(buildgrid: ReapiServer) -> Iterator[RecordingProxy]:
    proxy = start_proxy(buildgrid.target)
    try:
        yield proxy
    finally:
        proxy.server.stop(grace=None)


# -- a server that accepts and never answers --------------------------------------------
@dataclass
class BlackHole:
    port: int
    held: list[socket.socket] = field(default_factory=list)

    @property
    def connections(self) -> int:
        return len(self.held)


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A TCP port that accepts connections and never sends a byte (a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    hole = BlackHole(port=listener.getsockname()[1])
    stopping = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            hole.held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield hole
    finally:
        stopping.set()
        thread.join(5)
        for conn in hole.held:
            conn.close()
        listener.close()
