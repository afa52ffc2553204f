"""Spans recorded without the OpenTelemetry SDK, handed to the SDK only on the export thread.

A run's spans are plain Python records: importing the SDK (its tracer provider pulls in the
metrics API, resources, samplers and processors, ~50 ms) and building SDK span objects
under its locks and attribute checks was the largest part of what tracing added to a run.
A :class:`RecordedSpan` has the fields an exporter reads from the SDK's ``ReadableSpan``
(``context``, ``parent``, ``kind``, ``status``, ``events``, ``resource``,
``instrumentation_scope``...), so attest's own exporters (file, Jaeger, Zipkin) take it as
is, and :func:`to_readable` converts a batch, on the export thread, for the exporters that
need the SDK's class (the OTLP encoder, the console exporter).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import Any, NamedTuple


class SpanKind(IntEnum):
    """Values of ``opentelemetry.trace.SpanKind``."""

    INTERNAL = 0
    SERVER = 1
    CLIENT = 2
    PRODUCER = 3
    CONSUMER = 4


class StatusCode(IntEnum):
    """Values of ``opentelemetry.trace.StatusCode``."""

    UNSET = 0
    OK = 1
    ERROR = 2


class SpanIds(NamedTuple):
    """The fields of a ``SpanContext`` that exporters read."""

    trace_id: int
    span_id: int
    trace_flags: int = 1  # sampled: every span is recorded, the processor decides later
    is_remote: bool = False
    trace_state: tuple[tuple[str, str], ...] = ()


class Status(NamedTuple):
    status_code: StatusCode = StatusCode.UNSET
    description: str | None = None


class Event(NamedTuple):
    name: str
    attributes: Mapping[str, Any]
    timestamp: int


class Resource(NamedTuple):
    attributes: Mapping[str, Any]


class Scope(NamedTuple):
    name: str
    version: str


def new_trace_id() -> int:
    """128 random bits, never zero (as the SDK's RandomIdGenerator), from the system's
    generator: ``random`` and what it imports were ~2 ms of a traced run's start-up."""
    while True:
        value = int.from_bytes(os.urandom(16), "big")
        if value:
            return value


def new_span_id() -> int:
    while True:
        value = int.from_bytes(os.urandom(8), "big")
        if value:
            return value


class RecordedSpan:
    """One span: set attributes, add events, set a status, end it once."""

    __slots__ = ("_on_end", "attributes", "context", "end_time", "events",
                 "instrumentation_scope", "kind", "name", "parent", "resource", "start_time",
                 "status")

    def __init__(self, name: str, *, context: SpanIds, parent: SpanIds | None,
                 kind: SpanKind, start_time: int, attributes: Mapping[str, Any],
                 resource: Resource, scope: Scope,
                 on_end: Callable[[RecordedSpan], None]) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start_time = start_time
        self.end_time: int | None = None
        self.attributes: dict[str, Any] = dict(attributes)
        self.events: list[Event] = []
        self.status = Status()
        self.resource = resource
        self.instrumentation_scope = scope
        self._on_end = on_end

    def get_span_context(self) -> SpanIds:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.end_time is None and value is not None:
            self.attributes[key] = value

    def set_attributes(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None,
                  timestamp: int | None = None) -> None:
        if self.end_time is None:
            self.events.append(Event(name, dict(attributes or {}),
                                     timestamp if timestamp is not None else time.time_ns()))

    def set_status(self, code: StatusCode, description: str | None = None) -> None:
        if self.end_time is None:
            self.status = Status(code, description if code is StatusCode.ERROR else None)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time if end_time is not None else time.time_ns()
        self._on_end(self)


def to_readable(spans: Sequence[Any]) -> list[Any]:
    """The SDK's ``ReadableSpan`` of each span (SDK spans pass through unchanged)."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource as SDKResource
    from opentelemetry.sdk.trace import Event as SDKEvent
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace.span import TraceState

    resources: dict[int, Any] = {}
    scopes: dict[int, Any] = {}

    def context(ids: SpanIds) -> Any:
        return trace.SpanContext(ids.trace_id, ids.span_id, is_remote=ids.is_remote,
                                 trace_flags=trace.TraceFlags(ids.trace_flags),
                                 trace_state=TraceState(list(ids.trace_state)))

    out: list[Any] = []
    for s in spans:
        if not isinstance(s, RecordedSpan):
            out.append(s)
            continue
        resource = resources.get(id(s.resource))
        if resource is None:
            resource = resources[id(s.resource)] = SDKResource(dict(s.resource.attributes))
        scope = scopes.get(id(s.instrumentation_scope))
        if scope is None:
            scope = scopes[id(s.instrumentation_scope)] = InstrumentationScope(
                s.instrumentation_scope.name, s.instrumentation_scope.version)
        out.append(ReadableSpan(
            name=s.name, context=context(s.context),
            parent=context(s.parent) if s.parent is not None else None,
            resource=resource, attributes=s.attributes,
            events=[SDKEvent(e.name, dict(e.attributes), e.timestamp) for e in s.events],
            kind=trace.SpanKind(int(s.kind)),
            status=trace.Status(trace.StatusCode(int(s.status.status_code)),
                                s.status.description),
            start_time=s.start_time, end_time=s.end_time, instrumentation_scope=scope))
    return out
