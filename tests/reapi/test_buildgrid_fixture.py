"""The BuildGrid + bot fixture itself, driven by BuildGrid's own client (``bgd execute``).

If these fail, the attest remote-execution tests cannot be trusted either way."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.reapi.buildgrid_server import KEEPALIVE_S, BuildGrid, _bgd, grid, postgres, start_bot
from tests.support import wait_for

__all__ = ["grid", "postgres"]  # fixtures


def bgd_execute(grid: BuildGrid, root: Path, script: str, out: Path,
                *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bgd(), "execute", "--remote", f"http://{grid.target}", "command",
         "--output-file", "out.txt", "--output-directory", str(out), *extra,
         str(root), "--", "/bin/sh", "-c", script],
        capture_output=True, text=True, timeout=60)


def execute_hello(grid: BuildGrid, tmp_path: Path) -> tuple[
        subprocess.CompletedProcess[str], Path]:
    """Run a command copying an input and naming its worker; the output file it brings."""
    root = tmp_path / "in"
    root.mkdir()
    (root / "src.txt").write_text("hello\n")
    done = bgd_execute(grid, root, 'cat src.txt > out.txt; echo "$WORKER_ID" >> out.txt',
                       tmp_path / "got")
    return done, tmp_path / "got" / "out.txt"


def test_bot_runs_a_lease_with_its_own_worker_id(grid: BuildGrid, tmp_path: Path) -> None:
    bot = start_bot(grid, "bot-a")
    done, out = execute_hello(grid, tmp_path)
    assert done.returncode == 0, done.stderr + grid.log()
    assert out.read_text() == "hello\nbot-a\n"
    assert [row[2] for row in bot.leases()] == ["bot-a"]


def test_killed_bot_lease_is_requeued_to_the_other_bot(grid: BuildGrid,
                                                        tmp_path: Path) -> None:
    slow = start_bot(grid, "bot-slow")
    root = tmp_path / "in"
    root.mkdir()
    proc = subprocess.Popen(
        [_bgd(), "execute", "--remote", f"http://{grid.target}", "command",
         "--output-file", "out.txt", "--output-directory", str(tmp_path / "got"), str(root),
         "--", "/bin/sh", "-c", 'sleep 3; echo "$WORKER_ID" > out.txt'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: bool(slow.leases()), 30), grid.log()
        slow.kill()
        start_bot(grid, "bot-other")
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    assert (tmp_path / "got" / "out.txt").read_text() == "bot-other\n"


def test_a_starved_bot_opens_a_new_session_and_serves_again(grid: BuildGrid,
                                                            tmp_path: Path) -> None:
    """A bot silent past BuildGrid's keepalive (a loaded CI machine starves it) loses its
    session; it must open a new one, not die: a run would then wait for it forever (this
    hung a CI run of test_do_not_cache_runs_again_on_a_worker for 120 s)."""
    bot = start_bot(grid, "bot-s")
    log = grid.root / "bot-s.log"
    assert wait_for(lambda: log.exists() and "bot: session" in log.read_text(), timeout=30)
    os.killpg(bot.proc.pid, signal.SIGSTOP)
    time.sleep(2 * KEEPALIVE_S + 2)  # well past the keepalive: the server drops the session
    os.killpg(bot.proc.pid, signal.SIGCONT)
    done, out = execute_hello(grid, tmp_path)
    assert done.returncode == 0, done.stderr + log.read_text()
    assert out.read_text() == "hello\nbot-s\n"
    assert bot.proc.poll() is None and "lost" in log.read_text(), log.read_text()
