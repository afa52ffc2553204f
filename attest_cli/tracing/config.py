"""The effective tracing configuration: attest's ``tracing.*`` keys over the ``OTEL_*`` variables.

The standard OpenTelemetry variables are honoured *below* attest's own configuration: an
``OTEL_*`` value is used only where the matching attest key still has its built-in default
(``settings.origins[key] == "default"``). ``OTEL_SDK_DISABLED=true`` turns tracing off
unless it was asked for on the command line (``--trace``) or with
``ATTEST_TRACING__ENABLED`` (both sit above the environment's OTEL layer). When neither
attest's keys nor ``OTEL_EXPORTER_OTLP_*ENDPOINT`` name an exporter or an endpoint, spans go
to the ``file`` exporter (``.attest/traces.jsonl``), not to a collector on localhost.
No OpenTelemetry import here: this decides whether tracing is on at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from attest_cli.config.layers import Settings
from attest_cli.config.schema import parse_duration
from attest_cli.record import Record

DEFAULT_ENDPOINTS = {
    ("otlp", "http/protobuf"): "http://localhost:4318/v1/traces",
    ("otlp", "grpc"): "http://localhost:4317",
    ("jaeger", ""): "http://localhost:14268/api/traces",
    ("zipkin", ""): "http://localhost:9411/api/v2/spans",
    ("file", ""): ".attest/traces.jsonl",
}
OTLP_HTTP_PORT, OTLP_GRPC_PORT = 4318, 4317


class TracingConfig(Record):
    enabled: bool
    service_name: str
    exporter: str
    endpoint: str
    protocol: str
    headers: dict[str, str]
    timeout: float
    rate: float
    always_sample_errors: bool
    max_buffered_spans: int
    resource_attributes: dict[str, str]
    disabled_by: str | None  # why tracing is off although configured on
    # True when nothing named an exporter or endpoint, so spans go to the file exporter
    defaulted_to_file: bool

    def __init__(self, enabled: bool, service_name: str = "attest", exporter: str = "otlp",
                 endpoint: str = "", protocol: str = "http/protobuf",
                 headers: dict[str, str] | None = None, timeout: float = 5.0,
                 rate: float = 1.0, always_sample_errors: bool = True,
                 max_buffered_spans: int = 10000,
                 resource_attributes: dict[str, str] | None = None,
                 disabled_by: str | None = None, defaulted_to_file: bool = False) -> None:
        self.enabled = enabled
        self.service_name = service_name
        self.exporter = exporter
        self.endpoint = endpoint
        self.protocol = protocol
        self.headers = {} if headers is None else headers
        self.timeout = timeout
        self.rate = rate
        self.always_sample_errors = always_sample_errors
        self.max_buffered_spans = max_buffered_spans
        self.resource_attributes = {} if resource_attributes is None else resource_attributes
        self.disabled_by = disabled_by
        self.defaulted_to_file = defaulted_to_file

    @property
    def wire(self) -> str:
        """What is actually spoken: otlp-http, otlp-grpc, jaeger-thrift, zipkin, console, file."""
        if self.exporter == "otlp":
            return "otlp-grpc" if self.protocol == "grpc" else "otlp-http"
        if self.exporter == "jaeger":
            port = _port(self.endpoint)
            if port == OTLP_GRPC_PORT:
                return "otlp-grpc"
            if port == OTLP_HTTP_PORT or urlsplit(self.endpoint).path.rstrip("/") == "/v1/traces":
                return "otlp-http"
            return "jaeger-thrift"
        return self.exporter

    @property
    def target(self) -> str:
        """The endpoint as the exporter uses it (OTLP/HTTP gets ``/v1/traces`` when pathless)."""
        if self.wire == "otlp-http":
            parts = urlsplit(self.endpoint)
            if parts.path in ("", "/"):
                return self.endpoint.rstrip("/") + "/v1/traces"
        return self.endpoint


def _port(url: str) -> int | None:
    try:
        return urlsplit(url if "//" in url else "//" + url).port
    except ValueError:
        return None


def parse_key_values(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` with percent-decoding, as OTEL_RESOURCE_ATTRIBUTES / _HEADERS use."""
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[unquote(key.strip())] = unquote(value.strip())
    return out


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def resolve(settings: Settings, environ: Mapping[str, str], *, trace_flag: bool) -> TracingConfig:
    """Merge attest's tracing keys with the OTEL_* environment (attest wins)."""
    def default(key: str) -> bool:
        return settings.origins.get(key) == "default"

    enabled = bool(trace_flag or settings["tracing.enabled"])
    cfg = TracingConfig(enabled=enabled)
    if enabled and _true(environ.get("OTEL_SDK_DISABLED")):
        origin = settings.origins.get("tracing.enabled", "")
        if not trace_flag and not origin.startswith("env ATTEST_"):
            cfg.enabled = False
            cfg.disabled_by = "OTEL_SDK_DISABLED=true"
    cfg.service_name = settings["tracing.service_name"]
    if default("tracing.service_name") and environ.get("OTEL_SERVICE_NAME"):
        cfg.service_name = environ["OTEL_SERVICE_NAME"]
    cfg.exporter = settings["tracing.exporter.type"]
    cfg.protocol = settings["tracing.exporter.protocol"]
    otlp = cfg.exporter == "otlp"
    if otlp and default("tracing.exporter.protocol"):
        proto = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                 or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").strip()
        if proto in ("grpc", "http/protobuf"):
            cfg.protocol = proto
    cfg.endpoint = settings["tracing.exporter.endpoint"]
    if not cfg.endpoint and otlp:
        traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        # the signal-specific variable is used as is; the base one gets /v1/traces (via .target)
        cfg.endpoint = traces or (base.rstrip("/") if base else "")
    if not cfg.endpoint and otlp and default("tracing.exporter.type"):
        # Nothing says where a collector is: exporting to localhost:4318 would only wait
        # for a collector that is (almost always) not there, so write the trace file.
        cfg.exporter, otlp, cfg.defaulted_to_file = "file", False, True
    if not cfg.endpoint:
        kind = cfg.protocol if otlp else ""
        cfg.endpoint = DEFAULT_ENDPOINTS.get((cfg.exporter, kind), "")
    cfg.headers = dict(settings["tracing.exporter.headers"])
    if default("tracing.exporter.headers") and cfg.wire.startswith("otlp"):
        cfg.headers = parse_key_values(environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                                       or environ.get("OTEL_EXPORTER_OTLP_HEADERS") or "")
    cfg.timeout = float(settings["tracing.exporter.timeout"])
    if default("tracing.exporter.timeout") and cfg.wire.startswith("otlp"):
        raw = environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or environ.get(
            "OTEL_EXPORTER_OTLP_TIMEOUT")
        if raw:  # seconds, as the Python SDK reads it
            with contextlib.suppress(ValueError):
                cfg.timeout = parse_duration(raw)
    cfg.rate = float(settings["tracing.sampling.rate"])
    cfg.always_sample_errors = bool(settings["tracing.sampling.always_sample_errors"])
    cfg.max_buffered_spans = int(settings["tracing.max_buffered_spans"])
    cfg.resource_attributes = parse_key_values(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    return cfg
