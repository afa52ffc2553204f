"""Trace exporters by name: OTLP (HTTP/protobuf, gRPC), Jaeger Thrift, Zipkin, console, file.

OTLP/HTTP, Jaeger and Zipkin POST with the standard library (no ``requests``).
Built-ins are looked up like plug-ins in :data:`BUILDERS`, keyed by the wire format the
configuration resolves to (:attr:`TracingConfig.wire`). Each builder imports its library
only when called. Every network exporter bounds each export by ``tracing.exporter.timeout``
as a total deadline (:mod:`attest_cli.deadline`), however slowly the collector answers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attest_cli.tracing.config import TracingConfig
from attest_cli.tracing.exporters.base import DeadlineExporter


def _otlp_http(cfg: TracingConfig, workdir: Path) -> Any:
    from attest_cli.tracing.exporters.otlp_http import OTLPHTTPExporter

    return OTLPHTTPExporter(cfg.target, headers=cfg.headers, timeout=cfg.timeout)


def _otlp_grpc(cfg: TracingConfig, workdir: Path) -> Any:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    headers = {k.lower(): v for k, v in cfg.headers.items()}  # gRPC metadata keys
    endpoint = cfg.target
    insecure = not endpoint.startswith("https://")
    return DeadlineExporter(
        OTLPSpanExporter(endpoint=endpoint, insecure=insecure, headers=headers or None,
                         timeout=cfg.timeout),
        timeout=cfg.timeout, name="OTLP/gRPC")


def _jaeger_thrift(cfg: TracingConfig, workdir: Path) -> Any:
    from attest_cli.tracing.exporters.jaeger_thrift import JaegerThriftExporter

    return JaegerThriftExporter(cfg.target, headers=cfg.headers, timeout=cfg.timeout)


def _zipkin(cfg: TracingConfig, workdir: Path) -> Any:
    from attest_cli.tracing.exporters.zipkin_json import ZipkinJSONExporter

    return ZipkinJSONExporter(cfg.target, headers=cfg.headers, timeout=cfg.timeout)


def _console(cfg: TracingConfig, workdir: Path) -> Any:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter(out=sys.stderr)  # stdout stays for machine-readable output


def _file(cfg: TracingConfig, workdir: Path) -> Any:
    from attest_cli.tracing.exporters.jsonl_file import JSONLinesFileExporter

    path = Path(cfg.target).expanduser()
    return JSONLinesFileExporter(path if path.is_absolute() else workdir / path)


BUILDERS: dict[str, Callable[[TracingConfig, Path], Any]] = {
    "otlp-http": _otlp_http,
    "otlp-grpc": _otlp_grpc,
    "jaeger-thrift": _jaeger_thrift,
    "zipkin": _zipkin,
    "console": _console,
    "file": _file,
}


def build_exporter(cfg: TracingConfig, workdir: Path) -> Any:
    return BUILDERS[cfg.wire](cfg, workdir)
