"""The run report: the durable record of one run (``.attest/runs/<run-id>.json``).

Metrics history, ``attest analyze``, receipts and benchmarks all read this record back, so
its JSON form is versioned (``schema_version``) and documented in the README. Add fields
freely; rename or remove only with a version bump.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

from attest_cli.errors import InputError
from attest_cli.record import FrozenError, Record

SCHEMA = "attest.run-report"
SCHEMA_VERSION = 1

STEP_STATUSES = ("success", "failure", "skipped", "cached")
# abandoned: the process died without recording the end (kill -9, OOM killer, reboot)
RUN_STATUSES = ("running", "success", "failure", "interrupted", "abandoned")


class StepResult(Record):
    """What happened to one step. Resource figures cover the step's process tree."""

    name: str
    command: str
    status: str  # success | failure | skipped | cached
    exit_code: int | None
    started_at: float | None
    finished_at: float | None
    wall_seconds: float
    cpu_user_seconds: float
    cpu_system_seconds: float
    max_rss_bytes: int
    # Linux starts a program's peak RSS at the peak of the process that exec'd it (the step
    # launcher's, ~8 MiB; attest's own without it): when max_rss_bytes is <= this floor the
    # step's true peak is at most that, not exactly that (docs/profiling.md).
    max_rss_floor_bytes: int | None
    slot: int | None  # which parallel slot ran it (for timelines)
    log_file: str | None
    timed_out: bool
    signal: int | None
    reason: str | None  # why skipped/failed, in words
    cache_hit: bool
    cache_backend: str | None
    cache_key: str | None
    cache_miss_reason: str | None
    output_digest: str | None  # digest of the declared outputs (feeds downstream keys)
    outputs: list[dict[str, str]]  # [{path, hash}]
    inputs: list[dict[str, str]]
    needs: list[str]  # what it waited for (critical path)
    # Remote execution (docs/remote.md): backend, worker, Action and result digests and the
    # worker's timestamps; None when the step ran (or was replayed) on this machine.
    remote: dict[str, Any] | None

    def __init__(self, name: str, command: str, status: str = "skipped",
                 exit_code: int | None = None, started_at: float | None = None,
                 finished_at: float | None = None, wall_seconds: float = 0.0,
                 cpu_user_seconds: float = 0.0, cpu_system_seconds: float = 0.0,
                 max_rss_bytes: int = 0, max_rss_floor_bytes: int | None = None,
                 slot: int | None = None, log_file: str | None = None,
                 timed_out: bool = False, signal: int | None = None,
                 reason: str | None = None, cache_hit: bool = False,
                 cache_backend: str | None = None, cache_key: str | None = None,
                 cache_miss_reason: str | None = None, output_digest: str | None = None,
                 outputs: list[dict[str, str]] | None = None,
                 inputs: list[dict[str, str]] | None = None, needs: list[str] | None = None,
                 remote: dict[str, Any] | None = None) -> None:
        self.name = name
        self.command = command
        self.status = status
        self.exit_code = exit_code
        self.started_at = started_at
        self.finished_at = finished_at
        self.wall_seconds = wall_seconds
        self.cpu_user_seconds = cpu_user_seconds
        self.cpu_system_seconds = cpu_system_seconds
        self.max_rss_bytes = max_rss_bytes
        self.max_rss_floor_bytes = max_rss_floor_bytes
        self.slot = slot
        self.log_file = log_file
        self.timed_out = timed_out
        self.signal = signal
        self.reason = reason
        self.cache_hit = cache_hit
        self.cache_backend = cache_backend
        self.cache_key = cache_key
        self.cache_miss_reason = cache_miss_reason
        self.output_digest = output_digest
        self.outputs = [] if outputs is None else outputs
        self.inputs = [] if inputs is None else inputs
        self.needs = [] if needs is None else needs
        self.remote = remote

    @property
    def max_rss_exact(self) -> bool:
        """False when the figure is only the inherited floor (an upper bound)."""
        floor = self.max_rss_floor_bytes
        return floor is None or self.max_rss_bytes > floor

    @property
    def ok(self) -> bool:
        return self.status in ("success", "cached")


# Seconds and Unix times are written to the microsecond: the clocks behind them are no finer,
# and 17 significant digits of five floats per step were a sixth of a large report.
_ROUNDED = ("started_at", "finished_at", "wall_seconds", "cpu_user_seconds",
            "cpu_system_seconds")


_MEMO = "_frozen_memo"  # RunReport.__dict__ key of the snapshot memo (never serialised)


def settle_times(step: StepResult) -> None:
    """Round a finished step's times to the microsecond (see :data:`_ROUNDED`), once, where
    it finishes: the report is then written without a copy of each step."""
    data = step.__dict__
    for key in _ROUNDED:
        value = data[key]
        if value:  # None and 0.0 (a replayed step's CPU) stay as they are
            data[key] = round(value, 6)


def _step_dict(step: StepResult) -> dict[str, Any]:
    data = dict(step.__dict__)
    for key in _ROUNDED:
        value = data[key]
        if value is not None:
            data[key] = round(value, 6)
    return data


class RunReport(Record):
    """One run of a pipeline: identity, timing, status and every step's result."""

    run_id: str
    pipeline: str
    pipeline_file: str
    started_at: float
    finished_at: float | None
    status: str
    exit_code: int | None
    parallel: int
    attest_version: str
    hostname: str
    pid: int | None  # with hostname and process_start: proves a dead run abandoned
    process_start: str | None
    steps: list[StepResult]
    interrupted_by: int | None
    cache: dict[str, dict[str, int]]  # backend -> hits/misses
    receipt: str | None
    trace_id: str | None
    failures: list[str]  # why a feature failed the run

    def __init__(self, run_id: str, pipeline: str, pipeline_file: str, started_at: float,
                 finished_at: float | None = None, status: str = "running",
                 exit_code: int | None = None, parallel: int = 1, attest_version: str = "",
                 hostname: str = "", pid: int | None = None, process_start: str | None = None,
                 steps: list[StepResult] | None = None, interrupted_by: int | None = None,
                 cache: dict[str, dict[str, int]] | None = None, receipt: str | None = None,
                 trace_id: str | None = None, failures: list[str] | None = None) -> None:
        self.run_id = run_id
        self.pipeline = pipeline
        self.pipeline_file = pipeline_file
        self.started_at = started_at
        self.finished_at = finished_at
        self.status = status
        self.exit_code = exit_code
        self.parallel = parallel
        self.attest_version = attest_version
        self.hostname = hostname
        self.pid = pid
        self.process_start = process_start
        self.steps = [] if steps is None else steps
        self.interrupted_by = interrupted_by
        self.cache = {} if cache is None else cache
        self.receipt = receipt
        self.trace_id = trace_id
        self.failures = [] if failures is None else failures

    def snapshot(self) -> RunReport:
        """A frozen copy for observers: assigning to it (or to its steps) raises, and the
        run's own report changing later never changes what an observer was handed."""
        snap = _FrozenRunReport.__new__(_FrozenRunReport)
        snap.__dict__.update(self.__dict__)
        snap.__dict__.pop(_MEMO, None)
        snap.__dict__["steps"] = self._frozen_steps()
        snap.__dict__["cache"] = {k: dict(v) for k, v in self.cache.items()}
        snap.__dict__["failures"] = tuple(self.failures)
        return snap

    def _frozen_steps(self) -> tuple[StepResult, ...]:
        """Frozen copies of the steps, made once per step: a run hands a snapshot to each
        end-of-run hook and observer, and copying 5,000 steps for each was measurable.
        A published result is final (the scheduler never changes it), so a copy made
        earlier still holds; the memo keeps the originals, so an identity is never reused."""
        memo: tuple[tuple[StepResult, ...], tuple[StepResult, ...]] | None = \
            self.__dict__.get(_MEMO)
        steps = tuple(self.steps)
        if memo is not None and len(memo[0]) == len(steps) and \
                all(map(operator.is_, memo[0], steps)):
            return memo[1]
        known = {id(a): f for a, f in zip(*memo, strict=True)} if memo is not None else {}
        frozen = tuple(known.get(id(s)) or _frozen_step(s) for s in steps)
        self.__dict__[_MEMO] = (steps, frozen)
        return frozen

    @property
    def duration_seconds(self) -> float:
        return max(0.0, (self.finished_at or self.started_at) - self.started_at)

    def step(self, name: str) -> StepResult:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def steps_success(self) -> int:
        return sum(1 for s in self.steps if s.ok)

    @property
    def cache_hit_rate(self) -> float:
        """Hits over cache lookups; steps that never looked up are not counted."""
        looked = [s for s in self.steps if s.cache_key is not None or s.cache_hit]
        return round(sum(s.cache_hit for s in looked) / len(looked), 4) if looked else 0.0

    def to_dict(self) -> dict[str, Any]:
        # Shallow copies instead of a deep recursion (dataclasses.asdict's, once): the report
        # of a 1,000-step run is written twice per run and asdict dominated that cost.
        data = self._document()
        data["steps"] = [_step_dict(s) for s in self.steps]
        return data

    def _document(self) -> dict[str, Any]:
        """Everything :meth:`to_dict` gives, with each step as its own ``__dict__`` (its
        fields, in order: what orjson wrote for a dataclass), not a copy."""
        data: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
                                **self.__dict__}
        data.pop(_MEMO, None)
        data["steps"] = [s.__dict__ for s in self.steps]
        data["cache"] = {k: dict(v) for k, v in self.cache.items()}
        data["duration_seconds"] = round(self.duration_seconds, 6)
        data["steps_total"] = len(self.steps)
        data["steps_success"] = self.steps_success
        data["cache_hit_rate"] = self.cache_hit_rate
        return data

    def to_json(self) -> str:
        """Compact JSON (``jq .`` pretty-prints it), by orjson: a 5,000-step report is ~4 MB
        written at the end of every run, 50 ms with the standard library, 7 ms with orjson.
        Non-ASCII text is written as UTF-8 rather than ``\\u`` escapes (see
        :mod:`attest_cli.compactjson` for names that are not UTF-8).

        The steps are handed to orjson as their own ``__dict__``, which is how it wrote a
        dataclass (a record would go through compactjson's ``default``: a Python call and a
        new dict per step); a rounded copy of each step first cost six times the encoding of
        5,000 steps. Their times were rounded when they finished (:func:`settle_times`)."""
        from attest_cli.compactjson import dumps

        return dumps(self._document(), newline=True).decode()

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "report") -> RunReport:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise InputError(f"not an attest run report (expected \"schema\": \"{SCHEMA}\")",
                             path=source)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InputError(f"run report schema_version {version!r} is not supported "
                             f"(this attest reads {SCHEMA_VERSION})", path=source)
        try:
            known = set(cls._fields)
            step_known = set(StepResult._fields)
            fields = {k: v for k, v in data.items() if k in known and k != "steps"}
            steps = [StepResult(**{k: v for k, v in s.items() if k in step_known})
                     for s in data.get("steps", [])]
            return cls(steps=steps, **fields)
        except (TypeError, AttributeError) as exc:
            raise InputError(f"malformed run report: {exc}", path=source) from None

    @classmethod
    def load(cls, path: str | Path) -> RunReport:
        from attest_cli.jsonfile import load_json

        return cls.from_dict(load_json(path, expected="a run report"), source=str(path))


class _FrozenStepResult(StepResult):
    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenError(f"cannot assign to field {name!r}: a published step result")


class _FrozenRunReport(RunReport):
    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenError(f"cannot assign to field {name!r}: a run report snapshot")


def _frozen_step(step: StepResult) -> StepResult:
    snap = _FrozenStepResult.__new__(_FrozenStepResult)
    snap.__dict__.update(step.__dict__)
    for name in ("outputs", "inputs", "needs"):
        snap.__dict__[name] = tuple(step.__dict__[name])
    return snap
