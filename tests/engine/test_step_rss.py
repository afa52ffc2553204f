"""Steps report their own peak RSS, not attest's: they are forked by the step launcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from attest_cli.engine.interfaces import StepRequest
from attest_cli.engine.launcher import start_launcher
from attest_cli.engine.process import ProcessRegistry, group_alive, own_peak_rss, run_command
from attest_cli.engine.step_runner import ProcessStepRunner
from tests.support import attest, write_pipeline

MiB = 1024 * 1024
ALLOC_200 = 'python3 -c "b = bytearray(200*1024*1024)"'


def request(command: str, tmp_path: Path, name: str = "s", timeout: float | None = None,
            on_line: Callable[[str], None] = lambda _line: None) -> StepRequest:
    return StepRequest(step=name, command=command, cwd=tmp_path,
                       env={"PATH": os.environ["PATH"]}, log_path=tmp_path / f"{name}.log",
                       timeout=timeout, mask=lambda s: s, on_line=on_line)


def test_a_step_reports_its_own_peak_not_attests(tmp_path: Path) -> None:
    ballast = bytearray(64 * MiB)  # attest's own peak, which a spawned child would inherit
    ballast[::4096] = b"x" * len(ballast[::4096])
    runner = ProcessStepRunner()
    big = runner.run(request(ALLOC_200, tmp_path, "big"))
    small = runner.run(request("true", tmp_path, "small"))
    assert big.exit_code == 0 and small.exit_code == 0
    assert big.max_rss_bytes >= 190 * MiB
    assert big.max_rss_floor_bytes is not None and big.max_rss_bytes > big.max_rss_floor_bytes
    own = own_peak_rss()
    assert own is not None and own > 64 * MiB
    assert small.max_rss_bytes < 10 * MiB  # well below attest's own peak
    # the floor (what a fork of the launcher starts at) is small, and `true` is within it:
    # its figure is an upper bound, and says so
    assert small.max_rss_floor_bytes is not None and small.max_rss_floor_bytes < 10 * MiB
    assert small.max_rss_bytes <= small.max_rss_floor_bytes


def test_the_run_report_has_the_true_peaks(tmp_path: Path) -> None:
    write_pipeline(tmp_path, f"""
        steps:
          big: {{run: '{ALLOC_200}'}}
          small: {{run: 'true'}}
    """)
    proc = attest("run", "--no-cache", "--report", "report.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in json.loads((tmp_path / "report.json").read_text())["steps"]}
    assert steps["big"]["max_rss_bytes"] >= 190 * MiB
    assert steps["big"]["max_rss_bytes"] > steps["big"]["max_rss_floor_bytes"]
    assert steps["small"]["max_rss_bytes"] < 10 * MiB


def test_launched_steps_keep_exit_codes_output_and_directory(tmp_path: Path) -> None:
    runner = ProcessStepRunner()
    (tmp_path / "sub").mkdir()
    results: dict[int, object] = {}

    def one(i: int) -> None:
        req = request(f"cd sub && echo out-$((40 + {i})); echo err >&2; pwd; exit {i}",
                      tmp_path, f"s{i}")
        results[i] = runner.run(req)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == list(range(6))
    for i, outcome in results.items():
        assert outcome.exit_code == i  # type: ignore[attr-defined]
        log = (tmp_path / f"s{i}.log").read_text().splitlines()
        assert log == [f"out-{40 + i}", "err", str((tmp_path / "sub").resolve())]
    signalled = runner.run(request("kill -TERM $$", tmp_path))
    assert (signalled.exit_code, signalled.signal) == (128 + signal.SIGTERM, signal.SIGTERM)
    missing = runner.run(StepRequest(step="m", command="true", cwd=tmp_path / "nowhere",
                                     env={}, log_path=tmp_path / "m.log", timeout=None,
                                     mask=lambda s: s, on_line=lambda _line: None))
    assert missing.exit_code == 127
    assert "cannot enter" in (tmp_path / "m.log").read_text()


def test_a_launched_step_times_out_and_is_interrupted_as_a_group(tmp_path: Path) -> None:
    runner = ProcessStepRunner()
    timed = runner.run(request("sleep 30 & sleep 30; wait", tmp_path, timeout=0.5))
    assert timed.timed_out and timed.exit_code == 124 and timed.wall_seconds < 10
    started = threading.Event()
    outcome: list[object] = []

    def hang() -> None:
        req = request("echo up; sleep 30", tmp_path, "hang", on_line=lambda _: started.set())
        outcome.append(runner.run(req))

    worker = threading.Thread(target=hang)
    worker.start()
    assert started.wait(10)
    (pgid,) = runner.registry.running()
    runner.terminate_all()
    worker.join(10)
    assert not worker.is_alive() and not group_alive(pgid)
    assert outcome[0].exit_code == 128 + signal.SIGTERM  # type: ignore[attr-defined]


def test_without_the_launcher_attest_spawns_the_step_itself(tmp_path: Path) -> None:
    launcher = start_launcher()
    assert launcher is not None
    launcher.close()  # gone: the next step falls back to attest's own spawn
    outcome = run_command("exit 3", cwd=tmp_path, env={}, log_path=tmp_path / "l.log",
                          timeout=None, registry=ProcessRegistry(), launcher=launcher)
    assert outcome.exit_code == 3
    # the floor is attest's own peak again: the figure is an upper bound
    assert outcome.max_rss_floor_bytes == pytest.approx(own_peak_rss(), rel=0.1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux rusage semantics")
def test_the_launcher_exits_with_its_runner(tmp_path: Path) -> None:
    launcher = start_launcher()
    assert launcher is not None
    launcher.close()
    assert launcher.returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")
def test_a_descriptor_attest_inherited_does_not_reach_the_steps(tmp_path: Path) -> None:
    """attest starts the launcher with posix_spawn, which passes on every inheritable
    descriptor: the launcher closes them, so the steps get only their own three."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)  # as a CI runner's or make's jobserver would be
    launcher = start_launcher()
    try:
        assert launcher is not None
        outcome = run_command("ls /proc/self/fd", cwd=tmp_path, env={"PATH": os.defpath},
                              log_path=tmp_path / "l.log", timeout=None,
                              registry=ProcessRegistry(), launcher=launcher)
    finally:
        os.close(read_end)
        os.close(write_end)
        if launcher is not None:
            launcher.close()
    assert outcome.exit_code == 0
    # 0, 1, 2 and ls's own listing of the directory
    assert len((tmp_path / "l.log").read_text().split()) == 4, (tmp_path / "l.log").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the launcher is Linux's")
@pytest.mark.parametrize("closed", [(0,), (0, 1)], ids=["stdin", "stdin+stdout"])
def test_the_launcher_starts_when_attests_standard_streams_are_closed(
        tmp_path: Path, closed: tuple[int, ...]) -> None:
    """With descriptors 0 (and 1) closed, the launcher's socket is one of them, or the
    descriptor it is handed at: the launcher still starts, and serves the step."""
    code = ("import os, sys\n"
            f"for fd in {closed!r}:\n    os.close(fd)\n"
            "from pathlib import Path\n"
            "from attest_cli.engine.launcher import start_launcher\n"
            "from attest_cli.engine.process import ProcessRegistry, run_command\n"
            "launcher = start_launcher()\n"
            "log = Path(sys.argv[1]) / 'l.log'\n"
            "out = run_command('echo $PPID', cwd=Path(sys.argv[1]), env={'PATH': os.defpath},"
            " log_path=log, timeout=None, registry=ProcessRegistry(), launcher=launcher)\n"
            "parent = int(log.read_text())\n"
            "launcher.close()\n"
            "sys.stderr.write(f'{out.exit_code} {parent != os.getpid()} {launcher.returncode}')\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.stderr.splitlines()[-1] == "0 True 0", done.stderr


BURN = ('python3 -c "import time\nt = time.process_time()\n'
        'while time.process_time() - t < 0.3: pass"')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux rusage semantics")
def test_the_steps_cpu_time_reaches_attests_parent(tmp_path: Path) -> None:
    """``time attest run`` counts the steps, as ``time make`` does: attest reaps the launcher,
    which reaped the steps, before it exits."""
    write_pipeline(tmp_path, f"""
        steps:
          burn: {{run: {json.dumps(BURN)}}}
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTEST_", "OTEL_"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / ".xdg")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "--no-cache",
                             "--report", "report.json"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    step = json.loads((tmp_path / "report.json").read_text())["steps"][0]
    step_cpu = step["cpu_user_seconds"] + step["cpu_system_seconds"]
    assert step_cpu >= 0.3
    # attest's own CPU comes on top of the step's: without the reaping it was attest's alone
    assert usage.ru_utime + usage.ru_stime > step_cpu


def test_a_step_too_big_for_one_request_is_spawned_by_attest(tmp_path: Path) -> None:
    launcher = start_launcher()
    assert launcher is not None
    try:
        env = {"PATH": os.environ["PATH"], **{f"BIG{i}": "x" * 60_000 for i in range(4)}}
        outcome = run_command("test ${#BIG3} -eq 60000", cwd=tmp_path, env=env,
                              log_path=tmp_path / "h.log", timeout=None,
                              registry=ProcessRegistry(), launcher=launcher)
        assert outcome.exit_code == 0
        assert outcome.max_rss_floor_bytes == pytest.approx(own_peak_rss(), rel=0.1)
        assert launcher.usable  # the next step goes through the launcher again
        small = run_command("true", cwd=tmp_path, env={}, log_path=tmp_path / "t.log",
                            timeout=None, registry=ProcessRegistry(), launcher=launcher)
        assert small.max_rss_bytes < 10 * MiB
    finally:
        launcher.close()
