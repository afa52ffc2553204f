"""attest at scale against make, ninja and doit — whole processes, as a user runs them (issue 14).

Every figure is the wall time of a complete process started with ``subprocess`` (interpreter
start-up, configuration, the run, the exit flush), never an in-process timer. The variants of
a workload are run in interleaved rounds (A B C, C B A, A B C, ...) after untimed warm-up
rounds, so that drift of the machine lands on every side; each figure is the median of
``--repeat`` rounds. Ratios are attest ÷ peer: below 1 attest is faster.

Workloads (``--only`` takes a comma-separated list of these names):

- ``noop``: N independent steps, each copying one input file to one output file
  (``cp src/fI.txt out/fI.txt``), for each N of ``--sizes`` (10, 100, 1000, 5000); the same
  graph as a Makefile, a build.ninja and a dodo.py, each tool in its own copy of the tree with
  its defaults. Everything is built, the outputs are left to settle for 2 s (attest's
  up-to-date check trusts a file's signature only after that), then the *no-op re-run* is
  timed. Shown: time, time per step, attest ÷ peer, and the growth factor between the two
  largest sizes (linear = their size ratio). A warm-up run is checked to be a real no-op
  for every tool.
- ``cold``: the same 1,000-step graph built from nothing (outputs, ``.attest``, ``.doit.db``,
  ``.ninja_log`` removed before every run, untimed) with ``attest run -j2``, ``make -j2``,
  ``doit -n 2`` and ``ninja -j2``.
- ``chain``: 200 steps of ``true``, each needing the previous one (attest ``-j1 --no-cache``,
  make phony targets, ninja edges whose outputs never exist); per-step overhead
  = (t(200) − t(1)) / 199, which removes each tool's start-up.
- ``fanout``: 200 independent steps (``--fanout-cmd``, default ``true``) at ``-j2`` and ``-j1``,
  attest ``--no-cache``, make (phony targets), ninja (edges whose outputs never exist) and
  doit (``uptodate: [False]``, ``-n``): the speed-up ratio t(-j2) ÷ t(-j1) of each tool. A
  note splits attest's time, from its run reports, into the steps' window and the rest.
  For ``cold`` and ``fanout`` a note gives each side's CPU per step (user + system of the
  whole process tree, from ``wait4``) and the cores it kept busy (CPU ÷ wall).
- ``hashing``: 10,000 files × 25 KB. Cold: ``attest run`` of a step with ``inputs:
  [data/**]`` in a fresh workspace minus the same run of a step without inputs (the
  start-up), against one ``b3sum --no-names`` process given every file. No change: the same
  two runs with the cache and stat index warm, the difference against ``git status
  --porcelain`` in the same tree (committed, index fresh).
- ``tracing``: a 200-step chain of ``true`` (``-j1 --no-cache``) with tracing off, on with the
  ``file`` exporter writing to an empty file, and on with a trace file that already holds
  ``--trace-runs`` runs (cut back to those runs before every run, untimed). Peak RSS of
  attest is shown.
- ``prometheus``: a cached ``noop`` pipeline of ``--prom-steps`` steps with the seed's
  ``monitoring.prometheus`` block (enabled, loopback port, ``/metrics``, namespace ``attest``,
  in ``.attest/config.yaml``) against the same pipeline without it.

A missing peer tool is a column of ``n/a`` with the reason below the table, not a failure.
Everything is built under a temporary directory, one fresh attest workspace per workload,
``XDG_CONFIG_HOME`` pointing inside it and ``ATTEST_*``/``OTEL_*``/``MAKEFLAGS`` removed from
the environment, so no user configuration leaks in.

Run (full scale takes a while and wants a quiet machine)::

    .venv/bin/python benchmarks/scale.py                      # everything, 5 rounds
    .venv/bin/python benchmarks/scale.py --quick              # smoke test: small sizes, 2 rounds
    .venv/bin/python benchmarks/scale.py --only noop,cold --sizes 10,1000 --repeat 9 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _timing import compile_attest  # this script's own directory

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ("noop", "cold", "chain", "fanout", "hashing", "tracing", "prometheus")
PEERS = ("make", "ninja", "doit")
RACY_SECONDS = 2.1  # attest_cli.cache.statindex.RACY_SECONDS (2.0 s), and a margin


# --- running and timing whole processes -------------------------------------------------------

class CommandFailed(RuntimeError):
    """A measured command exited non-zero: the benchmark would measure the wrong thing."""


@dataclass
class Sample:
    wall: float
    maxrss_kib: int
    # user + system CPU of the whole process tree (wait4: the children it waited for, and
    # theirs): what the run cost the machine, where ``wall`` is what the user waited
    cpu: float = 0.0


@dataclass
class Variant:
    """One side of a comparison: a command, where it runs, and untimed work before each run."""

    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    prepare: Callable[[], object] | None = None


def run_once(v: Variant) -> Sample:
    """Wall time, CPU and peak RSS (``wait4``) of one whole process; output discarded."""
    if v.prepare:
        v.prepare()
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(v.cmd, cwd=v.cwd, env=v.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-5:]
            shown = " ".join(v.cmd)
            shown = shown if len(shown) <= 200 else shown[:200] + " ..."
            raise CommandFailed(f"`{shown}` in {v.cwd} exited {proc.returncode}: "
                                + " | ".join(tail))
    return Sample(wall, int(usage.ru_maxrss), usage.ru_utime + usage.ru_stime)


def interleaved(variants: dict[str, Variant], repeat: int, warmup: int,
                after_warmup: Callable[[], None] | None = None) -> dict[str, list[Sample]]:
    """``warmup`` untimed rounds, then ``repeat`` rounds alternating the order (ABC, CBA...)."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            run_once(variants[name])
    if after_warmup:
        after_warmup()
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for r in range(repeat):
        for name in (names if r % 2 == 0 else names[::-1]):
            samples[name].append(run_once(variants[name]))
            progress(".")
    progress("\n")
    return samples


def med(samples: Sequence[Sample]) -> float:
    return statistics.median(s.wall for s in samples)


def cpu_note(label: str, samples: dict[str, list[Sample]], names: Sequence[str],
             per: int) -> str:
    """Where the wall time goes: each side's CPU (whole process tree, median) per step and
    how many cores it kept busy. Two tools at one utilisation differ by their CPU; a gap
    the CPU does not explain is waiting (context switches, hand-offs, I/O)."""
    parts = []
    for name in names:
        if name in samples:
            cpu = statistics.median(x.cpu for x in samples[name])
            parts.append(f"{name} {cpu * 1000 / per:.2f} ms/step on "
                         f"{cpu / med(samples[name]):.2f} cores")
    return f"{label} CPU: " + ", ".join(parts)


def steps_window(root: Path, samples: dict[str, list[Sample]], jobs: int) -> str | None:
    """Split attest's fan-out time in two, from its run reports: the window from the first
    step's start to the last step's end, and the rest of the whole-process time (start-up,
    loading, the run's records, exit), which does not shrink with ``-j``. A diagnostic
    beside the whole-process row, not a figure of its own: the window is attest's reading."""
    windows: dict[int, list[float]] = {1: [], jobs: []}
    for path in (root / ".attest" / "runs").glob("*.json"):
        try:
            rep = json.loads(path.read_text())
            steps = rep["steps"]
            first = min(x["started_at"] for x in steps)
            last = max(x["started_at"] + x["wall_seconds"] for x in steps)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if rep.get("parallel") in windows:
            windows[rep["parallel"]].append(last - first)
    if not windows[1] or not windows[jobs] or "attest-j1" not in samples:
        return None
    w1, wj = statistics.median(windows[1]), statistics.median(windows[jobs])
    fixed1 = med(samples["attest-j1"]) - w1
    fixedj = med(samples[f"attest-j{jobs}"]) - wj
    return (f"fan-out, attest's steps window (its run reports): -j1 {fmt_s(w1)}, -j{jobs} "
            f"{fmt_s(wj)} ({wj / w1:.2f}×); outside it (start-up, records, exit) "
            f"{fmt_s(fixed1)} and {fmt_s(fixedj)}")


def progress(text: str) -> None:
    print(text, end="", file=sys.stderr, flush=True)


# --- the table ---------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the table; cells are pre-formatted, ``data`` goes to --json as numbers."""

    workload: str
    figure: str
    attest: str
    peers: dict[str, str] = field(default_factory=dict)
    ref: str = ""
    ratio: str = ""
    goal: str = ""
    met: bool | None = None
    data: dict[str, object] = field(default_factory=dict)


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if abs(seconds) < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if abs(seconds) < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_x(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}×"


def div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def print_table(rows: list[Row], notes: list[str]) -> None:
    head = ["figure", "attest", *PEERS, "reference", "ratio", "goal", "met"]
    body = [[r.figure, r.attest, *(r.peers.get(p, "") for p in PEERS), r.ref, r.ratio, r.goal,
             {True: "yes", False: "NO", None: "-"}[r.met]] for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in body:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    for note in notes:
        print(f"  note: {note}")


# --- the tools ---------------------------------------------------------------------------------

@dataclass
class Tools:
    attest: str
    make: str | None
    ninja: str | None
    doit: str | None
    b3sum: str | None
    git: str | None
    missing: dict[str, str]

    def peer(self, name: str) -> str | None:
        path: str | None = getattr(self, name)
        return path


def find_tools(attest: str | None) -> Tools:
    missing: dict[str, str] = {}
    venv_attest = REPO / ".venv" / "bin" / "attest"
    found_attest = attest or (str(venv_attest) if venv_attest.exists() else shutil.which("attest"))
    if not found_attest:
        sys.exit("attest not found: create the venv (make) or pass --attest PATH")
    ninja = "/usr/bin/ninja" if Path("/usr/bin/ninja").exists() else shutil.which("ninja")
    doit_beside = Path(sys.executable).parent / "doit"
    doit = str(doit_beside) if doit_beside.exists() else shutil.which("doit")
    tools = Tools(found_attest, shutil.which("make"), ninja, doit, shutil.which("b3sum"),
                  shutil.which("git"), missing)
    for name, why in (("make", "make is not installed"), ("ninja", "ninja is not installed"),
                      ("doit", "doit is not installed (pip install -c constraints.txt "
                               "-e '.[dev,bench]')"),
                      ("b3sum", "b3sum is not installed"), ("git", "git is not installed")):
        if getattr(tools, name) is None:
            missing[name] = why
    return tools


def clean_env(root: Path) -> dict[str, str]:
    """The caller's environment without anything that configures attest or the peers."""
    drop = ("ATTEST_", "OTEL_", "TRACEPARENT", "TRACESTATE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
            "GNUMAKEFLAGS", "NINJA_STATUS", "DOIT_")
    # the warm-up rounds write the bytecode of whatever attest the command imports (a
    # checkout named by PYTHONPATH too, which stays), as an installed package has it
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop) and k != "PYTHONDONTWRITEBYTECODE"}
    (root / ".xdg").mkdir(parents=True, exist_ok=True)
    env["XDG_CONFIG_HOME"] = str(root / ".xdg")
    return env


# --- generated projects ------------------------------------------------------------------------

def write_copy_project(root: Path, n: int, tool: str) -> None:
    """N independent steps, one input and one output each, in ``tool``'s own format."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    old = time.time() - 3600  # older than any racy-timestamp window, as a checkout would be
    for i in range(n):
        p = root / "src" / f"f{i}.txt"
        p.write_text(f"input {i}\n")
        os.utime(p, (old, old))
    if tool == "attest":
        lines = ['version: "0.1"', "name: scale", "steps:"]
        for i in range(n):
            lines += [f"  s{i}:", f"    run: cp src/f{i}.txt out/f{i}.txt",
                      f"    inputs: [src/f{i}.txt]", f"    outputs: [out/f{i}.txt]"]
        (root / "attest.yaml").write_text("\n".join(lines) + "\n")
    elif tool == "make":
        mk = [".PHONY: all", "all: " + " ".join(f"out/f{i}.txt" for i in range(n))]
        mk += [f"out/f{i}.txt: src/f{i}.txt\n\tcp src/f{i}.txt out/f{i}.txt" for i in range(n)]
        (root / "Makefile").write_text("\n".join(mk) + "\n")
    elif tool == "ninja":
        nj = ["rule cp", "  command = cp $in $out"]
        nj += [f"build out/f{i}.txt: cp src/f{i}.txt" for i in range(n)]
        (root / "build.ninja").write_text("\n".join(nj) + "\n")
    elif tool == "doit":
        (root / "dodo.py").write_text(
            "def task_s():\n"
            f"    for i in range({n}):\n"
            "        yield {'name': str(i), 'actions': [f'cp src/f{i}.txt out/f{i}.txt'],\n"
            "               'file_dep': [f'src/f{i}.txt'], 'targets': [f'out/f{i}.txt']}\n")


def write_true_project(root: Path, n: int, tool: str, *, chain: bool, cmd: str = "true",
                       extra_yaml: str = "") -> None:
    """N steps of ``cmd`` (a chain, or independent), always executed by every tool."""
    root.mkdir(parents=True, exist_ok=True)
    if tool == "attest":
        lines = ['version: "0.1"', "name: scale", "steps:"]
        for i in range(n):
            lines += [f"  s{i}:", f"    run: {json.dumps(cmd)}"]
            if chain and i:
                lines.append(f"    needs: [s{i - 1}]")
        (root / "attest.yaml").write_text("\n".join(lines) + "\n" + extra_yaml)
    elif tool == "make":
        names = " ".join(f"s{i}" for i in range(n))
        mk = [f".PHONY: all {names}", f"all: {names}"]
        mk += [f"s{i}:{f' s{i - 1}' if chain and i else ''}\n\t@{cmd}" for i in range(n)]
        (root / "Makefile").write_text("\n".join(mk) + "\n")
    elif tool == "ninja":
        # outputs that are never created: every edge runs on every invocation
        nj = ["rule run", f"  command = {cmd}"]
        nj += [f"build s{i}: run{f' | s{i - 1}' if chain and i else ''}" for i in range(n)]
        nj.append("default " + " ".join(f"s{i}" for i in range(n)))
        (root / "build.ninja").write_text("\n".join(nj) + "\n")
    elif tool == "doit":
        # never up to date: every task runs on every invocation, as the phony targets do
        dep = "[f's:s{i - 1}'] if i else []" if chain else "[]"
        (root / "dodo.py").write_text(
            "DOIT_CONFIG = {'verbosity': 0}\n"
            "def task_s():\n"
            f"    for i in range({n}):\n"
            f"        yield {{'name': f's{{i}}', 'actions': [{cmd!r}], 'uptodate': [False],\n"
            f"               'task_dep': {dep}}}\n")


def newest_report(root: Path) -> dict[str, object]:
    reports = sorted((root / ".attest" / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not reports:
        raise CommandFailed(f"no run report under {root}/.attest/runs")
    data: dict[str, object] = json.loads(reports[-1].read_text())
    return data


def check_attest_noop(root: Path) -> None:
    rep = newest_report(root)
    if rep.get("status") != "success" or rep.get("cache_hit_rate") != 1.0:
        raise CommandFailed(f"attest's warm-up re-run in {root} was not a no-op "
                            f"(status {rep.get('status')}, hit rate {rep.get('cache_hit_rate')})")


def check_peer_noop(tool: str, cmd: list[str], root: Path, env: dict[str, str]) -> None:
    """Fail loudly when a peer would rebuild: its figure would not be a no-op."""
    if tool == "make":
        ok = subprocess.run([cmd[0], "-q"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL).returncode == 0
    elif tool == "ninja":
        out = subprocess.run([cmd[0], "-n"], cwd=root, env=env, capture_output=True, text=True)
        ok = "no work to do" in out.stdout
    else:
        out = subprocess.run([*cmd[:-2], "list", "--status", "--all"], cwd=root, env=env,
                             capture_output=True, text=True)
        ok = out.returncode == 0 and all(line.startswith("U ") or not line.strip()
                                         or line.startswith("R s ")
                                         for line in out.stdout.splitlines())
    if not ok:
        raise CommandFailed(f"{tool}'s warm-up re-run in {root} was not a no-op")


# --- the workloads ------------------------------------------------------------------------------

@dataclass
class Bench:
    tools: Tools
    base: Path
    repeat: int
    warmup: int
    args: argparse.Namespace
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def workspace(self, name: str) -> Path:
        root = self.base / name
        root.mkdir(parents=True)
        return root

    def peer_cmd(self, tool: str, jobs: int | None = None) -> list[str] | None:
        path = self.tools.peer(tool)
        if path is None:
            return None
        if tool == "make":
            return [path, "-s", *([f"-j{jobs}"] if jobs else [])]
        if tool == "ninja":
            return [path, *([f"-j{jobs}"] if jobs else [])]
        return [path, *(["-n", str(jobs)] if jobs else []), "-f", "dodo.py"]

    def attest_cmd(self, *args: str) -> list[str]:
        return [self.tools.attest, "-q", "run", *args]

    def na(self, tool: str) -> str:
        return "n/a" if self.tools.peer(tool) is None else ""

    # no-op re-runs -------------------------------------------------------------------------
    def noop(self) -> None:
        sizes: list[int] = self.args.sizes
        times: dict[int, dict[str, float | None]] = {}
        for n in sizes:
            progress(f"noop {n} steps ")
            root = self.workspace(f"noop-{n}")
            env = clean_env(root)
            variants: dict[str, Variant] = {}
            for tool in ("attest", *PEERS):
                cmd = self.attest_cmd() if tool == "attest" else self.peer_cmd(tool)
                if cmd is None:
                    continue
                write_copy_project(root / tool, n, tool)
                variants[tool] = Variant(cmd, root / tool, env)
                run_once(variants[tool])  # the first, building run
            # attest trusts a file's lstat signature for the up-to-date check only once the
            # file is RACY_SECONDS old (git's "racily clean" rule, docs/cache.md); a re-run
            # sooner after the writes takes the full lookup. The no-op measured here is the
            # one a developer sees, the outputs settled (the 10 and 100-step builds end well
            # within the window; the larger ones outlast it anyway).
            time.sleep(RACY_SECONDS)

            def checks(root: Path = root, variants: dict[str, Variant] = variants,
                       env: dict[str, str] = env) -> None:
                check_attest_noop(root / "attest")
                for tool, v in variants.items():
                    if tool != "attest":
                        check_peer_noop(tool, v.cmd, root / tool, env)

            s = interleaved(variants, self.repeat, self.warmup, checks)
            t = {tool: (med(s[tool]) if tool in s else None) for tool in ("attest", *PEERS)}
            times[n] = t
            ta = t["attest"]
            assert ta is not None
            goal, met = "", None
            if n == 5000:
                goal, met = "≤ 1.0× doit", bool(t["doit"] and ta <= 1.0 * t["doit"])
            elif n == 1000:
                goal, met = "≤ 1.5× doit", bool(t["doit"] and ta <= 1.5 * t["doit"])
            if goal and t["doit"] is None:
                met = None
            self.rows.append(Row(
                "noop", f"no-op re-run, {n} steps (1 in + 1 out each)", fmt_s(ta),
                {p: self.cell(t[p], ta) for p in PEERS}, f"{ta / n * 1000:.2f} ms/step",
                f"{fmt_x(div(ta, t['doit']))} doit", goal, met,
                {"steps": n, "seconds": t, "per_step_seconds": {k: div(v, n) for k, v in t.items()},
                 "samples": {k: [x.wall for x in v] for k, v in s.items()}}))
        if len(sizes) >= 2:
            a, b = sorted(sizes)[-2:]
            growth = {tool: div(times[b][tool], times[a][tool]) for tool in ("attest", *PEERS)}
            g, ta_a = growth["attest"], times[a]["attest"]
            assert g is not None and ta_a is not None
            linear = b / a
            # the issue's goal is stated for 1k -> 5k; other pairs are shown, not judged
            goal, met = ("≤ 5.0× (linear)", g <= 5.0) if (a, b) == (1000, 5000) else ("", None)
            self.rows.append(Row(
                "noop", f"no-op growth {a} → {b} steps (time ratio)", f"{g:.2f}×",
                {p: ("n/a" if growth[p] is None else f"{growth[p]:.2f}×") for p in PEERS},
                f"+{(g - 1) * ta_a / (b - a) * 1000:.2f} ms/added step",
                f"{g / linear:.2f} of linear ({linear:.1f}×)",
                goal, met,
                {"from": a, "to": b, "growth": growth, "linear": linear}))

    def cell(self, peer: float | None, attest: float) -> str:
        if peer is None:
            return "n/a"
        return f"{fmt_s(peer)} ({attest / peer:.2f}×)"

    # cold first build ----------------------------------------------------------------------
    def cold(self) -> None:
        n, jobs = self.args.cold_steps, self.args.jobs
        progress(f"cold {n} steps -j{jobs} ")
        root = self.workspace("cold")
        env = clean_env(root)
        state = {"attest": [".attest"], "make": [], "ninja": [".ninja_log", ".ninja_deps"],
                 "doit": [".doit.db", ".doit.db.db", ".doit.db.dat", ".doit.db.dir",
                          ".doit.db.bak"]}

        def reset(d: Path, names: list[str]) -> Callable[[], None]:
            def prepare() -> None:
                shutil.rmtree(d / "out", ignore_errors=True)
                (d / "out").mkdir()
                for name in names:
                    p = d / name
                    if p.is_dir():
                        shutil.rmtree(p)
                    elif p.exists():
                        p.unlink()
            return prepare

        variants: dict[str, Variant] = {}
        for tool in ("attest", *PEERS):
            cmd = self.attest_cmd("-j", str(jobs)) if tool == "attest" \
                else self.peer_cmd(tool, jobs)
            if cmd is None:
                continue
            write_copy_project(root / tool, n, tool)
            variants[tool] = Variant(cmd, root / tool, env, reset(root / tool, state[tool]))
        s = interleaved(variants, self.repeat, self.warmup)
        t = {tool: (med(s[tool]) if tool in s else None) for tool in ("attest", *PEERS)}
        ta = t["attest"]
        assert ta is not None
        self.notes.append(cpu_note("cold build", s, ("attest", *PEERS), n))
        self.rows.append(Row(
            "cold", f"cold first build, {n} steps, -j{jobs}", fmt_s(ta),
            {p: self.cell(t[p], ta) for p in PEERS}, "", f"{fmt_x(div(ta, t['make']))} make",
            "≤ 1.5× make", None if t["make"] is None else ta <= 1.5 * t["make"],
            {"steps": n, "jobs": jobs, "seconds": t,
             "samples": {k: [x.wall for x in v] for k, v in s.items()},
             "cpu_samples": {k: [x.cpu for x in v] for k, v in s.items()}}))

    # per-step overhead of a chain ----------------------------------------------------------
    def chain(self) -> None:
        n = self.args.chain_steps
        progress(f"chain {n} steps ")
        root = self.workspace("chain")
        env = clean_env(root)
        variants: dict[str, Variant] = {}
        for tool in ("attest", "make", "ninja"):
            cmd = self.attest_cmd("-j", "1", "--no-cache") if tool == "attest" \
                else self.peer_cmd(tool, 1)
            if cmd is None:
                continue
            for size in (n, 1):
                write_true_project(root / f"{tool}-{size}", size, tool, chain=True)
                variants[f"{tool}-{size}"] = Variant(cmd, root / f"{tool}-{size}", env)
        s = interleaved(variants, self.repeat, self.warmup)
        per: dict[str, float | None] = {}
        for tool in ("attest", *PEERS):
            if f"{tool}-{n}" in s:
                per[tool] = (med(s[f"{tool}-{n}"]) - med(s[f"{tool}-1"])) / (n - 1)
            else:
                per[tool] = None
        pa = per["attest"]
        assert pa is not None
        peers = {p: self.cell(per[p], pa) for p in ("make", "ninja")}
        peers["doit"] = "-"
        ratio = div(pa, per["make"])
        self.rows.append(Row(
            "chain", f"{n}-step chain of `true`, per-step overhead", fmt_s(pa), peers,
            f"attest {n} steps {fmt_s(med(s[f'attest-{n}']))}", f"{fmt_x(ratio)} make",
            "≤ 2× make (moonshot 1.3×)", None if ratio is None else ratio <= 2.0,
            {"steps": n, "per_step_seconds": per,
             "samples": {k: [x.wall for x in v] for k, v in s.items()}}))

    # parallel speed-up ---------------------------------------------------------------------
    def fanout(self) -> None:
        n, jobs, cmd = self.args.fanout_steps, self.args.jobs, self.args.fanout_cmd
        progress(f"fanout {n} steps ")
        root = self.workspace("fanout")
        env = clean_env(root)
        tools = ("attest", *PEERS)
        variants: dict[str, Variant] = {}
        for tool in tools:
            write_true_project(root / tool, n, tool, chain=False, cmd=cmd)
            for j in (1, jobs):
                c = self.attest_cmd("-j", str(j), "--no-cache") if tool == "attest" \
                    else self.peer_cmd(tool, j)
                if c is not None:
                    variants[f"{tool}-j{j}"] = Variant(c, root / tool, env)
        s = interleaved(variants, self.repeat, self.warmup)
        self.notes.append(cpu_note("fan-out", s, [f"{t}-j{j}" for t in tools
                                                  for j in (1, jobs)], n))
        window = steps_window(root / "attest", s, jobs)
        if window:
            self.notes.append(window)
        speed = {tool: div(med(s[f"{tool}-j{jobs}"]), med(s[f"{tool}-j1"]))
                 if f"{tool}-j1" in s else None for tool in tools}
        sa = speed["attest"]
        assert sa is not None
        self.rows.append(Row(
            "fanout", f"{n} independent `{cmd}` steps, -j{jobs} ÷ -j1", f"{sa:.2f}×",
            {p: "n/a" if speed[p] is None else f"{speed[p]:.2f}×" for p in PEERS},
            f"attest -j1 {fmt_s(med(s['attest-j1']))}",
            f"{sa:.2f}× ({abs(1 - sa) * 100:.0f}% {'faster' if sa <= 1 else 'slower'})",
            "≤ 0.65×", sa <= 0.65,
            {"steps": n, "jobs": jobs, "command": cmd, "speedup": speed,
             "samples": {k: [x.wall for x in v] for k, v in s.items()},
             "cpu_samples": {k: [x.cpu for x in v] for k, v in s.items()}}))

    # hashing many inputs -------------------------------------------------------------------
    def hashing(self) -> None:
        files, size = self.args.files, self.args.file_kb * 1024
        progress(f"hashing {files} × {self.args.file_kb} KB: creating ")
        root = self.workspace("hashing")
        env = clean_env(root)
        proj = root / "proj"
        chunk = os.urandom(size + 4096)
        old = time.time() - 3600
        rels = []
        for i in range(files):
            d = proj / "data" / f"d{i % 100:02d}"
            d.mkdir(parents=True, exist_ok=True)
            p = d / f"f{i:05d}.bin"
            p.write_bytes(i.to_bytes(4, "big") + chunk[i % 4096:i % 4096 + size - 4])
            os.utime(p, (old, old))
            rels.append(str(p.relative_to(proj)))
        (proj / "attest.yaml").write_text(
            'version: "0.1"\nname: hashing\nsteps:\n  digest:\n    run: "true"\n'
            '    inputs: ["data/**"]\n  bare:\n    run: "true"\n')
        (proj / ".gitignore").write_text(".attest/\n")

        def fresh() -> None:
            shutil.rmtree(proj / ".attest", ignore_errors=True)

        cold: dict[str, Variant] = {
            "digest": Variant(self.attest_cmd("--step", "digest"), proj, env, fresh),
            "bare": Variant(self.attest_cmd("--step", "bare"), proj, env, fresh)}
        if self.tools.b3sum:
            cold["b3sum"] = Variant([self.tools.b3sum, "--no-names", *rels], proj, env)
        progress("cold ")
        s = interleaved(cold, self.repeat, self.warmup)
        beyond = med(s["digest"]) - med(s["bare"])
        tb = med(s["b3sum"]) if "b3sum" in s else None
        ratio = div(beyond, tb)
        self.rows.append(Row(
            "hashing", f"cold hashing {files} × {self.args.file_kb} KB, run − start-up",
            fmt_s(beyond), {p: "-" for p in PEERS},
            f"b3sum {fmt_s(tb)}", f"{fmt_x(ratio)} b3sum", "≤ 1.0× b3sum",
            None if ratio is None else ratio <= 1.0,
            {"files": files, "file_bytes": size, "seconds_beyond_startup": beyond,
             "b3sum_seconds": tb, "samples": {k: [x.wall for x in v] for k, v in s.items()}}))

        warm: dict[str, Variant] = {
            "digest": Variant(self.attest_cmd("--step", "digest"), proj, env),
            "bare": Variant(self.attest_cmd("--step", "bare"), proj, env)}
        if self.tools.git:
            genv = {**env, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
                    "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
            for cmd in (["init", "-q"], ["-c", "core.compression=0", "add", "-A"],
                        ["commit", "-q", "-m", "bench"], ["status", "--porcelain"]):
                subprocess.run([self.tools.git, *cmd], cwd=proj, env=genv, check=True,
                               stdout=subprocess.DEVNULL)
            warm["git status"] = Variant([self.tools.git, "status", "--porcelain"], proj, genv)
        for name in ("digest", "bare"):
            run_once(warm[name])  # fill the cache and the stat index

        def checks() -> None:
            run_once(warm["digest"])
            check_attest_noop(proj)

        progress("no change ")
        s = interleaved(warm, self.repeat, self.warmup, checks)
        beyond = med(s["digest"]) - med(s["bare"])
        tg = med(s["git status"]) if "git status" in s else None
        self.rows.append(Row(
            "hashing", f"no-change re-run over {files} inputs − run without",
            fmt_s(beyond), {p: "-" for p in PEERS}, f"git status {fmt_s(tg)}",
            f"{fmt_x(div(beyond, tg))} git status", "< 100 ms", beyond < 0.100,
            {"files": files, "seconds_beyond_bare_run": beyond, "git_status_seconds": tg,
             "samples": {k: [x.wall for x in v] for k, v in s.items()}}))

    # tracing -------------------------------------------------------------------------------
    def tracing(self) -> None:
        n, runs = self.args.trace_steps, self.args.trace_runs
        progress(f"tracing {n} steps ")
        root = self.workspace("tracing")
        env = clean_env(root)
        cmd = self.attest_cmd("-j", "1", "--no-cache")

        def block(path: Path) -> str:
            return ("tracing:\n  enabled: true\n  exporter:\n    type: file\n"
                    f"    endpoint: {json.dumps(str(path))}\n")

        off, fresh, full = root / "off", root / "on", root / "on-full"
        write_true_project(off, n, "attest", chain=True)
        write_true_project(fresh, n, "attest", chain=True, extra_yaml=block(fresh / "t.jsonl"))
        write_true_project(full, n, "attest", chain=True, extra_yaml=block(full / "t.jsonl"))
        # one run's spans, repeated: the file a project has after `runs` traced runs
        run_once(Variant(cmd, fresh, env))
        trace = fresh / "t.jsonl"
        spans = len(trace.read_bytes().splitlines()) if trace.exists() else 0
        if spans < n:
            raise CommandFailed(f"a traced run of {n} steps wrote {spans} spans to {trace}")
        one_run = trace.read_bytes()
        template = root / "template.jsonl"
        with template.open("wb") as f:
            for _ in range(runs):
                f.write(one_run)
        template_bytes = template.stat().st_size
        template_mib = template_bytes / 2**20
        shutil.copyfile(template, full / "t.jsonl")
        os.sync()  # a file that has held those runs for a while: on disk, nothing dirty
        variants = {
            "off": Variant(cmd, off, env),
            "on": Variant(cmd, fresh, env, lambda: (fresh / "t.jsonl").unlink(missing_ok=True)),
            # back to the runs it held: what a run appended is cut off (copying the 209 MiB
            # again before each run left them to be written back during the timed run)
            "on-full": Variant(cmd, full, env,
                               lambda: os.truncate(full / "t.jsonl", template_bytes)),
        }
        s = interleaved(variants, self.repeat, self.warmup)
        t = {k: med(v) for k, v in s.items()}
        rss = {k: statistics.median(x.maxrss_kib for x in v) / 1024 for k, v in s.items()}
        for key, label in (("on", f"tracing on (file) ÷ off, {n} steps"),
                           ("on-full", f"  same, trace file holding {runs} runs "
                                       f"({template_mib:.0f} MiB)")):
            r = t[key] / t["off"]
            self.rows.append(Row(
                "tracing", label, fmt_s(t[key]), {p: "-" for p in PEERS},
                f"off {fmt_s(t['off'])}; RSS {rss[key]:.0f} vs {rss['off']:.0f} MiB",
                f"{r:.2f}× off", "≤ 1.10×", r <= 1.10,
                {"steps": n, "trace_runs_in_file": runs if key == "on-full" else 0,
                 "trace_file_mib": template_mib if key == "on-full" else 0,
                 "seconds": t[key], "off_seconds": t["off"], "maxrss_mib": rss,
                 "samples": {k: [x.wall for x in v] for k, v in s.items()}}))

    # live metrics endpoint -----------------------------------------------------------------
    def prometheus(self) -> None:
        n = self.args.prom_steps
        progress(f"prometheus {n} cached steps ")
        root = self.workspace("prometheus")
        env = clean_env(root)
        on, off = root / "on", root / "off"
        write_copy_project(on, n, "attest")
        write_copy_project(off, n, "attest")
        (on / ".attest").mkdir()
        # the seed's block, as a user keeps it; the port of each run comes from the
        # environment (rewriting the file per run would time a parse no user pays)
        (on / ".attest" / "config.yaml").write_text(
            "monitoring:\n  prometheus:\n    enabled: true\n"
            "    endpoint: \"127.0.0.1:9464\"\n    path: \"/metrics\"\n"
            "    namespace: \"attest\"\n")
        env_on = dict(env)

        def new_port() -> None:
            # a fresh free port for every run: a port another process took in between would
            # fail the run (exit 2), not measure it
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            env_on["ATTEST_MONITORING__PROMETHEUS__ENDPOINT"] = f"127.0.0.1:{port}"

        variants = {"enabled": Variant(self.attest_cmd(), on, env_on, new_port),
                    "disabled": Variant(self.attest_cmd(), off, env)}
        for v in variants.values():
            run_once(v)  # fill the cache

        def checks() -> None:
            check_attest_noop(on)
            check_attest_noop(off)

        s = interleaved(variants, self.repeat, self.warmup, checks)
        te, td = med(s["enabled"]), med(s["disabled"])
        self.rows.append(Row(
            "prometheus", f"cached run, {n} steps, monitoring.prometheus on ÷ off",
            fmt_s(te), {p: "-" for p in PEERS}, f"off {fmt_s(td)}", f"{te / td:.2f}× off",
            "≤ 1.10×", te / td <= 1.10,
            {"steps": n, "enabled_seconds": te, "disabled_seconds": td,
             "samples": {k: [x.wall for x in v] for k, v in s.items()}}))


# --- main ---------------------------------------------------------------------------------------

def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(WORKLOADS),
                    help=f"comma-separated workloads: {', '.join(WORKLOADS)} (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: small sizes, 2 rounds (figures not meaningful)")
    ap.add_argument("--repeat", type=int, help="measured rounds per figure (default 5; quick 2)")
    ap.add_argument("--warmup", type=int, help="untimed rounds first (default 1; quick 1)")
    ap.add_argument("--sizes", type=int_list, help="no-op sizes (default 10,100,1000,5000)")
    ap.add_argument("--cold-steps", type=int, help="cold build steps (default 1000)")
    ap.add_argument("--chain-steps", type=int, help="chain length (default 200)")
    ap.add_argument("--fanout-steps", type=int, help="independent steps (default 200)")
    ap.add_argument("--fanout-cmd", default="true", help="command of each fan-out step")
    ap.add_argument("--jobs", type=int, default=2, help="parallelism of cold and fanout (2)")
    ap.add_argument("--files", type=int, help="input files for hashing (default 10000)")
    ap.add_argument("--file-kb", type=int, default=25, help="size of each input file (25)")
    ap.add_argument("--trace-steps", type=int, help="steps of the tracing pipeline (200)")
    ap.add_argument("--trace-runs", type=int,
                    help="runs already in the trace file (default 1000)")
    ap.add_argument("--prom-steps", type=int, help="steps of the prometheus pipeline (100)")
    ap.add_argument("--attest", help="attest executable (default: the repo's .venv/bin/attest)")
    ap.add_argument("--json", type=Path, help="also write every figure and sample here")
    ap.add_argument("--workdir", type=Path, help="create the temporary tree under this dir")
    ap.add_argument("--keep", action="store_true", help="keep the generated tree")
    args = ap.parse_args(argv)
    full = {"repeat": 5, "warmup": 1, "sizes": [10, 100, 1000, 5000], "cold_steps": 1000,
            "chain_steps": 200, "fanout_steps": 200, "files": 10_000, "trace_steps": 200,
            "trace_runs": 1000, "prom_steps": 100}
    quick = {"repeat": 2, "warmup": 1, "sizes": [10, 100], "cold_steps": 100,
             "chain_steps": 50, "fanout_steps": 50, "files": 1000, "trace_steps": 50,
             "trace_runs": 20, "prom_steps": 20}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(args.only) - set(WORKLOADS))
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    # the no-op checks look at the warm-up run, so there is always at least one
    if args.repeat < 1 or args.warmup < 1 or args.chain_steps < 2 or any(n < 1 for n in args.sizes):
        ap.error("--repeat and --warmup must be >= 1, --chain-steps >= 2, sizes >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tools = find_tools(args.attest)
    compile_attest()
    base = Path(tempfile.mkdtemp(prefix="attest-scale-", dir=args.workdir))
    bench = Bench(tools, base, args.repeat, args.warmup, args)
    load0 = os.getloadavg()
    started = time.time()
    failed: list[str] = []
    try:
        for name in WORKLOADS:
            if name in args.only:
                try:
                    getattr(bench, name)()
                except CommandFailed as exc:
                    progress("\n")
                    failed.append(name)
                    bench.notes.append(f"{name} FAILED: {exc}")
    finally:
        if args.keep:
            print(f"generated tree kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    load1 = os.getloadavg()
    for tool, why in tools.missing.items():
        bench.notes.append(f"{tool}: n/a — {why}")
    print(f"attest at scale — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
          f"{platform.node()}, {os.cpu_count()} CPUs, load {load0[0]:.2f} → {load1[0]:.2f}"
          f"{', QUICK smoke run (sizes too small for conclusions)' if args.quick else ''}")
    print(f"whole-process wall time, median of {args.repeat} interleaved rounds after "
          f"{args.warmup} warm-up; peer cells: time (attest ÷ peer)")
    print_table(bench.rows, bench.notes)
    if args.json:
        args.json.write_text(json.dumps({
            "schema": "attest.scale-benchmark", "schema_version": 1,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "machine": {"hostname": platform.node(), "cpu_count": os.cpu_count(),
                        "platform": platform.platform(), "python": platform.python_version(),
                        "load_average": load0, "load_average_end": load1},
            "settings": {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in vars(args).items()},
            "tools": {"attest": tools.attest, "make": tools.make, "ninja": tools.ninja,
                      "doit": tools.doit, "b3sum": tools.b3sum, "git": tools.git},
            "missing": tools.missing, "failed": failed, "notes": bench.notes,
            "rows": [vars(r) for r in bench.rows]}, indent=2, default=str) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
