"""Tiny timing helpers shared by the benchmark scripts (median of repeated wall times)."""

from __future__ import annotations

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
