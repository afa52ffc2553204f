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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from attest_cli.engine.run_report import RunReport, StepResult
    from attest_cli.pipeline.model import Pipeline

log = logging.getLogger("attest.engine")


# eq=False: an event is a message, compared by identity. Value equality cost two more
# generated methods (__eq__, __hash__) per class, ~0.9 ms of every run's start-up.
@dataclass(frozen=True, eq=False)
class Event:
    """What every event carries: when it happened (``time.time()``)."""

    at: float = field(default_factory=time.time, kw_only=True)


# RunStarted and RunFinished carry a frozen snapshot of the report (RunReport.snapshot()):
# assigning to it raises, and the run's later changes never reach an observer.
@dataclass(frozen=True, eq=False)
class RunStarted(Event):
    """A run begins: its pipeline, the steps selected and a snapshot of its report."""

    run_id: str
    pipeline: Pipeline
    selected: tuple[str, ...]
    parallel: int
    report: RunReport


@dataclass(frozen=True, eq=False)
class StepStarted(Event):
    """A step leaves the queue: its cache lookup or its command begins, in ``slot``."""

    run_id: str
    step: str
    command: str  # secrets masked
    slot: int
    # the step cache is consulted before the command runs: a CacheChecked follows (unless
    # the lookup itself fails), and on a hit the step's StepOutput lines are its replayed log
    lookup: bool = False


@dataclass(frozen=True, eq=False)
class StepOutput(Event):
    """One line a step wrote (or, on a hit, one line of its replayed log)."""

    step: str
    line: str  # one line, without the newline, secrets masked


@dataclass(frozen=True, eq=False)
class CacheChecked(Event):
    """The step cache was asked: a hit or a miss, and on a miss what differs."""

    step: str
    backend: str
    hit: bool
    key: str | None
    reason: str | None  # on a miss: what differs from the last stored entry
    duration: float
    components: Mapping[str, str] | None = None
    up_to_date: bool = False  # decided by the up-to-date check, without a lookup


@dataclass(frozen=True, eq=False)
class CacheStored(Event):
    """A step's outputs went (or did not go) into a cache tier."""

    step: str
    backend: str
    key: str
    bytes: int
    duration: float
    stored: bool = True
    reason: str | None = None  # why not stored, when stored is False


@dataclass(frozen=True, eq=False)
class StepFinished(Event):
    """A step has its result: run, cached, failed or skipped."""

    run_id: str
    result: StepResult


@dataclass(frozen=True, eq=False)
class RunFinished(Event):
    """A run ended; observers write what they keep (reports, metrics, traces)."""

    report: RunReport


@dataclass(frozen=True, eq=False)
class VerificationFinished(Event):
    """One verification: ``kind`` is signature, receipt or policy."""

    kind: str
    ok: bool
    reason: str | None
    duration: float


@dataclass(frozen=True, eq=False)
class ReceiptSigned(Event):
    """The run's receipt was signed and written to ``path``."""

    path: str
    duration: float


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
