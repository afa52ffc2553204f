"""Where a run's wall time goes across the CPUs: `perf sched` of one command, summarised.

The scale benchmark says how long a run takes; this says why it takes that long on a
machine with few cores. It records one run with ``perf sched record`` (the scheduler's
tracepoints: no sampling, every switch) and reports, for the window between the first
command the run starts and the last one's exit:

- how long each process was on a CPU (attest, its launcher, the commands), and how long
  the CPUs were idle: a run whose window is busy is bound by CPU, one whose window is idle
  by hand-overs between processes;
- how many commands were alive at once, over time (at ``-j2``, how much of the window had
  both slots filled);
- where the kernel placed each command at its fork: on the CPU of the process that
  spawned it, or on another one, and how long it waited for its first run there.
  ``posix_spawn`` is vfork: the spawner waits for that first run and the exec.

The commands are the children of the process that forked the most (attest's launcher, or
make). Figures are per trace, and ``perf`` costs some time of its own: compare runs
recorded the same way, not these figures with the scale benchmark's.

Run: ``.venv/bin/python benchmarks/sched_profile.py [--cwd DIR] -- COMMAND...``, e.g.
``--cwd /tmp/fan200 -- .venv/bin/attest -q run -j2 --no-cache``. Needs ``perf`` with
access to the sched tracepoints (root, or ``kernel.perf_event_paranoid`` <= 1); without
it the script says so and exits 2.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_SWITCH = re.compile(r"\[(\d+)\]\s+(\d+\.\d+):\s+sched:sched_switch:\s+prev_comm=(.*?) "
                     r"prev_pid=(\d+) .*?prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")
_FORK = re.compile(r"\[(\d+)\]\s+(\d+\.\d+):\s+sched:sched_process_fork:\s+comm=(.*?) "
                   r"pid=(\d+) child_comm=.*? child_pid=(\d+)")


@dataclass
class Trace:
    """The switches and forks of one recording, in time order."""

    ncpu: int = 0
    start: float = float("inf")
    end: float = 0.0
    forks: dict[int, tuple[float, int, int]] = field(default_factory=dict)  # pid: t, cpu, parent
    names: dict[int, str] = field(default_factory=dict)
    # per CPU: (from, to, pid) slices; pid 0 is idle
    slices: list[tuple[int, float, float, int]] = field(default_factory=list)
    first_run: dict[int, tuple[float, int]] = field(default_factory=dict)
    exits: dict[int, float] = field(default_factory=dict)


def record(cmd: list[str], cwd: Path, data: Path) -> None:
    proc = subprocess.run(["perf", "sched", "record", "-o", str(data), "--", *cmd], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not data.exists():
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"sched_profile: perf sched record failed: {tail[0]}")


def parse(data: Path) -> Trace:
    return parse_script(subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "cpu,time,event,trace"],
        capture_output=True, text=True, check=True).stdout)


def parse_script(script: str) -> Trace:
    """The switches and forks in ``perf script -F cpu,time,event,trace`` output."""
    trace = Trace()
    since: dict[int, tuple[float, int]] = {}  # cpu: (when the running task went on, its pid)
    for line in script.splitlines():
        if (m := _SWITCH.search(line)) is not None:
            cpu, t = int(m.group(1)), float(m.group(2))
            prev, state, nxt = int(m.group(4)), m.group(5), int(m.group(7))
            trace.ncpu = max(trace.ncpu, cpu + 1)
            trace.start, trace.end = min(trace.start, t), max(trace.end, t)
            if cpu in since:
                on, pid = since[cpu]
                trace.slices.append((cpu, on, t, pid))
            since[cpu] = (t, nxt)
            trace.names.setdefault(prev, m.group(3))
            trace.names[nxt] = m.group(6)
            if nxt not in trace.first_run:
                trace.first_run[nxt] = (t, cpu)
            if state.startswith(("X", "Z")):
                trace.exits[prev] = t
        elif (m := _FORK.search(line)) is not None:
            child = int(m.group(5))
            trace.forks[child] = (float(m.group(2)), int(m.group(1)), int(m.group(4)))
    return trace


def summarise(trace: Trace) -> list[str]:
    parents = Counter(parent for _, _, parent in trace.forks.values())
    if not parents:
        return ["no process forked another: nothing to summarise"]
    spawner, _ = parents.most_common(1)[0]
    kids = [p for p, (_, _, parent) in trace.forks.items()
            if parent == spawner and p in trace.exits]
    if not kids:
        return ["the commands never exited within the trace"]
    lo = min(trace.forks[p][0] for p in kids)
    hi = max(trace.exits[p] for p in kids)
    span = hi - lo
    busy: dict[str, float] = {}
    idle = 0.0
    for _cpu, a, b, pid in trace.slices:
        overlap = max(0.0, min(b, hi) - max(a, lo))
        if not overlap:
            continue
        if pid == 0:
            idle += overlap
        else:
            who = "commands" if pid in kids else f"{trace.names.get(pid, '?')}[{pid}]"
            busy[who] = busy.get(who, 0.0) + overlap
    lines = [f"commands: {len(kids)}, spawned by {trace.names.get(spawner, '?')}[{spawner}]",
             f"window (first spawn to last exit): {span * 1e3:.1f} ms of "
             f"{(trace.end - trace.start) * 1e3:.1f} ms traced; {trace.ncpu} CPUs",
             f"  idle: {idle * 1e3:.1f} ms, {idle / (span * trace.ncpu) * 100:.1f}% of the "
             f"CPUs' time"]
    for who, t in sorted(busy.items(), key=lambda kv: -kv[1])[:6]:
        lines.append(f"  on a CPU: {who:<24} {t * 1e3:8.1f} ms ({t / len(kids) * 1e3:.3f} ms "
                     "a command)")
    events = sorted([(trace.forks[p][0], 1) for p in kids] + [(trace.exits[p], -1) for p in kids])
    alive: dict[int, float] = {}
    now, at = 0, events[0][0]
    for when, d in events:
        alive[now] = alive.get(now, 0.0) + when - at
        now, at = now + d, when
    shares = ", ".join(f"{n}: {t / span * 100:.0f}%" for n, t in sorted(alive.items()))
    lines.append(f"commands alive at once, share of the window: {shares}")
    placed = [p for p in kids if p in trace.first_run]
    same = [p for p in placed if trace.first_run[p][1] == trace.forks[p][1]]
    other = [p for p in placed if trace.first_run[p][1] != trace.forks[p][1]]

    def wait(ps: list[int]) -> str:
        if not ps:
            return "-"
        waited = statistics.median(trace.first_run[p][0] - trace.forks[p][0] for p in ps)
        return f"{waited * 1e3:.3f} ms"

    lines.append(f"first run on the spawner's CPU: {len(same)} (median wait {wait(same)}); "
                 f"on another: {len(other)} (median wait {wait(other)})")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cwd", type=Path, default=Path.cwd(), help="where to run the command")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...")
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("give the command to record after --")
    if shutil.which("perf") is None:
        print("sched_profile: perf is not installed (Debian: linux-perf)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sched.data"
        record(cmd, args.cwd, data)
        print("\n".join(summarise(parse(data))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
