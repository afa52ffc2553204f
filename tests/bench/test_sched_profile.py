"""benchmarks/sched_profile.py reads `perf script` right: a synthetic trace, known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import sched_profile

pytestmark = pytest.mark.unit


def switch(cpu: int, t: float, prev: tuple[str, int], state: str, nxt: tuple[str, int]) -> str:
    return (f"[{cpu:03d}] {t:.6f}: sched:sched_switch: prev_comm={prev[0]} prev_pid={prev[1]} "
            f"prev_prio=120 prev_state={state} ==> next_comm={nxt[0]} next_pid={nxt[1]} "
            "next_prio=120")


def fork(cpu: int, t: float, parent: int, child: int) -> str:
    return (f"[{cpu:03d}] {t:.6f}: sched:sched_process_fork: comm=launcher pid={parent} "
            f"child_comm=launcher child_pid={child}")


IDLE, L, A, B = ("swapper/0", 0), ("launcher", 10), ("true", 11), ("true", 12)
TRACE = "\n".join([
    switch(0, 1.000, IDLE, "R", L),
    switch(1, 1.000, ("swapper/1", 0), "R", ("swapper/1", 0)),
    fork(0, 1.001, 10, 11),            # runs on the spawner's CPU after 1 ms
    switch(0, 1.002, L, "S", A),
    fork(0, 1.003, 10, 12),            # not yet: the launcher is off CPU 0; see below
    switch(0, 1.004, A, "Z", L),       # A ran 2 ms and exited
    switch(1, 1.006, ("swapper/1", 0), "R", B),  # B on the other CPU, 3 ms after its fork
    switch(0, 1.006, L, "S", IDLE),
    switch(1, 1.010, B, "Z", ("swapper/1", 0)),  # B ran 4 ms
    switch(0, 1.010, IDLE, "R", L),
])


def test_a_synthetic_trace_gives_its_known_figures() -> None:
    trace = sched_profile.parse_script(TRACE)
    assert trace.ncpu == 2 and trace.forks[12] == (1.003, 0, 10)
    lines = sched_profile.summarise(trace)
    text = "\n".join(" ".join(line.split()) for line in lines)  # spacing aside
    assert "commands: 2, spawned by launcher[10]" in text
    assert "window (first spawn to last exit): 9.0 ms" in text
    # window 1.001-1.010 on 2 CPUs: CPU 1 idle 1.001-1.006, CPU 0 idle 1.006-1.010
    assert "idle: 9.0 ms, 50.0% of the CPUs' time" in text
    assert "on a CPU: commands 6.0 ms (3.000 ms a command)" in text
    assert "on a CPU: launcher[10] 3.0 ms (1.500 ms a command)" in text
    # one alive 1.001-1.003 and 1.004-1.010 (8 ms), two 1.003-1.004 (1 ms)
    assert "commands alive at once, share of the window: 0: 0%, 1: 89%, 2: 11%" in text
    assert ("first run on the spawner's CPU: 1 (median wait 1.000 ms); on another: 1 "
            "(median wait 3.000 ms)") in text
