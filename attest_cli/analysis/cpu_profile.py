"""The answer a CPU profile gives: where attest's sampled time went, by function."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

STEP_THREAD_PREFIX = "attest-step-"  # how the scheduler names each step's worker thread
# Leaves where a step's worker thread only waits: for the step's process, or for a lock
# ("poll.poll": a select.poll object's poll, as pyinstrument names the method).
WAITING = {"wait4", "waitpid", "lock.acquire", "sleep", "select", "poll", "poll.poll"}
IDENTIFIER_SEP = "\x00"  # pyinstrument's frame_info: function NUL file NUL line [SOH attrs]
ATTRIBUTES_SEP = "\x01"


@dataclass
class FunctionCost:
    function: str
    file: str
    line: int | None
    self_seconds: float
    total_seconds: float
    share: float  # self time over all sampled time (every thread)


@dataclass
class StepWork:
    """attest's own work for one step, from its worker thread's samples."""

    step: str
    thread_seconds: float  # everything sampled in the step's worker thread
    attest_seconds: float  # minus waiting for the step's process (cache, spawn, hashing...)
    top_function: str  # where most of attest_seconds went


@dataclass
class CpuSummary:
    duration_seconds: float  # wall time of the main thread's recording
    sampled_seconds: float  # summed over every recorded thread
    samples: int
    threads: list[str]
    cpu_seconds: float
    interval: float
    hottest: list[FunctionCost]
    per_step: list[StepWork]  # most attest work first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _split(frame_info: str) -> tuple[str, str, int | None]:
    ident = frame_info.split(ATTRIBUTES_SEP, 1)[0]
    parts = ident.split(IDENTIFIER_SEP)
    function = parts[0]
    file = parts[1] if len(parts) > 1 else ""
    try:
        line = int(parts[2]) if len(parts) > 2 else None
    except ValueError:
        line = None
    return function, file, line


def summarize(session: Any, *, top: int = 15, wall: float | None = None) -> CpuSummary:
    """Self and total time per function, from the raw samples (threads as tree roots)."""
    self_time: dict[tuple[str, str, int | None], float] = defaultdict(float)
    total_time: dict[tuple[str, str, int | None], float] = defaultdict(float)
    threads: list[str] = []
    sampled = 0.0
    step_total: dict[str, float] = defaultdict(float)
    step_busy: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for stack, seconds in session.frame_records:
        sampled += seconds
        frames = [_split(info) for info in stack]
        thread = ""
        if frames and frames[0][1] == "<thread>":
            thread = frames[0][0]
            if thread not in threads:
                threads.append(thread)
            frames = frames[1:]
        if not frames:
            continue
        self_time[frames[-1]] += seconds
        if thread.startswith(STEP_THREAD_PREFIX):
            step = thread[len(STEP_THREAD_PREFIX):]
            step_total[step] += seconds
            if frames[-1][0] not in WAITING:
                step_busy[step][frames[-1][0]] += seconds
        for key in set(frames):
            total_time[key] += seconds
    ranked = sorted(self_time.items(), key=lambda kv: (-kv[1], kv[0][0]))[:top]
    hottest = [FunctionCost(function=f, file=session.shorten_path(file) if file else file,
                            line=line, self_seconds=round(sec, 6),
                            total_seconds=round(total_time[(f, file, line)], 6),
                            share=round(sec / sampled, 4) if sampled else 0.0)
               for (f, file, line), sec in ranked]
    per_step = [StepWork(step=step, thread_seconds=round(total, 6),
                         attest_seconds=round(sum(step_busy[step].values()), 6),
                         top_function=max(step_busy[step].items(), key=lambda kv: kv[1])[0]
                         if step_busy[step] else "")
                for step, total in step_total.items()]
    per_step.sort(key=lambda w: (-w.attest_seconds, w.step))
    return CpuSummary(duration_seconds=round(wall if wall is not None else session.duration, 6),
                      sampled_seconds=round(sampled, 6), samples=int(session.sample_count),
                      threads=threads, cpu_seconds=round(float(session.cpu_time or 0), 6),
                      interval=float(session.min_interval), hottest=hottest,
                      per_step=per_step)
