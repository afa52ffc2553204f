"""Run a pipeline N times in-process and collect per-step samples.

Each iteration is a real ``attest run`` (the run service's ``execute``, which the caller
passes in as a :data:`RunExecutor`, so the benchmark never imports the service) without the
interpreter start-up a shell loop around ``attest run`` would add, so the figures are the
pipeline's own. Cold cache means ``--no-cache`` (every step executes); warm cache means the
cache is on and filled by the warm-up, so the measured iterations time cache hits.

Several subjects (e.g. two git refs) are measured *interleaved*, alternating which side
goes first, so that a slow drift of the machine (thermal throttling, a backup starting)
lands on both sides instead of looking like a regression.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from attest_cli.bench import environment
from attest_cli.bench.result import DETAIL, METRICS, TOTAL, BenchmarkResult
from attest_cli.bench.stats import warnings_for
from attest_cli.context import AppContext
from attest_cli.errors import AttestError, ExitCode, Interrupted, UsageError
from attest_cli.pipeline.identity import pipeline_hash
from attest_cli.runner.features import RunOptions
from attest_cli.runner.loading import Loaded, load
from attest_cli.runner.signals import StopRequest

if TYPE_CHECKING:
    from attest_cli.engine.run_report import RunReport

CACHE_MODES = ("cold", "warm")


class RunExecutor(Protocol):
    """``attest run`` in-process: the run service's ``execute``."""

    def __call__(self, ctx: AppContext, options: RunOptions, *, view: Any = None,
                 loaded: Loaded | None = None) -> RunReport: ...


@dataclass
class BenchmarkSettings:
    iterations: int = 10
    warmup: int = 1
    cache: str = "cold"  # cold | warm
    prepare: str | None = None  # shell command run before every iteration, not timed
    steps: list[str] = field(default_factory=list)
    pipeline: str | None = None  # pipeline file, relative to each subject's project

    def check(self) -> None:
        if self.iterations < 2:
            raise UsageError("--iterations must be at least 2 (statistics need a spread)")
        if self.warmup < 0:
            raise UsageError("--warmup must not be negative")
        if self.cache not in CACHE_MODES:
            raise UsageError(f"--cache {self.cache!r}: use cold or warm")

    @property
    def effective_warmup(self) -> int:
        # A warm cache needs one run to fill it before anything is measured.
        return max(self.warmup, 1) if self.cache == "warm" else self.warmup


@dataclass
class Subject:
    """One thing to benchmark: a project directory under a label."""

    label: str
    ctx: AppContext
    source: dict[str, Any] = field(default_factory=dict)
    pipeline: str | None = None  # pipeline file when not the settings' one (a worktree's)


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, label: str, phase: str, index: int, count: int,
                seconds: float) -> None: ...

    def stop(self) -> None: ...


class QuietProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, label: str, phase: str, index: int, count: int, seconds: float) -> None:
        pass

    def stop(self) -> None:
        pass


def _last_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [line.strip() for line in fh if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


class _Side:
    """The running state of one subject's benchmark."""

    def __init__(self, subject: Subject, settings: BenchmarkSettings,
                 execute: RunExecutor) -> None:
        self.subject = subject
        self.settings = settings
        self.execute = execute
        self.options = RunOptions(pipeline=subject.pipeline or settings.pipeline,
                                  steps=list(settings.steps), no_cache=settings.cache == "cold")
        self.loaded = load(subject.ctx, self.options)
        self.pipeline, _, self.order = self.loaded
        self.environment = environment.capture(subject.ctx.workdir)
        self.samples: dict[str, Any] = {
            TOTAL: {m: [] for m in (*METRICS, *DETAIL)},
            "steps": {n: {m: [] for m in (*METRICS, *DETAIL)} for n in self.order}}
        self.runs: list[str] = []
        self.parallel = 1
        self.misses: Counter[str] = Counter()
        self.interrupted_after: int | None = None

    def _prepare(self) -> None:
        cmd = self.settings.prepare
        if not cmd:
            return
        proc = subprocess.run(cmd, shell=True, cwd=self.pipeline.root,
                              env=self.subject.ctx.environ, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode < 0 and -proc.returncode in (signal.SIGINT, signal.SIGTERM):
            raise Interrupted(-proc.returncode)  # Ctrl-C reached the prepare command too
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or [""])[-1]
            raise AttestError(f"{self.subject.label}: --prepare command failed with exit code "
                              f"{proc.returncode}" + (f": {tail}" if tail else ""),
                              exit_code=ExitCode.FAILURE)

    def once(self, measured: bool) -> float:
        self._prepare()
        t0 = time.perf_counter()
        report = self.execute(self.subject.ctx, self.options, view=None, loaded=self.loaded)
        wall = time.perf_counter() - t0
        if report.status == "interrupted":
            raise Interrupted(report.interrupted_by or 2)
        if report.status != "success":
            failed = [s for s in report.steps if s.status == "failure"]
            detail = ", ".join(f"{s.name} ({s.reason})" for s in failed) or report.status
            log = ""
            if failed and failed[0].log_file:
                # A git ref's worktree (and its logs) is removed afterwards: quote the end.
                last = _last_line(failed[0].log_file)
                log = (f": {last}" if last else "") + (
                    "" if self.subject.source.get("kind") == "git-ref"
                    else f" (log: {failed[0].log_file})")
            raise AttestError(f"{self.subject.label}: the pipeline failed during the benchmark: "
                              f"{detail}{log}", exit_code=ExitCode.FAILURE)
        if not measured:
            return wall
        self.parallel = report.parallel
        self.runs.append(report.run_id)
        total = self.samples[TOTAL]
        total["wall"].append(round(wall, 6))
        total["cpu"].append(round(sum(s.cpu_user_seconds + s.cpu_system_seconds
                                      for s in report.steps), 6))
        total["rss"].append(max((s.max_rss_bytes for s in report.steps), default=0))
        total["cpu_user"].append(round(sum(s.cpu_user_seconds for s in report.steps), 6))
        total["cpu_system"].append(round(sum(s.cpu_system_seconds for s in report.steps), 6))
        for s in report.steps:
            series = self.samples["steps"][s.name]
            series["wall"].append(round(s.wall_seconds, 6))
            series["cpu"].append(round(s.cpu_user_seconds + s.cpu_system_seconds, 6))
            series["cpu_user"].append(round(s.cpu_user_seconds, 6))
            series["cpu_system"].append(round(s.cpu_system_seconds, 6))
            series["rss"].append(s.max_rss_bytes)
            if (self.settings.cache == "warm" and not s.cache_hit
                    and self.pipeline.steps[s.name].cache):
                self.misses[s.name] += 1
        return wall

    def result(self, started_at: str, interleaved_with: list[str]) -> BenchmarkResult:
        warnings = []
        if self.interrupted_after is not None:
            warnings.append(f"interrupted: only {self.interrupted_after} of "
                            f"{self.settings.iterations} iterations were measured")
        load = self.environment.get("load_average")
        cpus = self.environment.get("cpu_count") or 1
        if load and load[0] > cpus:
            warnings.append(f"the system was busy (load average {load[0]} on {cpus} CPUs); "
                            "timings may be inflated")
        if self.misses:
            names = ", ".join(f"{n} ({c}x)" for n, c in sorted(self.misses.items()))
            warnings.append("warm cache requested, but cacheable steps missed the cache in "
                            f"measured iterations: {names}; their timings include execution")
        warnings += warnings_for("total", self.samples[TOTAL]["wall"])
        for name in self.order:
            warnings += warnings_for(f"step {name}", self.samples["steps"][name]["wall"])
        self.environment["load_average_end"] = environment.load_average()
        source = dict(self.subject.source)
        if interleaved_with:
            source["interleaved_with"] = interleaved_with
        return BenchmarkResult(
            label=self.subject.label, created_at=started_at,
            pipeline={"name": self.pipeline.name,
                      "file": self.subject.ctx.display(self.pipeline.path),
                      "hash": pipeline_hash(self.pipeline), "steps": list(self.order)},
            settings={"iterations": self.settings.iterations,
                      "warmup": self.settings.effective_warmup, "cache": self.settings.cache,
                      "prepare": self.settings.prepare, "steps": list(self.settings.steps),
                      "parallel": self.parallel},
            environment=self.environment, samples=self.samples, source=source,
            runs=self.runs, warnings=warnings)


def benchmark(subjects: Sequence[Subject], settings: BenchmarkSettings,
              progress: Progress | None = None, *,
              execute: RunExecutor) -> list[BenchmarkResult]:
    """Benchmark every subject (interleaved when several); results in subject order."""
    settings.check()
    progress = progress or QuietProgress()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sides = [_Side(s, settings, execute) for s in subjects]
    warmup = settings.effective_warmup
    progress.start(len(sides) * (warmup + settings.iterations))
    labels = [s.label for s in subjects]

    def results() -> list[BenchmarkResult]:
        return [side.result(started_at, [lb for lb in labels if lb != side.subject.label])
                for side in sides]
    # Signals between iterations end the benchmark after the current one; while a run's
    # steps execute, the run routes them to its scheduler and then reports the signal.
    stop = StopRequest()
    try:
        with stop:
            for i in range(warmup):
                for side in sides:
                    progress.advance(side.subject.label, "warm-up", i + 1, warmup,
                                     side.once(measured=False))
                    stop.check()
            for i in range(settings.iterations):
                ordered = sides if i % 2 == 0 else list(reversed(sides))
                for side in ordered:
                    progress.advance(side.subject.label, "iteration", i + 1,
                                     settings.iterations, side.once(measured=True))
                    stop.check()
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else 2
        done = min(len(side.runs) for side in sides)
        partial = None
        if done >= 2:  # enough for statistics: keep what was measured
            for side in sides:
                side.interrupted_after = len(side.runs)
            partial = results()
        raise BenchmarkInterrupted(signum, partial) from None
    finally:
        progress.stop()
    return results()


class BenchmarkInterrupted(Interrupted):
    """Stopped by a signal; ``partial`` holds the iterations measured so far (when there
    were at least two per side), so the caller can still keep them."""

    def __init__(self, signum: int, partial: list[BenchmarkResult] | None) -> None:
        super().__init__(signum)
        self.partial = partial
