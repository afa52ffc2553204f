"""What attest's own exporters share: the SpanExporter shape and a POST of encoded spans."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from attest_cli import deadline

log = logging.getLogger("attest.tracing")


class SpanExporterBase:
    """Duck-types ``opentelemetry.sdk.trace.export.SpanExporter`` (so importing this module
    stays free of the SDK); ``export`` returns the SDK's ``SpanExportResult``."""

    last_error: str | None = None

    def export(self, spans: Sequence[Any]) -> Any:
        raise NotImplementedError

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class HTTPPostExporter(SpanExporterBase):
    """POSTs ``encode(spans)`` with ``content_type``; failures become FAILURE and last_error.
    ``timeout`` bounds each export as a whole (:func:`attest_cli.deadline.http_request`)."""

    content_type = "application/octet-stream"

    def __init__(self, endpoint: str, *, headers: Mapping[str, str], timeout: float) -> None:
        self.endpoint = endpoint
        self.headers = dict(headers)
        self.timeout = timeout

    def encode(self, spans: Sequence[Any]) -> bytes:
        raise NotImplementedError

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if not spans:
            return SpanExportResult.SUCCESS
        try:
            deadline.http_request(self.endpoint, data=self.encode(spans), method="POST",
                                  headers={"Content-Type": self.content_type, **self.headers},
                                  seconds=self.timeout, what=f"{type(self).__name__} export")
        except Exception as exc:
            self.last_error = str(exc) or type(exc).__name__
            log.debug("%s export to %s failed: %s", type(self).__name__, self.endpoint, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class DeadlineExporter(SpanExporterBase):
    """Bounds every ``export`` of a library exporter (OTLP) by a *total* deadline.

    The OTLP exporters' ``timeout`` bounds each socket read and their retry loop, but a
    collector that answers a byte at a time keeps one read alive indefinitely and would
    stall every later batch behind it; past the deadline the batch is a FAILURE and the
    next one gets a fresh chance.
    """

    def __init__(self, inner: Any, *, timeout: float, name: str) -> None:
        self.inner = inner
        self.timeout = timeout
        self.name = name

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            return deadline.call(lambda: self.inner.export(spans), seconds=self.timeout,
                                 what=f"{self.name} export")
        except (deadline.DeadlineExceeded, deadline.Cancelled) as exc:
            self.last_error = str(exc)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        try:
            deadline.call(self.inner.shutdown, seconds=self.timeout,
                          what=f"{self.name} shutdown")
        except (deadline.DeadlineExceeded, deadline.Cancelled) as exc:
            log.debug("%s", exc)
