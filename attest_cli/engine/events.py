"""Typed, immutable run events and the bus that delivers them to observers.

The engine publishes; progress views, logs, metrics, traces, history and the run report
observe. An observer that raises is reported once and never breaks the run (the same rule
as OpenTelemetry's span processors).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from attest_cli.record import FrozenRecord

if TYPE_CHECKING:
    from attest_cli.engine.run_report import RunReport, StepResult
    from attest_cli.pipeline.model import Pipeline

log = logging.getLogger("attest.engine")


# eq=False: an event is a message, compared by identity. Value equality cost two more
# generated methods (__eq__, __hash__) per class, ~0.9 ms of every run's start-up; a
# FrozenRecord would compare and hash by value, so Event takes object's back.
# Each class writes its own __init__, one ``__dict__.update`` (no super() call): events are
# created per step, several per step, on the run's hot path.
class Event(FrozenRecord):
    """What every event carries: when it happened (``time.time()``)."""

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    at: float

    def __init__(self, *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at)

    if not TYPE_CHECKING:  # to mypy, an event has the attributes its class declares

        def __getattr__(self, name: str) -> float:
            """``at`` of an event whose class does not set it: a run feature's own event written
            as a frozen dataclass (as attest's were) gets a generated ``__init__`` that knows
            only its own fields. Its time is then when it is first read: by the observers the bus
            delivers it to, as it is published. Costs attest's events nothing: Python asks only
            for an attribute the instance lacks."""
            if name != "at":
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = time.time()
            self.__dict__["at"] = value
            return value


# RunStarted and RunFinished carry a frozen snapshot of the report (RunReport.snapshot()):
# assigning to it raises, and the run's later changes never reach an observer.
class RunStarted(Event):
    """A run begins: its pipeline, the steps selected and a snapshot of its report."""

    run_id: str
    pipeline: Pipeline
    selected: tuple[str, ...]
    parallel: int
    report: RunReport

    def __init__(self, run_id: str, pipeline: Pipeline, selected: tuple[str, ...],
                 parallel: int, report: RunReport, *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, run_id=run_id,
                             pipeline=pipeline, selected=selected, parallel=parallel,
                             report=report)


class StepStarted(Event):
    """A step leaves the queue: its cache lookup or its command begins, in ``slot``."""

    run_id: str
    step: str
    command: str  # secrets masked
    slot: int
    # the step cache is consulted before the command runs: a CacheChecked follows (unless
    # the lookup itself fails), and on a hit the step's StepOutput lines are its replayed log
    lookup: bool

    def __init__(self, run_id: str, step: str, command: str, slot: int, lookup: bool = False,
                 *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, run_id=run_id, step=step,
                             command=command, slot=slot, lookup=lookup)


class StepOutput(Event):
    """One line a step wrote (or, on a hit, one line of its replayed log)."""

    step: str
    line: str  # one line, without the newline, secrets masked

    def __init__(self, step: str, line: str, *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, step=step, line=line)


class CacheChecked(Event):
    """The step cache was asked: a hit or a miss, and on a miss what differs."""

    step: str
    backend: str
    hit: bool
    key: str | None
    reason: str | None  # on a miss: what differs from the last stored entry
    duration: float
    components: Mapping[str, str] | None
    up_to_date: bool  # decided by the up-to-date check, without a lookup

    def __init__(self, step: str, backend: str, hit: bool, key: str | None,
                 reason: str | None, duration: float,
                 components: Mapping[str, str] | None = None, up_to_date: bool = False,
                 *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, step=step, backend=backend,
                             hit=hit, key=key, reason=reason, duration=duration,
                             components=components, up_to_date=up_to_date)


class CacheStored(Event):
    """A step's outputs went (or did not go) into a cache tier."""

    step: str
    backend: str
    key: str
    bytes: int
    duration: float
    stored: bool
    reason: str | None  # why not stored, when stored is False

    def __init__(self, step: str, backend: str, key: str, bytes: int,
                 duration: float, stored: bool = True, reason: str | None = None,
                 *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, step=step, backend=backend,
                             key=key, bytes=bytes, duration=duration, stored=stored,
                             reason=reason)


class StepFinished(Event):
    """A step has its result: run, cached, failed or skipped."""

    run_id: str
    result: StepResult

    def __init__(self, run_id: str, result: StepResult, *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, run_id=run_id,
                             result=result)


class RunFinished(Event):
    """A run ended; observers write what they keep (reports, metrics, traces)."""

    report: RunReport

    def __init__(self, report: RunReport, *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, report=report)


class VerificationFinished(Event):
    """One verification: ``kind`` is signature, receipt or policy."""

    kind: str
    ok: bool
    reason: str | None
    duration: float

    def __init__(self, kind: str, ok: bool, reason: str | None, duration: float,
                 *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, kind=kind, ok=ok,
                             reason=reason, duration=duration)


class ReceiptSigned(Event):
    """The run's receipt was signed and written to ``path``."""

    path: str
    duration: float

    def __init__(self, path: str, duration: float, *, at: float | None = None) -> None:
        self.__dict__.update(at=time.time() if at is None else at, path=path,
                             duration=duration)


Observer = Callable[[Event], None]
"""An observer may also have an ``observed_events`` attribute: a tuple of the event classes
it acts on. The bus then never calls it with another kind (see :meth:`EventBus.publish`)."""


class Publisher(Protocol):
    """Anything events can be published on (the bus, a run feature's context)."""

    def publish(self, event: Event) -> None: ...


class EventBus:
    """Synchronous, serialized delivery: observers see events one at a time, in order."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._routes: dict[type[Event], tuple[Observer, ...]] = {}
        self._lock = threading.RLock()
        self._broken: set[int] = set()

    def subscribe(self, observer: Observer) -> None:
        with self._lock:
            self._observers.append(observer)
            self._routes.clear()

    def _route(self, kind: type[Event]) -> tuple[Observer, ...]:
        """The observers of events of ``kind``, in subscription order."""
        route = tuple(o for o in self._observers
                      if (wants := getattr(o, "observed_events", None)) is None
                      or issubclass(kind, wants))
        self._routes[kind] = route
        return route

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to each observer of its kind. Observers that declare their
        ``observed_events`` are not called with others: a 5,000-step no-op run publishes 15,000
        events, and each observer's chain of ``isinstance`` tests, for events it then
        ignored, was a measurable part of the run (issue 14)."""
        with self._lock:
            route = self._routes.get(type(event))
            for observer in route if route is not None else self._route(type(event)):
                try:
                    observer(event)
                except Exception as exc:
                    if id(observer) not in self._broken:
                        self._broken.add(id(observer))
                        name = getattr(observer, "__qualname__", type(observer).__name__)
                        log.warning("observer %s failed and was skipped: %s", name, exc,
                                    exc_info=log.isEnabledFor(logging.DEBUG))
