"""Remote cache entries are untrusted data: bounded reads, a total deadline, read-only is read-only.

Real servers throughout: ``redis-server`` (watched with ``MONITOR``), moto's S3 over HTTP
(behind a request recorder), and small loopback servers that trickle one byte at a time.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cache.helpers import AWS_ENV, forget_locally, make_project, run, statuses, with_section
from tests.e2e.helpers import signal_when, start_run
from tests.support import attest, free_port, wait_for

pytestmark = pytest.mark.integration

# Redis commands that change data or TTLs: read-only mode may send none of them.
MUTATING = {"SET", "SETEX", "PSETEX", "SETNX", "SETRANGE", "APPEND", "MSET", "MSETNX", "DEL",
            "UNLINK", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "GETEX",
            "GETDEL", "GETSET", "RENAME", "RENAMENX", "COPY", "FLUSHDB", "FLUSHALL", "INCR",
            "DECR", "INCRBY", "RESTORE", "MOVE", "TOUCH", "EVAL", "EVALSHA", "FCALL"}


def _limited(memory: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    return apply


def attest_limited(*args: str, cwd: Path, env: dict[str, str] | None = None,
                   timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``attest ARGS`` with its address space capped at 1.5 GB: a read driven by a hostile
    count fails there (MemoryError) instead of taking the machine down."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ATTEST_", "CI"))}
    full["XDG_CONFIG_HOME"] = str(cwd / ".xdg")
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "attest_cli", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_limited(1536 * 1024 * 1024))


def warnings_of(stderr: str) -> list[str]:
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("level") == "WARN":
                out.append(rec["message"])
    return out


def redis_client(port: int) -> Any:
    import redis

    return redis.Redis(port=port)


def redis_entries(port: int) -> list[bytes]:
    import redis

    return sorted(redis.Redis(port=port).scan_iter(match="attest/entries/*"))


HUGE_HEADER = b"\x01" + json.dumps({"id": "deadbeef", "n": 10**12, "size": 10**15}).encode()


def filled_redis(project: Path, port: int) -> int:
    """A project whose three entries were stored in the redis-server on ``port``."""
    make_project(project, with_section(
        f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}'}}\n"))
    run(project)
    return port


# -- item 1: bounded reads -----------------------------------------------------------------

def test_redis_header_claiming_a_huge_chunk_count_is_a_miss_with_one_warning(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port = filled_redis(project, redis_server[0])
    forget_locally(project)
    client = redis_client(port)
    keys = redis_entries(port)
    assert len(keys) == 3
    for k in keys:
        client.set(k, HUGE_HEADER)
    started = time.monotonic()
    proc = attest_limited("run", "--log-format", "json", cwd=project)
    assert time.monotonic() - started < 60
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    bad = [w for w in warnings_of(proc.stderr) if "corrupt" in w or "malformed" in w]
    assert len(bad) == 3, bad  # exactly one per entry
    assert all("chunk" in w for w in bad), bad


def test_cache_verify_reports_malformed_remote_entries_one_line_each(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port = filled_redis(project, redis_server[0])
    client = redis_client(port)
    first, second, _third = redis_entries(port)
    client.set(first, HUGE_HEADER)
    client.set(second, b"\x01{not json")
    client.set(b"attest/entries/e\n[OK] forged", b"\x00{}")  # a key that forges a line
    proc = attest_limited("cache", "verify", cwd=project)
    assert proc.returncode == 1, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("corrupt: redis entry")]
    assert len(lines) == 3, proc.stdout
    assert not any(ln.startswith("[OK]") for ln in proc.stdout.splitlines())
    assert "corrupt: redis entry e\\n[OK] forged: " in proc.stdout  # shown escaped
    assert "7 entries checked, 3 with problems" in proc.stdout
    repaired = attest_limited("cache", "verify", "--repair", cwd=project)
    assert repaired.returncode == 0, repaired.stderr
    assert len([ln for ln in repaired.stdout.splitlines() if ln.startswith("removed: redis")]) == 3
    assert first not in redis_entries(port) and second not in redis_entries(port)
    again = attest("cache", "verify", cwd=project)
    assert again.returncode == 0 and "4 entries checked, 0 with problems" in again.stdout


def test_redis_chunks_longer_than_the_header_says_are_malformed(
        redis_server: tuple[int, subprocess.Popen[bytes]]
) -> None:
    import redis

    from attest_cli.cache.backends.base import MalformedObject
    from attest_cli.cache.backends.redis import RedisBackend

    port, _ = redis_server
    backend = RedisBackend(f"127.0.0.1:{port}", chunk_size=1024, max_entry_size=10_000)
    data = os.urandom(5000)
    assert backend.put("blobs/ok", data)
    assert backend.get("blobs/ok") == data
    client = redis.Redis(port=port)
    header = json.loads(client.get("attest/blobs/ok")[1:])  # type: ignore[index]
    client.set(f"attest/chunks/{header['id']}/0", b"x" * 50_000)  # longer than claimed
    with pytest.raises(MalformedObject, match="longer"):
        backend.get("blobs/ok")
    for bad in ({"id": "ab", "n": 3, "size": 20_000}, {"id": "ab", "n": 10**9, "size": 9000},
                {"id": "../x", "n": 1, "size": 1}, {"id": "ab", "n": "3", "size": 1}, []):
        client.set("attest/blobs/bad", b"\x01" + json.dumps(bad).encode())
        with pytest.raises(MalformedObject):
            backend.get("blobs/bad")
    client.rpush("attest/blobs/list", b"a", b"b")  # not a string at all
    with pytest.raises(MalformedObject, match="not a string"):
        backend.get("blobs/list")
    client.set("attest/blobs/big", b"\x00" + b"y" * 20_000)  # inline, above the limit
    with pytest.raises(MalformedObject, match="10000"):
        backend.get("blobs/big")
    backend.close()


def test_s3_object_above_the_entry_limit_is_malformed(s3_recorder: tuple[str, list[str]]
                                                      ) -> None:
    import boto3

    from attest_cli.cache.backends.base import MalformedObject
    from attest_cli.cache.backends.s3 import S3Backend

    url, _log = s3_recorder
    os.environ.update(AWS_ENV)
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    client.create_bucket(Bucket="big-objects")
    client.put_object(Bucket="big-objects", Key="attest/blobs/big", Body=b"z" * 300_000)
    client.put_object(Bucket="big-objects", Key="attest/blobs/ok", Body=b"z" * 1000)
    backend = S3Backend("big-objects", endpoint_url=url, region="us-east-1", max_entry_size=100_000)
    assert backend.get("blobs/ok") == b"z" * 1000
    with pytest.raises(MalformedObject, match="100000"):
        backend.get("blobs/big")


def test_local_objects_and_manifests_are_bounded(tmp_path: Path) -> None:
    from attest_cli.cache.backends.base import MalformedObject
    from attest_cli.cache.backends.local import LocalBackend
    from attest_cli.cache.manifest import MANIFEST_VERSION, CorruptEntry, ManifestLimits, parse

    local = LocalBackend(tmp_path, max_entry_size=1000)
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "big").write_bytes(b"a" * 5000)
    with pytest.raises(MalformedObject, match="1000"):
        local.get("blobs/big")
    # a zstd frame that claims (and would inflate to) far more than the limit
    import zstandard

    (tmp_path / "blobs" / "bomb.zst").write_bytes(
        zstandard.ZstdCompressor().compress(b"\0" * 10_000_000))
    with pytest.raises(MalformedObject, match="1000"):
        local.get("blobs/bomb")

    digest = "blake3:" + "0" * 64
    limits = ManifestLimits(max_bytes=100_000, max_files=10, max_path_length=100, max_depth=5)

    def manifest(files: list[dict[str, object]]) -> bytes:
        return json.dumps({"version": MANIFEST_VERSION, "key": "k", "step": "s", "files": files,
                           "log_digest": digest, "log_size": 0, "exit_code": 0,
                           "wall_seconds": 0, "created_at": 0, "components": {}}).encode()

    def f(path: str) -> dict[str, object]:
        return {"path": path, "kind": "file", "mode": 420, "digest": digest, "size": 1}

    assert parse(manifest([f("a/b")]), key="k", limits=limits).files[0].path == "a/b"
    cases = {"files": manifest([f(f"f{i}") for i in range(11)]),
             "path length": manifest([f("x" * 101)]),
             "deep": manifest([f("/".join(["d"] * 6))]),
             "bytes": manifest([f("a")]) + b" " * 100_000,
             "nested": b"[" * 200_000 + b"]" * 200_000}
    for what, raw in cases.items():
        with pytest.raises(CorruptEntry):
            parse(raw, key="k", limits=limits)
        del what


def test_an_output_above_the_entry_limit_is_not_stored(project: Path) -> None:
    from tests.support import write_pipeline

    write_pipeline(project, """
        name: big
        cache: {max_entry_size: 1000}
        steps:
          big:
            run: head -c 5000 /dev/zero > big.bin && echo ran >> count
            outputs: [big.bin]
        """)
    proc, report = run(project)
    assert statuses(report) == {"big": "success"}
    assert any("larger than cache.max_entry_size (1000 bytes)" in w
               for w in warnings_of(proc.stderr))
    _, again = run(project)
    assert statuses(again) == {"big": "success"}  # nothing was stored: it runs again
    assert (project / "count").read_text() == "ran\nran\n"


# -- item 1: cache.timeout bounds the whole fetch ------------------------------------------

class Trickler:
    """A TCP server that answers every connection with ``head`` and then one byte of
    ``body`` every ``interval`` seconds (for at most ``limit`` seconds)."""

    def __init__(self, head: bytes, interval: float = 0.3, limit: float = 40.0) -> None:
        self.head, self.interval, self.limit = head, interval, limit
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        self.requests = 0  # requests received so far (tests wait on it instead of sleeping)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        end = time.monotonic() + self.limit
        try:
            conn.recv(65536)
            self.requests += 1
            conn.sendall(self.head)
            while time.monotonic() < end and not self.closed.is_set():
                conn.sendall(b"a")
                time.sleep(self.interval)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def trickle_redis() -> Iterator[Trickler]:
    server = Trickler(b"$1000000\r\n")  # a bulk reply of 1 MB that never finishes
    yield server
    server.close()


@pytest.fixture
def trickle_http() -> Iterator[Trickler]:
    server = Trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n"
                      b"Content-Type: application/octet-stream\r\n\r\n")
    yield server
    server.close()


def test_redis_timeout_is_a_total_deadline_not_per_read(trickle_redis: Trickler) -> None:
    from attest_cli.cache.backends.base import BackendUnavailable
    from attest_cli.cache.backends.redis import RedisBackend

    backend = RedisBackend(f"127.0.0.1:{trickle_redis.port}", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="deadline"):
        backend.get("entries/x")
    assert time.monotonic() - started < 5


def test_s3_timeout_is_a_total_deadline_not_per_read(trickle_http: Trickler) -> None:
    from attest_cli.cache.backends.base import BackendUnavailable
    from attest_cli.cache.backends.s3 import S3Backend

    os.environ.update(AWS_ENV)
    backend = S3Backend("b", endpoint_url=f"http://127.0.0.1:{trickle_http.port}",
                        region="us-east-1", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="deadline"):
        backend.get("entries/x")
    assert time.monotonic() - started < 5


def test_run_against_a_trickling_redis_finishes_and_ctrl_c_is_not_blocked(
        project: Path, trickle_redis: Trickler) -> None:
    make_project(project, with_section(
        f"cache: {{backend: redis, endpoint: '127.0.0.1:{trickle_redis.port}', timeout: 1}}\n"))
    started = time.monotonic()
    _, report = run(project, "-j", "1")
    assert time.monotonic() - started < 20
    assert statuses(report) == {"gen": "success", "other": "success", "final": "success"}
    # with a long deadline, SIGINT still ends the run promptly
    make_project(project, with_section(
        f"cache: {{backend: redis, endpoint: '127.0.0.1:{trickle_redis.port}', timeout: 60}}\n"))
    forget_locally(project)
    before = trickle_redis.requests
    child = start_run(project)
    # interrupt once the first lookup is stuck on the trickle (not after a guessed sleep)
    _err, elapsed = signal_when(child, lambda: trickle_redis.requests > before, signal.SIGINT)
    assert elapsed < 10
    assert child.returncode == 130


# -- item 2: read-only means zero mutating calls -------------------------------------------

class Monitor:
    """Every command redis-server executes, via ``MONITOR`` on a raw connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"MONITOR\r\n")
        self.lines: list[str] = []
        self._buf = b""
        threading.Thread(target=self._read, daemon=True).start()
        assert wait_for(lambda: any(ln == "+OK" for ln in self.lines))

    def _read(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            self._buf += chunk
            *done, self._buf = self._buf.split(b"\r\n")
            self.lines.extend(d.decode("utf-8", "replace") for d in done)

    def commands(self) -> list[str]:
        """Command names seen so far (after a marker round trip, so none is missed)."""
        import redis

        marker = f"marker-{time.monotonic_ns()}"
        redis.Redis(port=self.port).echo(marker)
        assert wait_for(lambda: any(marker in ln for ln in self.lines))
        out = []
        for ln in self.lines:
            if '] "' in ln and marker not in ln:
                out.append(ln.split('] "', 1)[1].split('"', 1)[0].upper())
        return out

    def close(self) -> None:
        self.sock.close()


def test_read_only_redis_sends_no_mutating_command_even_for_corrupt_entries(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]
) -> None:
    import redis

    port, _ = redis_server
    endpoint = f"endpoint: '127.0.0.1:{port}'"
    make_project(project, with_section(f"cache: {{backend: redis, {endpoint}}}\n"))
    run(project)
    client = redis.Redis(port=port)
    gen, other, _final = redis_entries(port)
    client.set(gen, HUGE_HEADER)  # malformed header
    client.set(other, b"\x00{not json")  # corrupt manifest
    blobs = sorted(client.scan_iter(match="attest/blobs/*"))
    client.set(blobs[0], b"\x00tampered")  # a blob that fails its digest
    before = {k: client.get(k) for k in client.scan_iter()}
    ttls = {k: client.ttl(k) for k in before}
    make_project(project, with_section(
        f"cache: {{backend: redis, {endpoint}, mode: read-only}}\n"))
    forget_locally(project)
    monitor = Monitor(port)
    try:
        proc, report = run(project)
        verify = attest("cache", "verify", cwd=project)
        repair = attest("cache", "verify", "--repair", cwd=project)
        prune = attest("cache", "prune", cwd=project)
        stats = attest("cache", "stats", cwd=project)
        commands = monitor.commands()
    finally:
        monitor.close()
    assert set(statuses(report).values()) <= {"success", "cached"}
    assert verify.returncode == 1 and prune.returncode == 0 and stats.returncode == 0
    assert repair.returncode == 1 and "remote cache was not modified" in repair.stderr
    assert "removed: redis" not in repair.stdout and "corrupt: redis" in repair.stdout
    assert "GETRANGE" in commands or "GET" in commands  # it did read the remote
    assert sorted(set(commands) & MUTATING) == []
    assert {k: client.get(k) for k in client.scan_iter()} == before
    assert all(client.ttl(k) <= ttls[k] for k in before)
    bad = [w for w in warnings_of(proc.stderr) if "corrupt" in w]
    assert len(bad) >= 2 and all("read-only redis cache" in w for w in bad), bad
    assert len({w.split()[2] for w in bad}) == len(bad)  # one warning per entry


class Recorder:
    """WSGI middleware in front of moto: the method and path of every request."""

    def __init__(self, app: Callable[..., object]) -> None:
        self.app = app
        self.log: list[str] = []

    def __call__(self, environ: dict[str, object], start_response: Callable[..., object]
                 ) -> object:
        self.log.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}")
        return self.app(environ, start_response)


@pytest.fixture
def s3_recorder() -> Iterator[tuple[str, list[str]]]:
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    recorder = Recorder(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", free_port(), recorder, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield url, recorder.log
    finally:  # moto's state is per process: leave no bucket behind for the next test
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"),
                               timeout=10).close()
        server.shutdown()
        thread.join()


def test_read_only_s3_sends_no_put_delete_or_post_even_for_corrupt_entries(
        project: Path, s3_recorder: tuple[str, list[str]]) -> None:
    import boto3

    url, log = s3_recorder
    os.environ.update(AWS_ENV)
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    client.create_bucket(Bucket="hostile-ro")
    section = f"backend: s3, bucket: hostile-ro, endpoint_url: '{url}', region: us-east-1"
    make_project(project, with_section(f"cache: {{{section}}}\n"))
    run(project, env=AWS_ENV)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="hostile-ro")["Contents"])
    entries = [k for k in keys if k.startswith("attest/entries/")]
    blobs = [k for k in keys if k.startswith("attest/blobs/")]
    client.put_object(Bucket="hostile-ro", Key=entries[0], Body=b"{not json")
    client.put_object(Bucket="hostile-ro", Key=blobs[0], Body=b"tampered")
    before = {k: client.get_object(Bucket="hostile-ro", Key=k)["Body"].read() for k in keys}
    make_project(project, with_section(f"cache: {{{section}, mode: read-only}}\n"))
    forget_locally(project)
    log.clear()
    proc, report = run(project, env=AWS_ENV)
    verify = attest("cache", "verify", cwd=project, env=AWS_ENV)
    repair = attest("cache", "verify", "--repair", cwd=project, env=AWS_ENV)
    prune = attest("cache", "prune", cwd=project, env=AWS_ENV)
    seen = list(log)
    assert any(r.startswith("GET ") for r in seen)  # it did read the remote
    assert [r for r in seen if r.split()[0] in ("PUT", "DELETE", "POST", "PATCH")] == []
    assert verify.returncode == 1 and prune.returncode == 0
    assert repair.returncode == 1 and "corrupt: s3" in repair.stdout
    after = {k: client.get_object(Bucket="hostile-ro", Key=k)["Body"].read() for k in keys}
    assert after == before
    assert set(statuses(report).values()) <= {"success", "cached"}
    assert len([w for w in warnings_of(proc.stderr) if "corrupt" in w]) >= 1
