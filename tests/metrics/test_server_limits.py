"""The metrics/health server under hostile clients: loopback by default, bounded threads,
idle and slow connections timed out, a connection cap, ``/health/live`` always answering."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attest_cli.metrics.http_server import EndpointServer, Limits, parse_endpoint
from tests.metrics.helpers import get, start_attest, stop
from tests.support import REPO, free_port, wait_for, wait_for_port, write_pipeline


def _outward_ip() -> str | None:
    """A non-loopback address of this machine (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 1))
            ip = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


@contextlib.contextmanager
def idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections: half silent, half stuck in the middle of a request head."""
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def _timed_get(url: str) -> tuple[int, float]:
    t0 = time.monotonic()
    code, _ = get(url)
    return code, time.monotonic() - t0


def _assert_answers_quickly(port: int) -> None:
    """``/health/live`` and ``/metrics`` answer 200 within 5 s (connections just opened)."""
    time.sleep(0.3)
    for path in ("/health/live", "/metrics"):
        code, took = _timed_get(f"http://127.0.0.1:{port}{path}")
        assert code == 200 and took < 5, (path, code, took)


def test_an_endpoint_without_host_binds_loopback() -> None:
    assert parse_endpoint(":9090", "k") == ("127.0.0.1", 9090)
    assert parse_endpoint("0.0.0.0:9100", "k") == ("0.0.0.0", 9100)  # how to expose
    assert parse_endpoint("[::]:9100", "k") == ("::", 9100)


def test_attest_serve_defaults_to_loopback_and_survives_400_half_open_connections(
        project: Path) -> None:
    port = free_port()
    write_pipeline(project, f"""
        name: app
        monitoring: {{prometheus: {{endpoint: ":{port}"}}}}
        steps:
          a: {{run: 'true'}}
    """)
    proc = start_attest(project, "serve")
    try:
        assert wait_for_port(port, 20), stop(proc)
        outward = _outward_ip()
        if outward is not None:  # not reachable from other hosts
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((outward, port)) != 0
        before = _threads(proc.pid)
        with idle_connections(port, 400):
            _assert_answers_quickly(port)
            # no thread per connection: a small fixed pool
            assert _threads(proc.pid) <= before + Limits().workers + 1
        assert get(f"http://127.0.0.1:{port}/health/live")[0] == 200
    finally:
        _, err = stop(proc)
    assert f"listening on http://127.0.0.1:{port}" in err
    assert "Traceback" not in err


def _serve(limits: Limits, extra: dict | None = None) -> EndpointServer:
    routes = {"/health/live": lambda: (200, "application/json", b'{"status": "healthy"}\n'),
              "/metrics": lambda: (200, "text/plain", b"m 1\n"), **(extra or {})}
    return EndpointServer("127.0.0.1", 0, routes, where="test", limits=limits,
                          inline=("/health/live",)).start()


def _closed_by_server(s: socket.socket, within: float) -> float | None:
    """Seconds until the server closed ``s`` (EOF or reset), None if it stayed open."""
    t0 = time.monotonic()
    s.settimeout(within)
    try:
        while s.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


def test_idle_and_trickling_connections_are_closed_after_the_idle_timeout() -> None:
    server = _serve(Limits(idle_timeout=1.0))
    try:
        silent = socket.create_connection(("127.0.0.1", server.port))
        trickle = socket.create_connection(("127.0.0.1", server.port))
        stop_trickle = threading.Event()

        def drip() -> None:  # one byte every 0.3 s: each read is quick, the head never ends
            for byte in b"GET /metrics HTTP/1.1\r\nHost: " + b"x" * 100:
                if stop_trickle.wait(0.3):
                    return
                try:
                    trickle.sendall(bytes([byte]))
                except OSError:
                    return
        threading.Thread(target=drip, daemon=True).start()
        took = _closed_by_server(silent, 5)
        assert took is not None and took < 3
        took = _closed_by_server(trickle, 5)
        assert took is not None and took < 3
        stop_trickle.set()
        silent.close()
        trickle.close()
    finally:
        server.stop()


def test_at_the_cap_the_oldest_idle_connection_makes_room() -> None:
    server = _serve(Limits(max_connections=20))
    try:
        with idle_connections(server.port, 20) as socks:
            # every connection accepted and idle (not a guessed sleep): the next one evicts
            assert wait_for(lambda: len(server._idle) == 20, 10)
            code, took = _timed_get(f"http://127.0.0.1:{server.port}/health/live")
            assert code == 200 and took < 5
            assert _closed_by_server(socks[0], 2) is not None  # the oldest went
    finally:
        server.stop()


def test_at_the_cap_with_every_connection_busy_new_ones_get_503_quickly() -> None:
    release = threading.Event()

    def slow() -> tuple[int, str, bytes]:
        release.wait(20)
        return 200, "text/plain", b"slow\n"

    server = _serve(Limits(max_connections=4, workers=4), {"/slow": slow})
    busy = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            busy.append(s)
        time.sleep(0.5)
        code, took = _timed_get(f"http://127.0.0.1:{server.port}/metrics")
        assert code == 503 and took < 5
    finally:
        release.set()
        for s in busy:
            s.close()
        server.stop()


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    server = _serve(Limits())
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            for _ in range(3):
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while not data.endswith(b"m 1\n"):
                    data += s.recv(4096)
                assert data.startswith(b"HTTP/1.1 200 ")
            s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 405 ")
    finally:
        server.stop()


@pytest.mark.parametrize("request_line", [b"garbage\r\n\r\n", b"GET /x" + b"y" * 70000])
def test_malformed_or_oversized_request_heads_are_refused(request_line: bytes) -> None:
    server = _serve(Limits())
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            with contextlib.suppress(OSError):
                s.sendall(request_line)
            assert _closed_by_server(s, 5) is not None
        assert get(f"http://127.0.0.1:{server.port}/health/live")[0] == 200
    finally:
        server.stop()


def test_the_documented_bounds_are_the_servers() -> None:
    doc = (REPO / "docs" / "reliability.md").read_text()
    limits = Limits()
    assert f"| **{limits.max_connections}**;" in doc
    assert f"+ **{limits.workers}** worker threads" in doc
    assert f"| **{limits.idle_timeout:g} s**, total" in doc
    assert f"| **{limits.write_timeout:g} s** |" in doc
    assert f"| **{limits.max_head_bytes // 1024} KiB**;" in doc
    assert f"| listen backlog | {limits.backlog} |" in doc


def test_the_live_endpoint_answers_under_300_idle_connections_and_the_run_still_ends(
        project: Path) -> None:
    port = free_port()
    write_pipeline(project, f"""
        name: app
        monitoring: {{prometheus: {{enabled: true, endpoint: ":{port}"}}}}
        steps:
          wait: {{run: 'while [ ! -e go ]; do sleep 0.05; done', cache: false}}
    """)
    proc = start_attest(project, "run")
    try:
        assert wait_for_port(port, 20), stop(proc)
        with idle_connections(port, 300):
            _assert_answers_quickly(port)
            (project / "go").touch()
            t0 = time.monotonic()
            proc.wait(15)  # held connections never keep the run from ending
            assert time.monotonic() - t0 < 10
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
