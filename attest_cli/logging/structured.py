"""Structured logging (SPEC §5 "Logs", seed §3) on top of the standard library.

Loggers are named ``attest.<area>``; the JSON ``target`` is that name with ``::``
(``attest::pipeline``). Structured fields travel as ``extra={"fields": {...}}``. Levels are
TRACE, DEBUG, INFO, WARN, ERROR. Logs go to stderr so stdout stays clean for data.

``auto`` is JSON when stderr is not a terminal (a log shipper reads it), except under
GitHub Actions: there stdout and stderr are one console a person reads beside the
``::group::`` view, so ``auto`` is text and JSON lines appear only when asked for
(``--log-format json``, ``log_format: json``, ``ATTEST_LOG_FORMAT=json``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from attest_cli.redaction import redact_text

TRACE = 5
logging.addLevelName(TRACE, "TRACE")
logging.addLevelName(logging.WARNING, "WARN")

LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO,
          "warn": logging.WARNING, "warning": logging.WARNING, "error": logging.ERROR}

Mask = Callable[[str], str]
TraceIds = Callable[[], "tuple[str, str] | None"]


class RunLogScope(logging.Filter):
    """While a run is on, every attest log record carries that run's secret masker and
    the ids of its current span, which the formatters apply. The run service installs the
    scope on attest's handlers (``with RunLogScope(masker) as scope``) and hands it the
    trace ids tracing gave the run; nothing is kept in module globals."""

    def __init__(self, mask: Mask | None = None, trace_ids: TraceIds | None = None) -> None:
        super().__init__()
        self.mask = mask
        self.trace_ids = trace_ids
        self._handlers: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        record.attest_mask = self.mask
        record.attest_trace_ids = self.trace_ids
        return True

    def __enter__(self) -> RunLogScope:
        self._handlers = list(logging.getLogger("attest").handlers)
        for handler in self._handlers:
            handler.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for handler in self._handlers:
            handler.removeFilter(self)


def _mask(value: Any, masker: Mask | None = None) -> Any:
    """Credentials out of a message or field: URLs redacted always, secret values when known."""
    if isinstance(value, str):
        value = redact_text(value)
        return masker(value) if masker is not None else value
    if isinstance(value, dict):
        return {k: _mask(v, masker) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, masker) for v in value]
    return value


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + \
        f".{int(created % 1 * 1000):03d}Z"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, target, message, fields (+ trace ids)."""

    def format(self, record: logging.LogRecord) -> str:
        mask = getattr(record, "attest_mask", None)
        doc: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "target": record.name.replace(".", "::"),
            "message": _mask(record.getMessage(), mask),
            "fields": _mask(getattr(record, "fields", {}) or {}, mask),
        }
        trace_ids = getattr(record, "attest_trace_ids", None)
        ids = trace_ids() if trace_ids else None
        if ids:
            doc["trace_id"], doc["span_id"] = ids
        if record.exc_info:
            doc["exception"] = _mask(self.formatException(record.exc_info), mask)
        return json.dumps(doc, default=str, ensure_ascii=False)


_COLORS = {"TRACE": "\033[2m", "DEBUG": "\033[2m", "INFO": "\033[36m", "WARN": "\033[33m",
           "ERROR": "\033[31m"}


class TextFormatter(logging.Formatter):
    """Human lines: ``LEVEL target: message key=value ...``, coloured on terminals."""

    def __init__(self, color: bool) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        mask = getattr(record, "attest_mask", None)
        fields = _mask(getattr(record, "fields", {}) or {}, mask)
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        level = record.levelname
        label = f"{_COLORS.get(level, '')}{level:<5}\033[0m" if self.color else f"{level:<5}"
        msg = f"{label} {_mask(record.getMessage(), mask)}"
        if tail:
            msg += f" \033[2m{tail}\033[0m" if self.color else f"  {tail}"
        if record.exc_info:
            msg += "\n" + _mask(self.formatException(record.exc_info), mask)
        return msg


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever ``sys.stderr`` is *now* (rich's live view swaps it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._fixed = value if value is not sys.stderr else None


def resolve_format(log_format: str, stream: TextIO | None = None,
                   environ: Mapping[str, str] | None = None) -> str:
    """``auto`` becomes ``json`` when stderr is not a terminal, else ``text``; under GitHub
    Actions (``GITHUB_ACTIONS=true``) always ``text``, the console being read by people."""
    if log_format != "auto":
        return log_format
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":
        return "text"
    s = stream or sys.stderr
    return "text" if hasattr(s, "isatty") and s.isatty() else "json"


def configure(level: str, log_format: str, *, stream: TextIO | None = None,
              color: bool | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Install the single attest handler; returns the effective format."""
    fmt = resolve_format(log_format, stream, environ)
    root = logging.getLogger("attest")
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = StderrHandler(stream)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        if color is None:
            s = stream or sys.stderr
            color = s.isatty() and not os.environ.get("NO_COLOR")
        handler.setFormatter(TextFormatter(bool(color)))
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    root.propagate = False
    return fmt


def fields(**kw: Any) -> dict[str, Any]:
    """``log.info("msg", extra=fields(a=1))`` reads better than the nested dict."""
    return {"fields": kw}
