"""The run report: the durable record of one run (``.attest/runs/<run-id>.json``).

Metrics history, ``attest analyze``, receipts and benchmarks all read this record back, so
its JSON form is versioned (``schema_version``) and documented in the README. Add fields
freely; rename or remove only with a version bump.
"""

from __future__ import annotations

import operator
from dataclasses import FrozenInstanceError, dataclass, field
from pathlib import Path
from typing import Any

from attest_cli.errors import InputError

SCHEMA = "attest.run-report"
SCHEMA_VERSION = 1

STEP_STATUSES = ("success", "failure", "skipped", "cached")
# abandoned: the process died without recording the end (kill -9, OOM killer, reboot)
RUN_STATUSES = ("running", "success", "failure", "interrupted", "abandoned")


@dataclass
class StepResult:
    """What happened to one step. Resource figures cover the step's process tree."""

    name: str
    command: str
    status: str = "skipped"  # success | failure | skipped | cached
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    wall_seconds: float = 0.0
    cpu_user_seconds: float = 0.0
    cpu_system_seconds: float = 0.0
    max_rss_bytes: int = 0
    # Linux starts a program's peak RSS at the peak of the process that exec'd it (the step
    # launcher's, ~8 MiB; attest's own without it): when max_rss_bytes is <= this floor the
    # step's true peak is at most that, not exactly that (docs/profiling.md).
    max_rss_floor_bytes: int | None = None
    slot: int | None = None  # which parallel slot ran it (for timelines)
    log_file: str | None = None
    timed_out: bool = False
    signal: int | None = None
    reason: str | None = None  # why skipped/failed, in words
    cache_hit: bool = False
    cache_backend: str | None = None
    cache_key: str | None = None
    cache_miss_reason: str | None = None
    output_digest: str | None = None  # digest of the declared outputs (feeds downstream keys)
    outputs: list[dict[str, str]] = field(default_factory=list)  # [{path, hash}]
    inputs: list[dict[str, str]] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)  # what it waited for (critical path)
    # Remote execution (docs/remote.md): backend, worker, Action and result digests and the
    # worker's timestamps; None when the step ran (or was replayed) on this machine.
    remote: dict[str, Any] | None = None

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


@dataclass
class RunReport:
    """One run of a pipeline: identity, timing, status and every step's result."""

    run_id: str
    pipeline: str
    pipeline_file: str
    started_at: float
    finished_at: float | None = None
    status: str = "running"
    exit_code: int | None = None
    parallel: int = 1
    attest_version: str = ""
    hostname: str = ""
    pid: int | None = None  # with hostname and process_start: proves a dead run abandoned
    process_start: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    interrupted_by: int | None = None
    cache: dict[str, dict[str, int]] = field(default_factory=dict)  # backend -> hits/misses
    receipt: str | None = None
    trace_id: str | None = None
    failures: list[str] = field(default_factory=list)  # why a feature failed the run

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
        # Shallow copies instead of dataclasses.asdict's deep recursion: the report of a
        # 1,000-step run is written twice per run and asdict dominated that cost.
        data = self._document()
        data["steps"] = [_step_dict(s) for s in self.steps]
        return data

    def _document(self) -> dict[str, Any]:
        """Everything :meth:`to_dict` gives, with the steps still as objects."""
        data: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
                                **self.__dict__}
        data.pop(_MEMO, None)
        data["steps"] = list(self.steps)
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

        The steps are handed to orjson as they are (it writes a dataclass's fields itself):
        a dict per step first cost six times the encoding of 5,000 steps. Their times were
        rounded when they finished (:func:`settle_times`)."""
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
            known = set(cls.__dataclass_fields__)
            step_known = set(StepResult.__dataclass_fields__)
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
        raise FrozenInstanceError(f"cannot assign to field {name!r}: a published step result")


class _FrozenRunReport(RunReport):
    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: a run report snapshot")


def _frozen_step(step: StepResult) -> StepResult:
    snap = _FrozenStepResult.__new__(_FrozenStepResult)
    snap.__dict__.update(step.__dict__)
    for name in ("outputs", "inputs", "needs"):
        snap.__dict__[name] = tuple(step.__dict__[name])
    return snap
