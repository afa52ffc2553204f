"""Fakes for testing the engine in-process: a clock, a step runner, a cache and an observer.

The scheduler's only contacts with the world are its :class:`StepRunner` (processes), its
:class:`Clock` and its :class:`StepCache`; with the fakes below a test drives a whole run in
milliseconds, without processes or sleeps, and asserts on the events it published.
Shipped in the package (not under ``tests/``) so that plug-in authors can test their
observers the same way.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from attest_cli.engine.events import Event, StepFinished, StepStarted
from attest_cli.engine.interfaces import (
    CacheDecision,
    StepContext,
    StepRequest,
    StoreOutcome,
)
from attest_cli.engine.process import ProcessOutcome
from attest_cli.engine.run_report import StepResult

E = TypeVar("E", bound=Event)


class FakeClock:
    """A clock that moves only when told to; ``time`` is ``monotonic`` plus a fixed epoch."""

    def __init__(self, start: float = 1_000.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch = epoch
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass(frozen=True)
class Script:
    """What the fake runner does for one step.

    ``duration`` advances the fake clock; ``hangs`` runs until the request's timeout (then
    reports a timeout, as ``run_command`` does after SIGTERM) or, without one, until
    ``terminate_all``; ``held`` blocks until :meth:`FakeStepRunner.release` (to control
    the order in which parallel steps finish); ``error`` is raised instead of running.
    """

    exit_code: int = 0
    duration: float = 0.0
    output: tuple[str, ...] = ()
    hangs: bool = False
    held: bool = False
    error: Exception | None = None


class FakeStepRunner:
    """A :class:`StepRunner` that follows a :class:`Script` per step name."""

    def __init__(self, scripts: Mapping[str, Script] | None = None, *,
                 clock: FakeClock | None = None, default: Script | None = None) -> None:
        self.scripts = dict(scripts or {})
        self.default = default or Script()
        self.clock = clock or FakeClock()
        self.requests: list[StepRequest] = []  # in start order
        self.running: set[str] = set()
        self.max_running = 0
        self.terminated = threading.Event()
        self._lock = threading.Condition()
        self._released: set[str] = set()

    # -- what tests call -------------------------------------------------------------------
    @property
    def started(self) -> list[str]:
        with self._lock:
            return [r.step for r in self.requests]

    def wait_started(self, *steps: str, timeout: float = 5.0) -> None:
        """Block until every named step is running (or has run); fail after ``timeout``."""
        with self._lock:
            if not self._lock.wait_for(lambda: set(steps) <= {r.step for r in self.requests},
                                       timeout):
                raise AssertionError(f"steps {steps} did not start; started: {self.started}")

    def release(self, *steps: str) -> None:
        """Let held steps finish."""
        with self._lock:
            self._released.update(steps)
            self._lock.notify_all()

    # -- the StepRunner protocol -----------------------------------------------------------
    def run(self, request: StepRequest) -> ProcessOutcome:
        script = self.scripts.get(request.step, self.default)
        with self._lock:
            self.requests.append(request)
            self.running.add(request.step)
            self.max_running = max(self.max_running, len(self.running))
            self._lock.notify_all()
        try:
            if script.error is not None:
                raise script.error
            if script.held:
                with self._lock:
                    self._lock.wait_for(lambda: request.step in self._released
                                        or self.terminated.is_set())
            if script.output:  # like run_command: the log (and its directory) on first output
                request.log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(request.log_path, "w", encoding="utf-8") as log:
                    for line in script.output:
                        masked = request.mask(line)
                        log.write(masked + "\n")
                        request.on_line(masked)
            if script.hangs:
                return self._hang(request)
            if self.terminated.is_set():
                return self._killed(0.0)
            self.clock.advance(script.duration)
            return outcome(script.exit_code, script.duration)
        finally:
            with self._lock:
                self.running.discard(request.step)

    def terminate_all(self) -> None:
        self.terminated.set()
        with self._lock:
            self._lock.notify_all()

    def _hang(self, request: StepRequest) -> ProcessOutcome:
        if request.timeout is not None:
            self.clock.advance(request.timeout)
            return outcome(128 + signal.SIGTERM, request.timeout, timed_out=True,
                           signal=signal.SIGTERM)
        self.terminated.wait()
        return self._killed(0.0)

    @staticmethod
    def _killed(duration: float) -> ProcessOutcome:
        return outcome(128 + signal.SIGTERM, duration, signal=signal.SIGTERM)


def outcome(exit_code: int, wall_seconds: float = 0.0, *, timed_out: bool = False,
            signal: int | None = None) -> ProcessOutcome:
    """A :class:`ProcessOutcome` with zero resource usage."""
    return ProcessOutcome(exit_code=exit_code, wall_seconds=wall_seconds, cpu_user_seconds=0.0,
                          cpu_system_seconds=0.0, max_rss_bytes=0, timed_out=timed_out,
                          signal=signal)


@dataclass
class FakeStepCache:
    """A :class:`StepCache` that hits for the steps in ``hits`` (name -> replayed log text).

    Every other step misses with ``miss_reason``; what the scheduler stores is recorded in
    ``stored`` (step name -> result status), and the keys are ``key:<step>``.
    """

    hits: Mapping[str, str] = field(default_factory=dict)
    miss_reason: str = "no entry"
    backend_name: str = "fake"
    stored: dict[str, str] = field(default_factory=dict)
    looked_up: list[str] = field(default_factory=list)
    fresh_steps: Mapping[str, str] = field(default_factory=dict)  # decided without a lookup
    networked: bool = False
    on_store: Callable[[str], None] | None = None  # called with the step name as a store begins
    on_lookup: Callable[[str], None] | None = None  # called with the step name as a lookup begins

    def fresh(self, ctx: StepContext) -> CacheDecision | None:
        name = ctx.step.name
        if name not in self.fresh_steps:
            return None
        return CacheDecision(hit=True, backend=self.backend_name, key=f"key:{name}",
                             log_text=self.fresh_steps[name], output_digest=f"digest:{name}")

    def lookup(self, ctx: StepContext) -> CacheDecision:
        name = ctx.step.name
        if self.on_lookup is not None:
            self.on_lookup(name)
        self.looked_up.append(name)
        if name in self.hits:
            return CacheDecision(hit=True, backend=self.backend_name, key=f"key:{name}",
                                 log_text=self.hits[name], output_digest=f"digest:{name}")
        return CacheDecision(hit=False, backend=self.backend_name, key=f"key:{name}",
                             reason=self.miss_reason)

    def store(self, ctx: StepContext, decision: CacheDecision, result: StepResult,
              log_path: Path) -> StoreOutcome:
        if self.on_store is not None:
            self.on_store(ctx.step.name)
        self.stored[ctx.step.name] = (log_path.read_text(encoding="utf-8")
                                      if log_path.exists() else "")  # a silent step has none
        return StoreOutcome(stored=True, bytes=len(self.stored[ctx.step.name]),
                            output_digest=f"digest:{ctx.step.name}")


class RecordingObserver:
    """An observer that keeps every event it sees, in order (subscribe it to a bus)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        """The events of one type, in order."""
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def started(self) -> list[str]:
        """Step names in the order their ``StepStarted`` was published."""
        return [e.step for e in self.of(StepStarted)]

    def finished(self) -> dict[str, StepResult]:
        """Each step's published result, by name (in publication order)."""
        return {e.result.name: e.result for e in self.of(StepFinished)}
