"""Zipkin's JSON v2 span format, POSTed to ``/api/v2/spans``.

The format is a small, stable JSON document, so it is encoded here with the standard library
rather than adding a dependency for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from attest_cli.tracing.exporters.base import HTTPPostExporter

_KIND = {1: "SERVER", 2: "CLIENT", 3: "PRODUCER", 4: "CONSUMER"}  # INTERNAL: no kind


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


def to_zipkin(span: Any) -> dict[str, Any]:
    ctx = span.context
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    resource = span.resource.attributes
    doc: dict[str, Any] = {
        "traceId": f"{ctx.trace_id:032x}",
        "id": f"{ctx.span_id:016x}",
        "name": span.name,
        "timestamp": start // 1000,
        "duration": max(1, (end - start) // 1000),
        "localEndpoint": {"serviceName": str(resource.get("service.name", "attest"))},
        "tags": {k: _text(v) for k, v in (span.attributes or {}).items()},
    }
    if span.parent is not None:
        doc["parentId"] = f"{span.parent.span_id:016x}"
    kind = _KIND.get(span.kind.value)
    if kind:
        doc["kind"] = kind
    status = span.status.status_code.value
    if status == 2:
        doc["tags"]["otel.status_code"] = "ERROR"
        doc["tags"]["error"] = span.status.description or "true"
    elif status == 1:
        doc["tags"]["otel.status_code"] = "OK"
    if span.events:
        doc["annotations"] = [{"timestamp": e.timestamp // 1000, "value": e.name}
                              for e in span.events]
    return doc


class ZipkinJSONExporter(HTTPPostExporter):
    """POSTs a JSON array of v2 spans."""

    content_type = "application/json"

    def encode(self, spans: Sequence[Any]) -> bytes:
        return json.dumps([to_zipkin(s) for s in spans]).encode("utf-8")
