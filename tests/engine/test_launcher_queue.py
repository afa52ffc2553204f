"""The launcher's queue: steps sent ahead start as command slots free, never more at once,
in order, not after their run failed, and not at all once attest gives up on them."""

from __future__ import annotations

import _socket
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from attest_cli.engine.launcher import LaunchedStep, StepLauncher, start_launcher
from attest_cli.engine.process import readable
from tests.support import attest, wait_for, write_pipeline

# blocks until the file ``go`` exists (at most 30 s, so that a failing test cannot hang)
GATED = 'touch started.{i}; n=0; while [ ! -e go ] && [ $n -lt 3000 ]; do sleep 0.01; ' \
        'n=$((n+1)); done'


@pytest.fixture
def launcher() -> StepLauncher:
    started = start_launcher()
    if started is None:
        pytest.skip("the step launcher runs on Linux only")
    yield started
    started.close()


class Sent:
    """A request sent to the launcher, read as its records come."""

    def __init__(self, launcher: StepLauncher, command: str, cwd: Path, *, limit: int,
                 group: str = "", fail_fast: bool = False, env: dict[str, str] | None = None
                 ) -> None:
        self.step, self.out = launcher.spawn(
            command, cwd, {"PATH": os.environ["PATH"], **(env or {})}, wait=False,
            limit=limit, group=group, fail_fast=fail_fast)

    def pump(self, seconds: float = 0.0) -> None:
        """Read what the launcher sent within ``seconds``."""
        deadline = time.monotonic() + seconds
        while not self.step.closed:
            left = max(0.0, deadline - time.monotonic())
            if not readable([self.step], left):
                return
            self.step.pump()

    def finish(self) -> LaunchedStep:
        self.pump(30)
        os.close(self.out)
        return self.step


def peak_concurrency(events: Path) -> int:
    """The most commands running at once, from their own start and end lines."""
    found = [(int(t), kind) for kind, t in
             (line.split() for line in events.read_text().splitlines())]
    running = peak = 0
    for _, kind in sorted(found, key=lambda e: (e[0], e[1] == "start")):  # ends first
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    return peak


def run_report(project: Path) -> dict[str, Any]:
    """The steps of the project's one run, by name."""
    (path,) = (project / ".attest" / "runs").glob("*.json")
    return {s["name"]: s for s in json.loads(path.read_text())["steps"]}


def test_queued_steps_start_in_order_as_slots_free_never_more_than_the_limit(
        launcher: StepLauncher, tmp_path: Path) -> None:
    sent = [Sent(launcher, GATED.format(i=i), tmp_path, limit=2) for i in range(5)]
    assert wait_for(lambda: (tmp_path / "started.0").exists()
                    and (tmp_path / "started.1").exists())
    for s in sent:
        s.pump(0.2)
    assert [bool(s.step.pid) for s in sent] == [True, True, False, False, False]
    assert not any((tmp_path / f"started.{i}").exists() for i in (2, 3, 4))
    (tmp_path / "go").touch()
    steps = [s.finish() for s in sent]
    assert all(s.status == 0 and s.spawned_at and s.exited_at for s in steps)
    spawned = [s.spawned_at for s in steps]
    assert spawned == sorted(spawned)  # in the order they were sent
    for s in steps:  # at each spawn, at most one other step was running
        others = [o for o in steps if o is not s and o.spawned_at <= s.spawned_at < o.exited_at]
        assert len(others) <= 1


def test_the_next_step_is_spawned_before_the_exit_of_the_last_is_reported(
        launcher: StepLauncher, tmp_path: Path) -> None:
    """An exit record wakes attest, whose bookkeeping would compete with the spawn for a
    core: the launcher spawns the next queued step first, so its pid is already there
    when the exit record of the step before it arrives."""
    for _ in range(5):  # each round: the order holds every time, not by luck
        first = Sent(launcher, "true", tmp_path, limit=1)
        second = Sent(launcher, "sleep 0.05", tmp_path, limit=1)
        assert first.finish().status == 0
        second.pump(0)  # what is in its socket already, without waiting
        assert second.step.pid
        assert second.finish().status == 0


def test_a_failed_fail_fast_step_holds_its_runs_queued_steps_and_no_other_run(
        launcher: StepLauncher, tmp_path: Path) -> None:
    failing = Sent(launcher, "exit 3", tmp_path, limit=1, group="run-1", fail_fast=True)
    same_run = Sent(launcher, "touch same", tmp_path, limit=1, group="run-1", fail_fast=True)
    other_run = Sent(launcher, "touch other", tmp_path, limit=1, group="run-2")
    assert os.waitstatus_to_exitcode(failing.finish().status or 0) == 3
    assert other_run.finish().status == 0 and (tmp_path / "other").exists()
    same_run.pump(0.2)
    assert not same_run.step.pid and not (tmp_path / "same").exists()
    same_run.step.chan.shutdown(_socket.SHUT_WR)  # attest drops it: closed, never spawned
    assert not same_run.finish().pid and not (tmp_path / "same").exists()


def test_a_held_run_starts_no_queued_step_whatever_its_steps_exit_with(
        launcher: StepLauncher, tmp_path: Path) -> None:
    """attest holds its run before it stops a step: a step that then exits 0 (a shell
    that traps SIGTERM) must not let the next one start."""
    blocker = Sent(launcher, GATED.format(i=0), tmp_path, limit=1, group="run-1")
    queued = Sent(launcher, "touch queued", tmp_path, limit=1, group="run-1")
    assert wait_for(lambda: (tmp_path / "started.0").exists())
    launcher.hold("run-1")
    (tmp_path / "go").touch()
    assert blocker.finish().status == 0
    queued.pump(0.3)
    assert not queued.step.pid and not (tmp_path / "queued").exists()
    queued.step.chan.shutdown(_socket.SHUT_WR)
    assert not queued.finish().pid


def test_hundreds_of_queued_steps_beyond_select_s_descriptor_limit(
        launcher: StepLauncher, tmp_path: Path) -> None:
    """The launcher polls its queued steps' sockets: past descriptor 1024 select() fails."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"needs 4096 descriptors (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    try:
        fresh = start_launcher()  # inherits the limit
        assert fresh is not None
        blocker = Sent(fresh, GATED.format(i=0), tmp_path, limit=1)
        queued = [Sent(fresh, f"touch q{i}", tmp_path, limit=1) for i in range(600)]
        assert wait_for(lambda: (tmp_path / "started.0").exists())
        (tmp_path / "go").touch()
        assert blocker.finish().status == 0
        assert all(q.finish().status == 0 for q in queued)
        assert len(list(tmp_path.glob("q*"))) == 600
        fresh.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_queued_step_given_up_on_is_dropped_at_once_and_never_spawned(
        launcher: StepLauncher, tmp_path: Path) -> None:
    blocker = Sent(launcher, GATED.format(i=0), tmp_path, limit=1)
    queued = Sent(launcher, "touch queued", tmp_path, limit=1)
    assert wait_for(lambda: (tmp_path / "started.0").exists())
    queued.step.chan.shutdown(_socket.SHUT_WR)
    queued.pump(10)
    assert queued.step.closed and not queued.step.pid  # answered while the slot is taken
    (tmp_path / "go").touch()
    assert blocker.finish().status == 0
    time.sleep(0.2)
    assert not (tmp_path / "queued").exists()
    os.close(queued.out)


def test_a_queued_steps_timeout_counts_from_its_start(tmp_path: Path) -> None:
    """``late`` waits ~1 s for a slot; its 0.5 s timeout starts only when it does."""
    write_pipeline(tmp_path, """
        steps:
          slow1: {run: 'sleep 1'}
          slow2: {run: 'sleep 1'}
          late: {run: 'true', timeout: 0.5}
    """)
    out = attest("run", "-j2", "--no-cache", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    late = run_report(tmp_path)["late"]
    assert late["status"] == "success" and not late["timed_out"]


def test_a_run_keeps_j_commands_at_once_while_it_looks_steps_up_ahead(tmp_path: Path) -> None:
    write_pipeline(tmp_path, "steps:\n" + "".join(
        f"  s{i}: {{run: 'echo start $(date +%s%N) >> events; sleep 0.2; "
        f"echo end $(date +%s%N) >> events'}}\n" for i in range(6)))
    out = attest("run", "-j2", "--no-cache", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert peak_concurrency(tmp_path / "events") == 2
    steps = run_report(tmp_path).values()
    assert {s["slot"] for s in steps} == {0, 1, 2, 3}  # in flight
    # each step's span starts when it was spawned, not looked up: at most 2 at once
    spans = sorted((s["started_at"], s["started_at"] + s["wall_seconds"]) for s in steps)
    assert all(sum(1 for b, e in spans if b <= start < e) <= 2 for start, _ in spans)


def test_a_step_that_started_as_the_run_stopped_runs_to_its_end(tmp_path: Path) -> None:
    """Taking back the queued commands when a step fails never kills one that had just
    started (its pid not read yet): it is no 'not started' step."""
    from attest_cli.engine.interfaces import StepRequest
    from attest_cli.engine.step_runner import ProcessStepRunner

    runner = ProcessStepRunner()

    def start(command: str, name: str) -> object:
        return runner.start(StepRequest(
            step=name, command=command, cwd=tmp_path, env={"PATH": os.environ["PATH"]},
            log_path=tmp_path / f"{name}.log", timeout=None, mask=lambda s: s,
            on_line=lambda _line: None), limit=1, group="r")

    started = start("touch began; sleep 0.3; touch ended", "a")
    assert wait_for(lambda: (tmp_path / "began").exists())
    assert not started.pid  # spawned, but its pid not read yet
    assert started.cancel() is False and started.pid  # it had started: it runs on
    while started.tick(time.monotonic()) is not None:
        ready = readable(started.sources, 0.1)
        started.ready(ready)
    outcome = started.finish()
    assert outcome.exit_code == 0 and (tmp_path / "ended").exists()


def test_a_timed_out_step_that_exits_0_starts_no_further_step(tmp_path: Path) -> None:
    write_pipeline(tmp_path, """
        steps:
          stubborn: {run: "trap 'exit 0' TERM; sleep 5 & wait", timeout: 0.5}
          busy: {run: 'sleep 2'}
          next1: {run: 'touch next1'}
          next2: {run: 'touch next2'}
    """)
    out = attest("run", "-j2", "--no-cache", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    by_name = run_report(tmp_path)
    assert by_name["stubborn"]["timed_out"]
    for name in ("next1", "next2"):
        assert by_name[name]["status"] == "skipped"
        assert not (tmp_path / name).exists()


def test_a_large_environment_keeps_j_commands_at_once(tmp_path: Path) -> None:
    """A request over one datagram is spawned by attest itself, which the launcher's count
    does not include: no step is looked up ahead then."""
    write_pipeline(tmp_path, "steps:\n" + "".join(
        f"  s{i}: {{run: 'echo start $(date +%s%N) >> events; sleep 0.2; "
        f"echo end $(date +%s%N) >> events'}}\n" for i in range(6)))
    out = attest("run", "-j2", "--no-cache", cwd=tmp_path,
                 env={"BIG_A": "a" * 120_000, "BIG_B": "b" * 120_000})
    assert out.returncode == 0, out.stderr
    assert peak_concurrency(tmp_path / "events") == 2


def test_a_failure_starts_no_step_that_waited_in_the_launcher(tmp_path: Path) -> None:
    write_pipeline(tmp_path, """
        steps:
          fails: {run: 'sleep 0.3; exit 1'}
          busy: {run: 'sleep 1'}
          next1: {run: 'touch next1'}
          next2: {run: 'touch next2'}
    """)
    out = attest("run", "-j2", "--no-cache", cwd=tmp_path)
    assert out.returncode == 1
    by_name = run_report(tmp_path)
    assert by_name["busy"]["status"] == "success"
    for name in ("next1", "next2"):
        assert by_name[name]["status"] == "skipped"
        assert by_name[name]["reason"] == "not started: step 'fails' failed"
        assert not (tmp_path / name).exists()


def test_an_interrupt_starts_no_step_that_waited_in_the_launcher(tmp_path: Path) -> None:
    write_pipeline(tmp_path, "steps:\n" + "".join(
        f"  s{i}: {{run: 'touch started.{i}; sleep 60'}}\n" for i in range(4)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / ".xdg")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "-j2", "--no-cache"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: (tmp_path / "started.0").exists()
                    and (tmp_path / "started.1").exists())
    time.sleep(0.3)  # s2 and s3 are looked up and waiting in the launcher by now
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    by_name = run_report(tmp_path)
    for name in ("s2", "s3"):
        assert by_name[name]["status"] == "skipped", by_name[name]
        assert by_name[name]["reason"] == "not started: the run was interrupted"
    assert not (tmp_path / "started.2").exists() and not (tmp_path / "started.3").exists()
