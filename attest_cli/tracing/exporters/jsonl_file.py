"""One JSON object per span, appended to a file (a CI artifact that needs no collector).

Append-only, so an export costs what it writes, however many runs the file already holds:
each export encodes its batch, takes an exclusive ``flock`` on the file and makes one
``write`` with ``O_APPEND`` (the kernel puts it at the end of the file, after whatever another
run appended meanwhile). The file is never read nor rewritten, so a crash can at worst leave
the *last* line torn; before appending, a writer that finds the file not ending in a newline
starts on a fresh line, so a torn line never swallows the next batch, and
:func:`read_records` skips it. Every line is at most :data:`MAX_LINE_BYTES`: a span whose
attributes would be longer has its longest values shortened and carries
``"truncated": true``.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from attest_cli.tracing.exporters.base import ExportResult, SpanExporterBase

MAX_LINE_BYTES = 65_536  # one span's line, newline included
MAX_VALUE_CHARS = 1_024  # what a long attribute value is cut to when a line is too long
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


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "…"
    if isinstance(value, list | tuple) and len(json.dumps(value, default=str)) > MAX_VALUE_CHARS:
        return _shorten(json.dumps(value, default=str))
    return value


def _line(record: dict[str, Any]) -> bytes:
    """orjson (a span's line in a tenth of the standard library's time, on the export
    thread that shares the interpreter with the run); the standard library for what orjson
    refuses (a lone surrogate from a file name that is not UTF-8), which it escapes."""
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return (json.dumps(record, default=str) + "\n").encode("utf-8")


def encode_line(record: dict[str, Any]) -> bytes:
    """One record as one line of at most :data:`MAX_LINE_BYTES` (shortened when longer)."""
    line = _line(record)
    if len(line) <= MAX_LINE_BYTES:
        return line
    record = dict(record, truncated=True, status=dict(record["status"]))
    record["status"]["description"] = _shorten(record["status"]["description"])
    record["attributes"] = {k: _shorten(v) for k, v in record["attributes"].items()}
    record["resource"] = {k: _shorten(v) for k, v in record["resource"].items()}
    record["events"] = [dict(e, attributes={k: _shorten(v) for k, v in e["attributes"].items()})
                        for e in record["events"]]
    record["name"] = _shorten(record["name"])
    line = _line(record)
    if len(line) <= MAX_LINE_BYTES:
        return line
    # still too long (thousands of attributes): keep what identifies and times the span
    record["attributes"], record["events"] = {}, []
    return _line(record)


def append_lines(path: Path, data: bytes) -> None:
    """Append ``data`` (whole lines) to ``path`` in one write, under an exclusive lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # other runs appending to the same file wait here
        size = os.fstat(fd).st_size
        if size and _last_byte(path, size) != b"\n":
            data = b"\n" + data  # a crashed writer's torn line stays on a line of its own
        view = memoryview(data)
        while view:  # one write for a regular file; the loop covers a signal's short write
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)  # releases the lock


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(size - 1)
        return f.read(1)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The spans of a file the exporter wrote, skipping a line a crash left torn."""
    with path.open("rb") as f:
        for raw in f:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


class JSONLinesFileExporter(SpanExporterBase):
    """Appends JSON lines to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[Any]) -> Any:
        data = b"".join(encode_line(to_record(s)) for s in spans)
        try:
            append_lines(self.path, data)
        except OSError as exc:
            self.last_error = str(exc)
            return ExportResult.FAILURE
        return ExportResult.SUCCESS
