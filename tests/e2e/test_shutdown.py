"""Shutdown is always bounded (ISSUE-12 #6): detached processes that keep a step's output
pipe open, timeouts and signals never hang a run, and a timed-out step is reported as such."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import alive, last_report, signal_when, start_run, steps_by_name
from tests.support import attest, wait_for, write_pipeline


@pytest.fixture
def detached(project: Path) -> Iterator[Path]:
    """Kill whatever a test's step detached (its pid is in ``det.pid``) after the test."""
    yield project
    pid_file = project / "det.pid"
    if pid_file.exists() and pid_file.read_text().strip():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _bounded_run(project: Path) -> subprocess.CompletedProcess[str]:
    """``attest run`` that must end well within 15 s (it used to hang for good)."""
    t0 = time.monotonic()
    proc = attest("run", cwd=project, timeout=60)
    elapsed = time.monotonic() - t0
    assert elapsed < 15, f"the run took {elapsed:.1f}s"
    return proc


def test_a_detached_process_holding_stdout_does_not_hang_the_run(detached: Path) -> None:
    write_pipeline(detached, """
        steps:
          leak: {run: 'setsid sleep 100 & echo $! > det.pid; echo step-said-this'}
          after: {run: 'touch after', needs: [leak]}
    """)
    proc = _bounded_run(detached)
    assert proc.returncode == 0, proc.stderr
    s = steps_by_name(last_report(detached))
    assert s["leak"]["status"] == "success" and s["leak"]["exit_code"] == 0
    assert s["leak"]["timed_out"] is False
    assert "step-said-this" in Path(s["leak"]["log_file"]).read_text()
    assert (detached / "after").exists()


def test_a_detached_writer_that_never_stops_is_cut_off(detached: Path) -> None:
    """The drain after the step exits is bounded even when the pipe never runs dry."""
    write_pipeline(detached, "steps:\n  spam: {run: 'setsid yes & echo $! > det.pid'}\n")
    proc = _bounded_run(detached)
    assert proc.returncode == 0, proc.stderr[-2000:]
    spammer = int((detached / "det.pid").read_text())
    assert wait_for(lambda: not alive(spammer), 5), "closing the pipe should stop `yes`"


def test_a_detached_process_within_timeout_is_not_a_timeout(detached: Path) -> None:
    write_pipeline(detached, """
        steps:
          leak:
            run: 'setsid sleep 100 & echo $! > det.pid'
            timeout: 3
    """)
    proc = _bounded_run(detached)
    assert proc.returncode == 0, proc.stderr
    s = steps_by_name(last_report(detached))["leak"]
    assert s["status"] == "success" and s["timed_out"] is False and s["exit_code"] == 0


@pytest.mark.parametrize("command", [
    "sleep 30",
    # a step that ignores SIGTERM and would exit 0: still a timeout, never exit code 0
    "trap 'exit 0' TERM; sleep 30 & wait",
])
def test_a_timed_out_step_reports_exit_code_124_and_failure(project: Path,
                                                             command: str) -> None:
    write_pipeline(project, f"steps:\n  slow:\n    run: \"{command}\"\n    timeout: 0.5\n")
    proc = _bounded_run(project)
    assert proc.returncode == 1
    s = steps_by_name(last_report(project))["slow"]
    assert s["status"] == "failure" and s["timed_out"] is True
    assert s["exit_code"] == 124
    assert s["reason"] == "timed out after 0.5s"


def test_a_timed_out_step_with_a_detached_process_is_bounded(detached: Path) -> None:
    write_pipeline(detached, """
        steps:
          slow:
            run: 'setsid sleep 100 & echo $! > det.pid; sleep 30'
            timeout: 0.5
    """)
    proc = _bounded_run(detached)
    assert proc.returncode == 1
    s = steps_by_name(last_report(detached))["slow"]
    assert s["timed_out"] is True and s["exit_code"] == 124 and s["status"] == "failure"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_step_with_a_detached_process_exits_promptly(
        detached: Path, sig: int, code: int) -> None:
    write_pipeline(detached, """
        steps:
          hang: {run: 'setsid sleep 100 & echo $! > det.pid; echo up > started; sleep 60'}
          later: {run: 'touch later', needs: [hang]}
    """)
    proc = start_run(detached)
    err, elapsed = signal_when(proc, lambda: (detached / "started").exists(), sig)
    assert proc.returncode == code, err
    assert elapsed < 6, f"exit took {elapsed:.1f}s after the signal"
    report = last_report(detached)
    assert report["status"] == "interrupted" and report["interrupted_by"] == sig
    assert report["exit_code"] == code
    s = steps_by_name(report)
    assert s["hang"]["status"] == "failure" and s["hang"]["reason"] == "killed by interrupt"
    assert s["later"]["status"] == "skipped" and not (detached / "later").exists()
