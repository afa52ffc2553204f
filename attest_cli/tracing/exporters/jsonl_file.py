"""One JSON object per span, appended to a file (a CI artifact that needs no collector).

Several runs may share the file (a nested ``attest run`` inside a step writes to it while the
outer run is still going), so each export takes an exclusive lock on the directory, reads the
current content and replaces the file atomically with the old lines plus the new ones: a
reader never sees a half-written line and no writer loses another's spans.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attest_cli.atomic import write_atomic
from attest_cli.tracing.exporters.base import SpanExporterBase

_KIND = {0: "internal", 1: "server", 2: "client", 3: "producer", 4: "consumer"}
_STATUS = {0: "unset", 1: "ok", 2: "error"}


def _iso(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac // 1000:06d}Z"


def to_record(span: Any) -> dict[str, Any]:
    ctx = span.context
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "name": span.name,
        "kind": _KIND.get(span.kind.value, "internal"),
        "start_time": _iso(start),
        "end_time": _iso(end),
        "start_unix_nano": start,
        "end_unix_nano": end,
        "duration_ms": round((end - start) / 1e6, 3),
        "status": {"code": _STATUS[span.status.status_code.value],
                   "description": span.status.description},
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "time": _iso(e.timestamp),
                    "attributes": dict(e.attributes or {})} for e in span.events],
        "resource": dict(span.resource.attributes),
        "trace_flags": int(ctx.trace_flags),
    }


class JSONLinesFileExporter(SpanExporterBase):
    """Writes JSON lines to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = "".join(json.dumps(to_record(s), default=str) + "\n" for s in spans)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    old = self.path.read_text(encoding="utf-8")
                except FileNotFoundError:
                    old = ""
                if old and not old.endswith("\n"):
                    old += "\n"
                write_atomic(self.path, old + lines)
            finally:
                os.close(fd)  # releases the lock
        except OSError as exc:
            self.last_error = str(exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
