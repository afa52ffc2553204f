"""Jaeger's Thrift-over-HTTP collector protocol (``POST /api/traces``, binary Thrift).

The seed's endpoint ``http://jaeger:14268/api/traces`` is Jaeger's Thrift collector, which
Jaeger still accepts. The OpenTelemetry Jaeger exporter that spoke it
(``opentelemetry-exporter-jaeger-thrift`` 1.21) no longer imports with the current SDK, so
the few structs it needs are declared here from the public IDL
(jaegertracing/jaeger-idl ``thrift/jaeger.thrift``: Batch, Process, Span, SpanRef, Tag, Log)
and encoded with the ``thrift`` runtime's binary protocol (its ``TBase`` reads a
``thrift_spec`` table, so no code generation is involved).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thrift.protocol import TBinaryProtocol
from thrift.protocol.TBase import TBase
from thrift.Thrift import TType
from thrift.transport import TTransport

from attest_cli.tracing.exporters.base import HTTPPostExporter

# enum TagType { STRING, DOUBLE, BOOL, LONG, BINARY }
TAG_STRING, TAG_DOUBLE, TAG_BOOL, TAG_LONG, TAG_BINARY = range(5)
# enum SpanRefType { CHILD_OF, FOLLOWS_FROM }
CHILD_OF, FOLLOWS_FROM = 0, 1


class _Struct(TBase):
    """A struct whose fields are its ``__slots__``, set by keyword (unset fields stay None
    and are not written)."""

    __slots__: tuple[str, ...] = ()
    thrift_spec: tuple[Any, ...] = ()

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


class Tag(_Struct):
    __slots__ = ("key", "vBinary", "vBool", "vDouble", "vLong", "vStr", "vType")
    thrift_spec: tuple[Any, ...] = (
        None,
        (1, TType.STRING, "key", "UTF8", None),
        (2, TType.I32, "vType", None, None),
        (3, TType.STRING, "vStr", "UTF8", None),
        (4, TType.DOUBLE, "vDouble", None, None),
        (5, TType.BOOL, "vBool", None, None),
        (6, TType.I64, "vLong", None, None),
        (7, TType.STRING, "vBinary", "BINARY", None),
    )


class Log(_Struct):
    __slots__ = ("fields", "timestamp")
    thrift_spec: tuple[Any, ...] = (
        None,
        (1, TType.I64, "timestamp", None, None),
        (2, TType.LIST, "fields", (TType.STRUCT, (Tag, Tag.thrift_spec), False), None),
    )


class SpanRef(_Struct):
    __slots__ = ("refType", "spanId", "traceIdHigh", "traceIdLow")
    thrift_spec: tuple[Any, ...] = (
        None,
        (1, TType.I32, "refType", None, None),
        (2, TType.I64, "traceIdLow", None, None),
        (3, TType.I64, "traceIdHigh", None, None),
        (4, TType.I64, "spanId", None, None),
    )


class Span(_Struct):
    __slots__ = ("duration", "flags", "logs", "operationName", "parentSpanId", "references",
                 "spanId", "startTime", "tags", "traceIdHigh", "traceIdLow")
    thrift_spec: tuple[Any, ...] = (
        None,
        (1, TType.I64, "traceIdLow", None, None),
        (2, TType.I64, "traceIdHigh", None, None),
        (3, TType.I64, "spanId", None, None),
        (4, TType.I64, "parentSpanId", None, None),
        (5, TType.STRING, "operationName", "UTF8", None),
        (6, TType.LIST, "references", (TType.STRUCT, (SpanRef, SpanRef.thrift_spec), False),
         None),
        (7, TType.I32, "flags", None, None),
        (8, TType.I64, "startTime", None, None),
        (9, TType.I64, "duration", None, None),
        (10, TType.LIST, "tags", (TType.STRUCT, (Tag, Tag.thrift_spec), False), None),
        (11, TType.LIST, "logs", (TType.STRUCT, (Log, Log.thrift_spec), False), None),
    )


class Process(_Struct):
    __slots__ = ("serviceName", "tags")
    thrift_spec: tuple[Any, ...] = (
        None,
        (1, TType.STRING, "serviceName", "UTF8", None),
        (2, TType.LIST, "tags", (TType.STRUCT, (Tag, Tag.thrift_spec), False), None),
    )


class Batch(_Struct):
    __slots__ = ("process", "spans")
    thrift_spec: tuple[Any, ...] = (
        None,
        (1, TType.STRUCT, "process", (Process, Process.thrift_spec), None),
        (2, TType.LIST, "spans", (TType.STRUCT, (Span, Span.thrift_spec), False), None),
    )


def signed64(value: int) -> int:
    """Thrift i64 is signed; ids are unsigned bit patterns."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def tag(key: str, value: Any) -> Tag:
    if isinstance(value, bool):
        return Tag(key=key, vType=TAG_BOOL, vBool=value)
    if isinstance(value, int):
        return Tag(key=key, vType=TAG_LONG, vLong=signed64(value))
    if isinstance(value, float):
        return Tag(key=key, vType=TAG_DOUBLE, vDouble=value)
    if isinstance(value, list | tuple):
        return Tag(key=key, vType=TAG_STRING, vStr=",".join(map(str, value)))
    return Tag(key=key, vType=TAG_STRING, vStr=str(value))


_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_KIND = {0: "internal", 1: "server", 2: "client", 3: "producer", 4: "consumer"}


def to_jaeger(span: Any) -> Span:
    """An OpenTelemetry ReadableSpan as a Jaeger span (the mapping the old exporter used)."""
    ctx = span.context
    parent = span.parent.span_id if span.parent is not None else 0
    tags = [tag(k, v) for k, v in (span.attributes or {}).items()]
    tags.append(tag("span.kind", _KIND.get(span.kind.value, "internal")))
    status = span.status.status_code.value
    if status != 0:
        tags.append(tag("otel.status_code", _STATUS[status]))
        if span.status.description:
            tags.append(tag("otel.status_description", span.status.description))
        if status == 2:
            tags.append(tag("error", True))
    scope = getattr(span, "instrumentation_scope", None)
    if scope is not None:
        tags.append(tag("otel.scope.name", scope.name))
    logs = [Log(timestamp=e.timestamp // 1000,
                fields=[tag("event", e.name),
                        *(tag(k, v) for k, v in (e.attributes or {}).items())])
            for e in span.events]
    refs = None
    if parent:
        refs = [SpanRef(refType=CHILD_OF, traceIdLow=signed64(ctx.trace_id),
                        traceIdHigh=signed64(ctx.trace_id >> 64), spanId=signed64(parent))]
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    return Span(traceIdLow=signed64(ctx.trace_id), traceIdHigh=signed64(ctx.trace_id >> 64),
                spanId=signed64(ctx.span_id), parentSpanId=signed64(parent),
                operationName=span.name, references=refs, flags=int(ctx.trace_flags),
                startTime=start // 1000, duration=max(0, end - start) // 1000, tags=tags,
                logs=logs or None)


def encode_batch(spans: Sequence[Any]) -> bytes:
    """One Thrift Batch per export call; the process comes from the first span's resource."""
    resource = spans[0].resource.attributes if spans else {}
    service = str(resource.get("service.name", "attest"))
    process = Process(serviceName=service,
                      tags=[tag(k, v) for k, v in resource.items() if k != "service.name"])
    buf = TTransport.TMemoryBuffer()
    Batch(process=process, spans=[to_jaeger(s) for s in spans]).write(
        TBinaryProtocol.TBinaryProtocol(buf))
    return buf.getvalue()


class JaegerThriftExporter(HTTPPostExporter):
    """POSTs one binary Thrift ``Batch`` per export as ``application/x-thrift``."""

    content_type = "application/x-thrift"

    def encode(self, spans: Sequence[Any]) -> bytes:
        return encode_batch(spans)
