"""Tiny helpers shared by the benchmark scripts: median wall times, loopback ports."""

from __future__ import annotations

import compileall
import socket
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def median_seconds(cmd: Sequence[str], *, runs: int = 7, warmup: int = 1, cwd: Path | None = None,
                   env: dict[str, str] | None = None) -> float:
    """Median wall time of ``cmd`` (output discarded; a failing command raises)."""
    for _ in range(warmup):
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


REPO = Path(__file__).resolve().parent.parent


def compile_attest() -> None:
    """Write the bytecode of this checkout's attest now, as an installed package has it.

    With ``PYTHONDONTWRITEBYTECODE`` set (this project's own environment sets it), a module
    edited since its ``.pyc`` was written is compiled again by every run: the scheduler's
    ~6 ms, in every figure. ``compileall`` writes the files whatever that variable says;
    the scripts also run attest without the variable, so that a warm-up writes the
    bytecode of another attest named by ``--attest`` or ``PYTHONPATH``."""
    compileall.compile_dir(REPO / "attest_cli", quiet=1)


def free_port() -> int:
    """A free TCP port on the loopback interface (the benchmarks' servers never bind wider)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Return once something listens on ``127.0.0.1:port``; exit the script after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")
