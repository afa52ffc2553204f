"""Loopback trace receivers that decode the real wire formats (used by the tracing tests).

Each receiver turns what it got into the same plain span dicts: ``trace_id``, ``span_id``,
``parent_id`` (hex; None for a root without parent), ``name``, ``attrs``, ``error``,
``service``. The Jaeger receiver decodes Thrift field by field with the ``thrift``
library's binary protocol, independently of attest's own struct declarations, so a wrong
field id or type in attest would show up here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import free_port

Span = dict[str, Any]


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw and any(raw) else None


def _any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def spans_from_otlp(request: Any) -> list[Span]:
    out: list[Span] = []
    for rs in request.resource_spans:
        resource = {a.key: _any_value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                    "parent_id": _hex(s.parent_span_id), "name": s.name,
                    "attrs": {a.key: _any_value(a.value) for a in s.attributes},
                    "error": s.status.code == 2, "service": resource.get("service.name"),
                    "resource": resource, "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano, "events": [e.name for e in s.events],
                    "flags": s.flags,
                })
    return out


class _Collected:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.content_types: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def add(self, spans: list[Span], content_type: str = "") -> None:
        with self.lock:
            self.spans.extend(spans)
            self.requests += 1
            self.content_types.append(content_type)


@contextmanager
def _http_receiver(decode: Any, reply: bytes = b"", reply_type: str = "text/plain"
                   ) -> Iterator[tuple[_Collected, int]]:
    got = _Collected()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.add(decode(body, self.path), self.headers.get("Content-Type", ""))
            got.headers.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200 if self.path != "/wrong" else 404)
            self.send_header("Content-Type", reply_type)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got, port
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def otlp_http_receiver() -> Iterator[tuple[_Collected, str]]:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb

    def decode(body: bytes, path: str) -> list[Span]:
        assert path == "/v1/traces", path
        req = pb.ExportTraceServiceRequest()
        req.ParseFromString(body)
        return spans_from_otlp(req)

    reply = pb.ExportTraceServiceResponse().SerializeToString()
    with _http_receiver(decode, reply, "application/x-protobuf") as (got, port):
        yield got, f"http://127.0.0.1:{port}"


@contextmanager
def otlp_grpc_receiver() -> Iterator[tuple[_Collected, str]]:
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as pbg

    got = _Collected()

    class Servicer(pbg.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            got.add(spans_from_otlp(request), "application/grpc")
            got.headers.append(dict(context.invocation_metadata()))
            return pb.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pbg.add_TraceServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield got, f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


# -- Jaeger Thrift, decoded generically ---------------------------------------------------

def read_thrift_struct(proto: Any) -> dict[int, Any]:
    """A Thrift struct as {field id: value}, using only the protocol's own readers."""
    from thrift.Thrift import TType

    def value(ttype: int) -> Any:
        if ttype == TType.STRUCT:
            return read_thrift_struct(proto)
        if ttype == TType.LIST:
            etype, size = proto.readListBegin()
            items = [value(etype) for _ in range(size)]
            proto.readListEnd()
            return items
        if ttype == TType.STRING:
            raw = proto.readBinary()
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw
        readers = {TType.I64: proto.readI64, TType.I32: proto.readI32,
                   TType.I16: proto.readI16, TType.BYTE: proto.readByte,
                   TType.DOUBLE: proto.readDouble, TType.BOOL: proto.readBool}
        return readers[ttype]()

    fields: dict[int, Any] = {}
    proto.readStructBegin()
    while True:
        _name, ttype, fid = proto.readFieldBegin()
        if ttype == TType.STOP:
            break
        fields[fid] = value(ttype)
        proto.readFieldEnd()
    proto.readStructEnd()
    return fields


def _u64(v: int) -> int:
    return v & 0xFFFFFFFFFFFFFFFF


def _jaeger_tags(tags: list[dict[int, Any]] | None) -> dict[str, Any]:
    # Tag: 1 key, 2 vType (0 STRING 1 DOUBLE 2 BOOL 3 LONG 4 BINARY), 3 vStr, 4 vDouble,
    # 5 vBool, 6 vLong, 7 vBinary
    slot = {0: 3, 1: 4, 2: 5, 3: 6, 4: 7}
    return {t[1]: t.get(slot[t[2]]) for t in tags or []}


def spans_from_jaeger(body: bytes) -> list[Span]:
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport

    batch = read_thrift_struct(TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(body)))
    process = batch[1]  # Batch: 1 process, 2 spans
    out = []
    for s in batch[2]:
        # Span: 1 traceIdLow 2 traceIdHigh 3 spanId 4 parentSpanId 5 operationName
        # 6 references 7 flags 8 startTime 9 duration 10 tags 11 logs
        tags = _jaeger_tags(s.get(10))
        trace_id = (_u64(s[2]) << 64) | _u64(s[1])
        out.append({
            "trace_id": f"{trace_id:032x}", "span_id": f"{_u64(s[3]):016x}",
            "parent_id": f"{_u64(s[4]):016x}" if s[4] else None, "name": s[5],
            "attrs": tags, "error": tags.get("error") is True, "service": process[1],
            "resource": _jaeger_tags(process.get(2)), "start": s[8] * 1000,
            "end": (s[8] + s[9]) * 1000, "flags": s[7],
            "references": [{"type": r[1], "trace_low": _u64(r[2]), "span_id": f"{_u64(r[4]):016x}"}
                           for r in s.get(6) or []],
        })
    return out


@contextmanager
def jaeger_thrift_receiver() -> Iterator[tuple[_Collected, str]]:
    def decode(body: bytes, path: str) -> list[Span]:
        assert path == "/api/traces", path
        return spans_from_jaeger(body)

    with _http_receiver(decode) as (got, port):
        yield got, f"http://127.0.0.1:{port}/api/traces"


def _zipkin_event(annotation: dict[str, Any]) -> dict[str, Any]:
    """An annotation as an event: OpenTelemetry's Zipkin mapping writes the value as the JSON
    ``{"<event name>": {<attributes>}}``; a plain string is a name without attributes."""
    try:
        value = json.loads(annotation["value"])
    except ValueError:
        value = None
    if isinstance(value, dict) and len(value) == 1:
        ((name, attrs),) = value.items()
        return {"name": name, "attrs": attrs, "timestamp": annotation["timestamp"]}
    return {"name": annotation["value"], "attrs": {}, "timestamp": annotation["timestamp"]}


def spans_from_zipkin(docs: list[dict[str, Any]]) -> list[Span]:
    return [{"trace_id": d["traceId"], "span_id": d["id"], "parent_id": d.get("parentId"),
             "name": d["name"], "attrs": d.get("tags", {}),
             "error": "error" in d.get("tags", {}),
             "service": d["localEndpoint"]["serviceName"], "start": d["timestamp"] * 1000,
             "end": (d["timestamp"] + d["duration"]) * 1000,
             "events": [_zipkin_event(a) for a in d.get("annotations", [])]} for d in docs]


@contextmanager
def zipkin_receiver() -> Iterator[tuple[_Collected, str]]:
    def decode(body: bytes, path: str) -> list[Span]:
        assert path == "/api/v2/spans", path
        return spans_from_zipkin(json.loads(body))

    with _http_receiver(decode, b"", "application/json") as (got, port):
        yield got, f"http://127.0.0.1:{port}/api/v2/spans"


def spans_from_file(text: str) -> list[Span]:
    out = []
    for line in text.splitlines():
        d = json.loads(line)
        out.append({"trace_id": d["trace_id"], "span_id": d["span_id"],
                    "parent_id": d["parent_span_id"], "name": d["name"],
                    "attrs": d["attributes"], "error": d["status"]["code"] == "error",
                    "service": d["resource"].get("service.name"), "start": d["start_unix_nano"],
                    "end": d["end_unix_nano"], "resource": d["resource"]})
    return out
