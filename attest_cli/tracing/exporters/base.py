"""What attest's own exporters share: the SpanExporter shape and a POST of encoded spans."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

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
    """POSTs ``encode(spans)`` with ``content_type``; failures become FAILURE and last_error."""

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
        request = urllib.request.Request(
            self.endpoint, data=self.encode(spans), method="POST",
            headers={"Content-Type": self.content_type, **self.headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except Exception as exc:
            self.last_error = str(exc) or type(exc).__name__
            log.debug("%s export to %s failed: %s", type(self).__name__, self.endpoint, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
