"""Zipkin's JSON v2 span format, POSTed to ``/api/v2/spans``.

The body is built by ``opentelemetry-exporter-zipkin-json``'s ``JsonV2Encoder``, the
OpenTelemetry project's own mapping to Zipkin: attributes and resource attributes become
tags, the status ``otel.status_code``/``error``, and each span event an annotation whose
value is ``{"<event name>": {<attributes>}}`` (a failed step's ``exception`` event keeps its
type, message and exit code). attest only POSTs it (:class:`HTTPPostExporter`: one total
deadline, transient statuses retried, a refusal final), as it does for OTLP/HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attest_cli.tracing.exporters.base import HTTPPostExporter

DEFAULT_SERVICE = "attest"


class ZipkinJSONExporter(HTTPPostExporter):
    """POSTs a JSON array of v2 spans."""

    content_type = "application/json"
    takes_recorded_spans = False  # the encoder reads the SDK's ReadableSpan

    def encode(self, spans: Sequence[Any]) -> bytes:
        from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder
        from opentelemetry.exporter.zipkin.node_endpoint import NodeEndpoint

        endpoint = NodeEndpoint()
        if spans:  # one batch is one run's process: one resource, as the SDK exporter reads it
            endpoint.service_name = str(spans[0].resource.attributes.get("service.name",
                                                                          DEFAULT_SERVICE))
        return JsonV2Encoder().serialize(spans, endpoint).encode("utf-8")
