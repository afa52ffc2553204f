"""What attest's own exporters share: the SpanExporter shape and a POST of encoded spans."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from attest_cli import deadline

log = logging.getLogger("attest.tracing")


class ExportResult(Enum):
    """Mirrors the SDK's ``SpanExportResult`` (the export queue compares by name)."""

    SUCCESS = 0
    FAILURE = 1


class SpanExporterBase:
    """Duck-types ``opentelemetry.sdk.trace.export.SpanExporter`` (so importing this module
    stays free of the SDK); ``export`` returns an :class:`ExportResult`.

    ``takes_recorded_spans``: the exporter reads attest's own
    :class:`~attest_cli.tracing.spans.RecordedSpan` (the SDK is never loaded for it); False
    makes the export queue hand it the SDK's ``ReadableSpan``.
    """

    last_error: str | None = None
    takes_recorded_spans = True

    def export(self, spans: Sequence[Any]) -> Any:
        raise NotImplementedError

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class HTTPPostExporter(SpanExporterBase):
    """POSTs ``encode(spans)`` with ``content_type``; failures become FAILURE and last_error.

    ``timeout`` bounds each export as a whole (:func:`attest_cli.deadline.http_request`),
    retries included. Only what a collector says is passing (429, 502, 503, 504) is retried,
    with a short backoff while the deadline allows; a refused connection, an unknown host
    or any other error ends the export at once: nothing listening will not start
    listening within a run's exit flush.
    """

    content_type = "application/octet-stream"

    def __init__(self, endpoint: str, *, headers: Mapping[str, str], timeout: float) -> None:
        self.endpoint = endpoint
        self.headers = dict(headers)
        self.timeout = timeout

    def encode(self, spans: Sequence[Any]) -> bytes:
        raise NotImplementedError

    def export(self, spans: Sequence[Any]) -> Any:
        if not spans:
            return ExportResult.SUCCESS
        try:
            self._post(self.encode(spans))
        except Exception as exc:
            self.last_error = _describe(exc)
            log.debug("%s export to %s failed: %s", type(self).__name__, self.endpoint, exc)
            return ExportResult.FAILURE
        return ExportResult.SUCCESS

    def _post(self, body: bytes) -> None:
        import urllib.error

        end = time.monotonic() + self.timeout
        headers = {"Content-Type": self.content_type, **self.headers}
        backoff = RETRY_FIRST_BACKOFF
        while True:
            left = end - time.monotonic()
            try:
                deadline.http_request(self.endpoint, data=body, method="POST", headers=headers,
                                      seconds=max(0.01, left),
                                      what=f"{type(self).__name__} export")
                return
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRYABLE_STATUS or end - time.monotonic() <= backoff:
                    raise
            time.sleep(backoff)
            backoff *= 2


RETRYABLE_STATUS = frozenset({429, 502, 503, 504})  # as the OTLP specification lists them
RETRY_FIRST_BACKOFF = 0.25  # seconds, doubled per retry, always within the export timeout


def _describe(exc: Exception) -> str:
    """``connection refused`` rather than ``<urlopen error [Errno 111] ...>``."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, OSError):
        return (reason.strerror or str(reason)).lower()
    return str(exc) or type(exc).__name__


class DeadlineExporter(SpanExporterBase):
    """Bounds every ``export`` of a library exporter (OTLP) by a *total* deadline.

    The OTLP exporters' ``timeout`` bounds each socket read and their retry loop, but a
    collector that answers a byte at a time keeps one read alive indefinitely and would
    stall every later batch behind it; past the deadline the batch is a FAILURE and the
    next one gets a fresh chance.
    """

    takes_recorded_spans = False  # the SDK's exporters read the SDK's ReadableSpan

    def __init__(self, inner: Any, *, timeout: float, name: str) -> None:
        self.inner = inner
        self.timeout = timeout
        self.name = name

    def export(self, spans: Sequence[Any]) -> Any:
        try:
            return deadline.call(lambda: self.inner.export(spans), seconds=self.timeout,
                                 what=f"{self.name} export")
        except (deadline.DeadlineExceeded, deadline.Cancelled) as exc:
            self.last_error = str(exc)
            return ExportResult.FAILURE

    def shutdown(self) -> None:
        try:
            deadline.call(self.inner.shutdown, seconds=self.timeout,
                          what=f"{self.name} shutdown")
        except (deadline.DeadlineExceeded, deadline.Cancelled) as exc:
            log.debug("%s", exc)
