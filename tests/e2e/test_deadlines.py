"""Every network call has a total deadline and yields to signals (ISSUE-12 #7), proved
against a real slow-loris peer (:mod:`tests.e2e.slow_peer`) that answers a byte every 2 s."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import last_report, signal_when, start_run
from tests.e2e.slow_peer import SlowPeer, slow_peer
from tests.support import attest, wait_for, write_pipeline

PIPELINE = "name: app\nsteps:\n  a: {run: 'echo hi'}\n"


@pytest.fixture
def peer() -> Iterator[SlowPeer]:
    with slow_peer(interval=2.0) as p:
        yield p


def test_a_slow_loris_pushgateway_costs_its_deadline_and_one_warning(
        project: Path, peer: SlowPeer) -> None:
    write_pipeline(project, PIPELINE)
    env = {"ATTEST_MONITORING__PROMETHEUS__PUSHGATEWAY": peer.url,
           "ATTEST_MONITORING__PROMETHEUS__PUSH_TIMEOUT": "2s"}
    t0 = time.monotonic()
    proc = attest("run", "--log-format", "text", cwd=project, env=env, timeout=90)
    elapsed = time.monotonic() - t0
    assert peer.connections == 1
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "pushing metrics" in ln]
    assert len(warnings) == 1 and "WARN" in warnings[0], proc.stderr
    assert "within 2s" in warnings[0]
    assert "Traceback" not in proc.stderr
    # the deadline (2 s) plus start-up; it used to hang as long as the peer dripped
    assert elapsed < 12, elapsed
    # a failing run keeps its own exit code
    write_pipeline(project, "name: app\nsteps:\n  a: {run: 'exit 3'}\n")
    assert attest("run", cwd=project, env=env, timeout=90).returncode == 1


def test_sigint_during_a_stalled_push_exits_130_promptly(project: Path,
                                                         peer: SlowPeer) -> None:
    write_pipeline(project, PIPELINE)
    env = {"ATTEST_MONITORING__PROMETHEUS__PUSHGATEWAY": peer.url,
           "ATTEST_MONITORING__PROMETHEUS__PUSH_TIMEOUT": "120s"}
    proc = start_run(project, env=env)
    # settle: well inside the push when the signal comes
    err, elapsed = signal_when(proc, peer.connected.is_set, signal.SIGINT, settle=0.3)
    assert proc.returncode == 130, err
    assert elapsed < 5, f"exit took {elapsed:.1f}s after SIGINT"
    assert "Traceback" not in err
    report = last_report(project)
    assert report["status"] == "interrupted" and report["exit_code"] == 130


@pytest.mark.parametrize(("exporter", "protocol", "path"), [
    ("zipkin", None, "/api/v2/spans"),
    ("jaeger", None, "/api/traces"),
    ("otlp", "http/protobuf", "/v1/traces"),
    ("otlp", "grpc", ""),
])
def test_a_slow_loris_collector_costs_its_deadline_and_one_warning(
        project: Path, peer: SlowPeer, exporter: str, protocol: str | None,
        path: str) -> None:
    proto = f"\n    protocol: {protocol}" if protocol else ""
    write_pipeline(project, PIPELINE + f"""
tracing:
  exporter:
    type: {exporter}
    endpoint: {peer.url}{path}
    timeout: 2s{proto}
""")
    t0 = time.monotonic()
    proc = attest("run", "--trace", cwd=project, timeout=90)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    warnings = [x for x in proc.stderr.splitlines() if "could not export" in x]
    assert len(warnings) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert elapsed < 12, elapsed


def test_a_slow_loris_cache_peer_does_not_hold_attest_health(project: Path) -> None:
    """The readiness check answers within health.timeout and the process exits at once:
    a probe that never returns may not hold the interpreter's exit."""
    with slow_peer(interval=1.0, answer=b"+" + b"P" * 10_000) as redis_peer:
        env = {"ATTEST_CACHE__BACKEND": "redis",
               "ATTEST_CACHE__ENDPOINT": f"127.0.0.1:{redis_peer.port}",
               "ATTEST_CACHE__TIMEOUT": "30s", "ATTEST_HEALTH__TIMEOUT": "1s"}
        t0 = time.monotonic()
        proc = attest("health", "--format", "json", cwd=project, env=env, timeout=90)
        elapsed = time.monotonic() - t0
        assert wait_for(lambda: redis_peer.connections >= 1, 1)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '"timed out after 1s"' in proc.stdout
    assert elapsed < 10, elapsed


def test_sigint_during_a_stalled_cache_lookup_exits_130_promptly(project: Path) -> None:
    """Whatever attest itself is blocked on for a step (here a Redis lookup on a peer that
    drips a byte a second), the run stops waiting for the step shortly after a signal."""
    write_pipeline(project, "name: app\nsteps:\n  a: {run: 'touch ran', outputs: [x]}\n")
    with slow_peer(interval=1.0, answer=b"+" + b"P" * 10_000) as redis_peer:
        env = {"ATTEST_CACHE__BACKEND": "redis",
               "ATTEST_CACHE__ENDPOINT": f"127.0.0.1:{redis_peer.port}",
               "ATTEST_CACHE__TIMEOUT": "120s"}
        proc = start_run(project, env=env)
        err, elapsed = signal_when(proc, redis_peer.connected.is_set, signal.SIGINT,
                                   settle=0.5)
    assert proc.returncode == 130, err
    assert elapsed < 10, f"exit took {elapsed:.1f}s after SIGINT"
    report = last_report(project)
    assert report["status"] == "interrupted" and report["exit_code"] == 130
    step = report["steps"][0]
    # The cache's own deadline gives up on the signal (the step is then never started), or
    # the scheduler's safety net stops waiting for it: either way the step did not run.
    assert step["status"] in ("skipped", "failure"), step
    if step["status"] == "failure":
        assert step["reason"].startswith("killed by interrupt"), step
    assert not (project / "ran").exists()


def test_a_run_interrupted_earlier_still_pushes_within_the_deadline(project: Path,
                                                                    peer: SlowPeer) -> None:
    """Only a signal *during* a call cuts it short: the push that follows an interrupted
    run is still made (and still bounded by its deadline)."""
    write_pipeline(project, "name: app\nsteps:\n  hang: {run: 'echo up > started; sleep 60'}\n")
    env = {"ATTEST_MONITORING__PROMETHEUS__PUSHGATEWAY": peer.url,
           "ATTEST_MONITORING__PROMETHEUS__PUSH_TIMEOUT": "2s"}
    proc = start_run(project, "--log-format", "text", env=env)
    err, elapsed = signal_when(proc, (project / "started").exists, signal.SIGINT)
    assert proc.returncode == 130, err
    assert peer.connections == 1, "the interrupted run did not push"
    assert sum("pushing metrics" in ln for ln in err.splitlines()) == 1, err
    assert elapsed < 10, elapsed
    assert last_report(project)["status"] == "interrupted"
