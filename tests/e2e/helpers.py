"""Helpers of the subprocess tests: start ``attest run``, signal it, read its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support import wait_for


def last_report(project: Path) -> dict:
    runs = sorted((project / ".attest" / "runs").glob("*.json"))
    assert runs, "no run report written"
    return json.loads(runs[-1].read_text())


def steps_by_name(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["steps"]}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def start_run(project: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    full_env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "attest_cli", "run", *args], cwd=project,
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def signal_when(proc: subprocess.Popen[str], ready: Callable[[], bool], sig: int,
                settle: float = 0.0) -> tuple[str, float]:
    """Once ``ready()`` (within 30 s), send ``sig``; return stderr and the seconds until
    the process exited. The process never outlives the call."""
    try:
        assert wait_for(ready, 30), "the process never reached the point to signal"
        time.sleep(settle)
        t0 = time.monotonic()
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
        return err, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
