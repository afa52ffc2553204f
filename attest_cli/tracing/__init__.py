"""Tracing: OpenTelemetry spans from run events, W3C trace context, tail sampling, exporters."""
