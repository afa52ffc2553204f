"""OTLP/HTTP with protobuf bodies, POSTed with the standard library.

The SDK's ``OTLPSpanExporter`` (HTTP) brings ``requests`` and its dependencies on the run's
path and retries a refused connection with backoff until its timeout. The request body is
the same: ``opentelemetry-exporter-otlp-proto-common``'s encoder builds the
``ExportTraceServiceRequest``; attest only POSTs it (:class:`HTTPPostExporter`: one total
deadline, transient statuses retried, a refusal final).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attest_cli.tracing.exporters.base import HTTPPostExporter


class OTLPHTTPExporter(HTTPPostExporter):
    """POSTs one ``ExportTraceServiceRequest`` per export as ``application/x-protobuf``."""

    content_type = "application/x-protobuf"
    takes_recorded_spans = False  # the encoder reads the SDK's ReadableSpan

    def encode(self, spans: Sequence[Any]) -> bytes:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        return bytes(encode_spans(spans).SerializeToString())
