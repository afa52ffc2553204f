"""run_command directly: exit codes, captured output, process-group kill on timeout."""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from pathlib import Path

import pytest

from attest_cli.engine.process import ProcessRegistry, group_alive, run_command

pytestmark = pytest.mark.unit  # in-process: the fast layer (make test-unit)


def run(command: str, tmp_path: Path, *, timeout: float | None = None,
        registry: ProcessRegistry | None = None, lines: list[str] | None = None):  # type: ignore[no-untyped-def]
    return run_command(command, cwd=tmp_path, env={"PATH": os.environ["PATH"], "V": "env-ok"},
                       log_path=tmp_path / "step.log", timeout=timeout,
                       registry=registry or ProcessRegistry(),
                       on_line=None if lines is None else lines.append,
                       mask=lambda s: s.replace("hunter2", "***"))


def _env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"]}


def test_exit_codes_are_reported(tmp_path: Path) -> None:
    assert run("true", tmp_path).exit_code == 0
    failed = run("exit 7", tmp_path)
    assert (failed.exit_code, failed.timed_out, failed.signal) == (7, False, None)


def test_a_signalled_step_reports_128_plus_the_signal(tmp_path: Path) -> None:
    outcome = run("kill -TERM $$", tmp_path)
    assert (outcome.exit_code, outcome.signal) == (128 + signal.SIGTERM, signal.SIGTERM)


def test_merged_output_is_masked_logged_and_streamed(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = run("echo out; echo err >&2; echo pw=hunter2; printf 'no newline'; echo $V >&2",
                  tmp_path, lines=lines)
    assert outcome.exit_code == 0
    assert lines == ["out", "err", "pw=***", "no newlineenv-ok"]
    assert (tmp_path / "step.log").read_text() == "out\nerr\npw=***\nno newlineenv-ok\n"


def test_the_step_runs_in_its_working_directory_with_stdin_closed(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    lines: list[str] = []
    outcome = run_command("pwd; cat", cwd=tmp_path / "sub", env={"PATH": os.environ["PATH"]},
                          log_path=tmp_path / "step.log", timeout=5,
                          registry=ProcessRegistry(), on_line=lines.append)
    assert outcome.exit_code == 0
    assert lines == [str((tmp_path / "sub").resolve())]


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    outcome = run(f"sleep 60 & echo $! > {pidfile}; wait", tmp_path, timeout=0.5)
    assert time.monotonic() - started < 10
    # a timed-out step exits 124, as coreutils' timeout does; the signal is still recorded
    assert (outcome.timed_out, outcome.exit_code, outcome.signal) == (True, 124, signal.SIGTERM)
    assert outcome.wall_seconds >= 0.5
    grandchild = int(pidfile.read_text())
    assert not _alive(grandchild)


def test_terminate_all_stops_running_groups(tmp_path: Path) -> None:
    registry = ProcessRegistry()
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(
        run("sleep 60", tmp_path, registry=registry)))
    worker.start()
    deadline = time.monotonic() + 5
    while not registry.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    (pgid,) = registry.running()
    registry.terminate_all()
    worker.join(10)
    assert not worker.is_alive()
    assert outcomes[0].exit_code == 128 + signal.SIGTERM
    assert not group_alive(pgid)
    assert registry.running() == []


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 5  # the kill is asynchronous to the reaping of sh
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        if _zombie(pid):
            return False
        time.sleep(0.02)
    return True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


def test_a_child_of_attests_own_that_outlives_its_output_still_has_a_timeout(
        tmp_path: Path) -> None:
    """Without the launcher (no Linux, a request too large), attest reaps the step itself:
    a step that closes its output first (``exec cmd >log``) is still waited for under its
    timeout, never in a blocking wait4 (one thread may serve every running step)."""
    out = run_command("exec sleep 30 >/dev/null 2>&1", cwd=tmp_path, env=_env(),
                      log_path=tmp_path / "o.log", timeout=0.3, registry=ProcessRegistry(),
                      launcher=None)
    assert out.timed_out and out.exit_code == 124


class _Refusing:
    """A launcher that refuses every request: its socket closes without a pid, after the
    step's output pipe (as launcher_server does on a request it cannot serve)."""

    usable = True

    def spawn(self, command: str, cwd: Path, env: object, *, wait: bool = True,
              limit: int = 0, group: str = "", fail_fast: bool = False
              ) -> tuple[object, int]:
        import _socket

        from attest_cli.engine.launcher import LaunchedStep

        mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        theirs.close()
        read_fd, write_fd = os.pipe()
        os.close(write_fd)
        return LaunchedStep(mine), read_fd


def test_a_request_the_launcher_refuses_is_run_by_attest_even_if_its_output_ends_first(
        tmp_path: Path) -> None:
    from attest_cli.engine.process import RunningCommand

    lines: list[str] = []
    running = RunningCommand("echo fallback", cwd=tmp_path, env=_env(),
                             log_path=tmp_path / "f.log", timeout=None,
                             registry=ProcessRegistry(), on_line=lines.append,
                             launcher=_Refusing(), wait_for_pid=False)  # type: ignore[arg-type]
    running.ready([running.sources[0]])  # the end of the output, seen before the socket's
    while (wait := running.tick(time.monotonic())) is not None:
        ready, _, _ = select.select(running.sources, [], [], wait)
        running.ready(ready)
    out = running.finish()
    assert out.exit_code == 0 and lines == ["fallback"]


def test_a_step_given_up_before_its_pid_came_is_stopped(tmp_path: Path) -> None:
    """abort() right after a request (the pid not read yet): the launcher's step must not
    run on unseen."""
    from attest_cli.engine.launcher import start_launcher
    from attest_cli.engine.process import RunningCommand

    launcher = start_launcher()
    assert launcher is not None
    try:
        marker = tmp_path / "ran-on"
        running = RunningCommand(f"sleep 0.5; touch {marker}", cwd=tmp_path, env=_env(),
                                 log_path=tmp_path / "a.log", timeout=None,
                                 registry=ProcessRegistry(), launcher=launcher,
                                 wait_for_pid=False)
        running.abort()
        time.sleep(1.0)
        assert not marker.exists()
    finally:
        launcher.close()


class _Stopped:
    """The side of a command a watch calls when it times a step out."""

    pid = 0  # never signalled (kill_group ignores it)

    def __init__(self) -> None:
        self.stopping = 0

    def _stopping(self) -> None:
        self.stopping += 1


def test_an_exit_reported_just_after_the_deadline_is_not_a_timeout() -> None:
    """The launcher reaps a step, spawns the next queued ones, then sends the exit record:
    a step that ended just before its deadline must not be stopped (nor, with fail-fast,
    hold its run) for a record still on its way."""
    from attest_cli.engine.process import LATE_EXIT_RECORD, _Watch

    arrives = 10.0 + LATE_EXIT_RECORD / 2  # the record reaches attest after the deadline
    now = [0.0]
    command = _Stopped()
    watch = _Watch(command, 0.0, 10.0, lambda: now[0] >= arrives,  # type: ignore[arg-type]
                   grace=LATE_EXIT_RECORD)
    now[0] = 10.0
    wait = watch.tick(now[0])
    assert not watch.timed_out and wait is not None and 0 < wait <= LATE_EXIT_RECORD
    now[0] = 10.0 + LATE_EXIT_RECORD  # the deadline is past its grace: looked at again
    watch.tick(now[0])
    assert (watch.timed_out, watch.exited_at, command.stopping) == (False, now[0], 0)


def test_a_step_still_running_past_the_grace_is_timed_out() -> None:
    from attest_cli.engine.process import LATE_EXIT_RECORD, _Watch

    command = _Stopped()
    watch = _Watch(command, 0.0, 10.0, lambda: False,  # type: ignore[arg-type]
                   grace=LATE_EXIT_RECORD)
    watch.tick(10.0)
    assert not watch.timed_out
    watch.tick(10.0 + LATE_EXIT_RECORD)
    assert watch.timed_out and command.stopping == 1
