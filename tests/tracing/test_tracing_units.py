"""Tracing pieces in-process: W3C Trace Context parsing, the keep/drop decision, configuration
from OTEL_* variables, and the span tree built from run events."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from attest_cli.config.layers import defaults
from attest_cli.tracing.config import resolve
from attest_cli.tracing.context import (
    format_traceparent,
    head_hint,
    parse_traceparent,
    parse_tracestate,
    ratio_keeps,
    with_member,
)

pytestmark = pytest.mark.unit  # in-process: the fast layer (make test-unit)

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
SID = "00f067aa0ba902b7"


# -- traceparent -----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expect"), [
    (f"00-{TID}-{SID}-01", (int(TID, 16), int(SID, 16), True)),
    (f"00-{TID}-{SID}-00", (int(TID, 16), int(SID, 16), False)),
    (f"00-{TID}-{SID}-09", (int(TID, 16), int(SID, 16), True)),       # other flag bits
    (f" 00-{TID}-{SID}-01\t", (int(TID, 16), int(SID, 16), True)),    # OWS around
    (f"01-{TID}-{SID}-01", (int(TID, 16), int(SID, 16), True)),       # future version
    (f"cc-{TID}-{SID}-01-extra-fields", (int(TID, 16), int(SID, 16), True)),
    (f"00-{TID}-{SID}-01-extra", None),          # version 00 has exactly four fields
    (f"cc-{TID}-{SID}-01extra", None),           # future fields need a dash
    (f"ff-{TID}-{SID}-01", None),                # version ff is forbidden
    (f"00-{TID.upper()}-{SID}-01", None),        # uppercase hex
    (f"00-{TID}-{SID.upper()}-01", None),
    (f"00-{'0' * 32}-{SID}-01", None),           # all-zero trace id
    (f"00-{TID}-{'0' * 16}-01", None),           # all-zero parent id
    (f"00-{TID[:-1]}-{SID}-01", None),           # short trace id
    (f"00-{TID}0-{SID}-01", None),               # long trace id
    (f"00-{TID}-{SID[:-1]}-01", None),           # short parent id
    (f"00-{TID}-{SID}-1", None),                 # short flags
    (f"00-{TID}-{SID}-0g", None),                # not hex
    (f"0-{TID}-{SID}-01", None),                 # short version
    (f"00_{TID}_{SID}_01", None),                # wrong separator
    ("garbage", None),
])
def test_traceparent_parsing_follows_w3c(value: str, expect: tuple[int, int, bool] | None
                                         ) -> None:
    parsed, why = parse_traceparent(value)
    if expect is None:
        assert parsed is None and why
    else:
        assert parsed is not None and why is None
        assert (parsed.trace_id, parsed.span_id, parsed.sampled) == expect


@pytest.mark.parametrize("value", [None, "", "  "])
def test_absent_traceparent_is_not_an_error(value: str | None) -> None:
    assert parse_traceparent(value) == (None, None)


def test_traceparent_round_trips() -> None:
    header = format_traceparent(int(TID, 16), int(SID, 16), sampled=True)
    assert header == f"00-{TID}-{SID}-01"
    parsed, _ = parse_traceparent(header)
    assert parsed is not None and parsed.header() == header


@pytest.mark.parametrize(("value", "members"), [
    ("vendor=abc,other=1", [("vendor", "abc"), ("other", "1")]),
    ("a=1, b=2 ,,c=3", [("a", "1"), ("b", "2"), ("c", "3")]),
    ("tenant@sys=v", [("tenant@sys", "v")]),
    ("Upper=1", []),            # keys are lowercase
    ("a=1,a=2", []),            # duplicate keys
    ("novalue", []),
    ("a=b=c", []),              # '=' is not allowed in a value
    (",".join(f"k{i}=v" for i in range(33)), []),  # more than 32 members
])
def test_tracestate_parsing(value: str, members: list[tuple[str, str]]) -> None:
    assert parse_tracestate(value)[0] == members


def test_attest_member_moves_to_the_front() -> None:
    members = [("vendor", "x"), ("attest", "h0")]
    assert with_member(members, "attest", "h1") == [("attest", "h1"), ("vendor", "x")]
    assert head_hint([("attest", "h1")]) is True
    assert head_hint([("attest", "h0")]) is False
    assert head_hint([("vendor", "h1")]) is None


# -- the keep/drop decision ------------------------------------------------------------------

_RNG = random.Random(7)
FIXED_IDS = [_RNG.getrandbits(128) for _ in range(5000)]


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.1, 0.5, 0.9, 1.0])
def test_ratio_decision_matches_the_sdk_sampler_and_the_rate(rate: float) -> None:
    from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

    sdk = TraceIdRatioBased(rate)
    ours = [ratio_keeps(t, rate) for t in FIXED_IDS]
    theirs = [sdk.should_sample(None, t, "x").decision == Decision.RECORD_AND_SAMPLE
              for t in FIXED_IDS]
    assert ours == theirs
    kept = sum(ours) / len(FIXED_IDS)
    assert abs(kept - rate) < 0.02  # 5000 fixed ids: the share is within 2 points


def _processor(always: bool, max_buffered: int = 100):  # type: ignore[no-untyped-def]
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from attest_cli.tracing.sampling import ExportQueue, TailSamplingProcessor

    class Memory:
        def __init__(self) -> None:
            self.spans: list = []

        def export(self, spans):  # type: ignore[no-untyped-def]
            from opentelemetry.sdk.trace.export import SpanExportResult

            self.spans.extend(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    memory = Memory()
    queue = ExportQueue(lambda: memory)
    proc = TailSamplingProcessor(queue, always_sample_errors=always, max_buffered=max_buffered)
    provider = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False)
    provider.add_span_processor(proc)
    return provider.get_tracer("t"), proc, queue, memory


def _trace(tracer, proc, rate: float, *, error: bool, children: int = 3):  # type: ignore[no-untyped-def]
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    from attest_cli.tracing.sampling import head_decision

    root = tracer.start_span("root")
    sc = root.get_span_context()
    proc.begin(sc.trace_id, sc.span_id, head_decision(sc.trace_id, rate, None, None))
    ctx = trace.set_span_in_context(root)
    for i in range(children):
        child = tracer.start_span(f"c{i}", context=ctx)
        if error and i == children - 1:
            child.set_status(Status(StatusCode.ERROR, "boom"))
        child.end()
    root.end()
    return sc.trace_id


@pytest.mark.parametrize(("always", "error", "keep_all"), [
    (True, True, True), (False, True, False), (True, False, False),
])
def test_errors_keep_traces_the_ratio_dropped(always: bool, error: bool,
                                              keep_all: bool) -> None:
    tracer, proc, queue, memory = _processor(always)
    ids = [_trace(tracer, proc, 0.25, error=error) for _ in range(200)]
    queue.shutdown(5)
    exported = {s.context.trace_id for s in memory.spans}
    expected = set(ids) if keep_all else {t for t in ids if ratio_keeps(t, 0.25)}
    assert exported == expected
    # every kept trace is complete: root and all children
    assert len(memory.spans) == 4 * len(expected)


def test_buffer_is_capped_and_the_drop_is_counted() -> None:
    tracer, proc, queue, memory = _processor(True, max_buffered=5)
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    root = tracer.start_span("root")
    sc = root.get_span_context()
    proc.begin(sc.trace_id, sc.span_id, False)
    ctx = trace.set_span_in_context(root)
    for i in range(20):
        tracer.start_span(f"c{i}", context=ctx).end()
    assert proc.buffer_dropped(sc.trace_id) == 15
    failing = tracer.start_span("failing", context=ctx)
    failing.set_status(Status(StatusCode.ERROR, "x"))
    failing.end()
    root.end()
    queue.shutdown(5)
    assert [s.name for s in memory.spans] == ["c16", "c17", "c18", "c19", "failing", "root"]


def test_a_trace_is_released_only_when_all_its_spans_ended() -> None:
    tracer, proc, queue, memory = _processor(True)
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    root = tracer.start_span("root")
    sc = root.get_span_context()
    proc.begin(sc.trace_id, sc.span_id, False)
    late = tracer.start_span("late", context=trace.set_span_in_context(root))
    root.end()
    assert proc.decision(sc.trace_id) is None  # a span is still open: no decision yet
    late.set_status(Status(StatusCode.ERROR, "late failure"))
    late.end()
    assert proc.decision(sc.trace_id) is True
    queue.shutdown(5)
    assert sorted(s.name for s in memory.spans) == ["late", "root"]


# -- configuration ---------------------------------------------------------------------------

def test_otel_variables_fill_only_defaults() -> None:
    s = defaults()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
           "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20x,x-tenant=a",
           "OTEL_SERVICE_NAME": "svc", "OTEL_EXPORTER_OTLP_TIMEOUT": "3"}
    cfg = resolve(s, env, trace_flag=True)
    assert (cfg.wire, cfg.target) == ("otlp-http", "http://collector:4318/v1/traces")
    assert cfg.headers == {"authorization": "Bearer x", "x-tenant": "a"}
    assert (cfg.service_name, cfg.timeout) == ("svc", 3.0)
    s.set("tracing.service_name", "mine", "project")
    s.set("tracing.exporter.endpoint", "http://other:4318", "project")
    cfg = resolve(s, env, trace_flag=True)
    assert (cfg.service_name, cfg.target) == ("mine", "http://other:4318/v1/traces")


@pytest.mark.parametrize(("exporter", "endpoint", "protocol", "wire", "target"), [
    ("jaeger", "http://jaeger:14268/api/traces", "", "jaeger-thrift",
     "http://jaeger:14268/api/traces"),
    ("jaeger", "http://jaeger:4318", "", "otlp-http", "http://jaeger:4318/v1/traces"),
    ("jaeger", "http://jaeger:4317", "", "otlp-grpc", "http://jaeger:4317"),
    ("jaeger", "", "", "jaeger-thrift", "http://localhost:14268/api/traces"),
    ("otlp", "", "grpc", "otlp-grpc", "http://localhost:4317"),
    ("otlp", "http://c:4318/custom/path", "", "otlp-http", "http://c:4318/custom/path"),
    ("zipkin", "", "", "zipkin", "http://localhost:9411/api/v2/spans"),
    ("file", "", "", "file", ".attest/traces.jsonl"),
])
def test_exporter_wire_and_endpoint(exporter: str, endpoint: str, protocol: str, wire: str,
                                    target: str) -> None:
    s = defaults()
    s.set("tracing.exporter.type", exporter, "project")
    if endpoint:
        s.set("tracing.exporter.endpoint", endpoint, "project")
    if protocol:
        s.set("tracing.exporter.protocol", protocol, "project")
    cfg = resolve(s, {}, trace_flag=True)
    assert (cfg.wire, cfg.target) == (wire, target)


# -- spans from events -----------------------------------------------------------------------

def test_cache_signing_and_verification_spans_nest_with_event_times(tmp_path: Path) -> None:
    from attest_cli.engine.events import (
        CacheChecked,
        CacheStored,
        ReceiptSigned,
        RunFinished,
        StepFinished,
        StepStarted,
        VerificationFinished,
    )
    from attest_cli.engine.masking import SecretMasker
    from attest_cli.engine.run_report import RunReport, StepResult
    from attest_cli.tracing.config import TracingConfig
    from attest_cli.tracing.tracer import RunTracer

    out = tmp_path / "t.jsonl"
    cfg = TracingConfig(enabled=True, exporter="file", endpoint=str(out))
    tracer = RunTracer(cfg, workdir=tmp_path, environ={}, masker=SecretMasker(["topsecret"]),
                       pipeline_root=tmp_path)
    report = RunReport(run_id="r1", pipeline="p", pipeline_file="attest.yaml", started_at=100.0)
    trace_id = tracer.start_root(report)
    tracer(StepStarted(run_id="r1", step="s", command="echo ***", slot=0, at=101.0))
    env = tracer.step_environment("s")
    tracer(CacheChecked(step="s", backend="local", hit=False, key="k1",
                        reason="input topsecret.txt changed", duration=0.5, at=101.5))
    tracer(CacheStored(step="s", backend="local", key="k1", bytes=10, duration=0.25, at=102.75))
    result = StepResult(name="s", command="echo ***", status="success", exit_code=0,
                        started_at=101.0, finished_at=103.0, wall_seconds=2.0)
    tracer(StepFinished(run_id="r1", result=result, at=103.0))
    tracer(ReceiptSigned(path="receipt.json", duration=0.125, at=104.0))
    tracer(VerificationFinished(kind="signature", ok=False, reason="invalid_signature",
                                duration=0.5, at=104.5))
    report.status, report.exit_code, report.finished_at = "failure", 1, 105.0
    tracer(RunFinished(report=report, at=105.0))
    tracer.close()
    spans = {d["name"]: d for d in map(json.loads, out.read_text().splitlines())}
    root, step = spans["RUN p"], spans["step s"]
    assert trace_id == root["trace_id"]
    assert env["TRACEPARENT"] == f"00-{root['trace_id']}-{step['span_id']}-01"
    assert env["TRACESTATE"] == "attest=h1"
    assert spans["cache lookup"]["parent_span_id"] == step["span_id"]
    assert spans["cache store"]["parent_span_id"] == step["span_id"]
    assert spans["sign receipt"]["parent_span_id"] == root["span_id"]
    assert spans["verify signature"]["parent_span_id"] == root["span_id"]
    assert spans["verify signature"]["status"]["code"] == "error"
    s = 1_000_000_000
    assert (spans["cache lookup"]["start_unix_nano"], spans["cache lookup"]["end_unix_nano"]) \
        == (101 * s, int(101.5 * s))
    assert (spans["cache store"]["start_unix_nano"], spans["cache store"]["end_unix_nano"]) \
        == (int(102.5 * s), int(102.75 * s))
    assert (root["start_unix_nano"], root["end_unix_nano"]) == (100 * s, 105 * s)
    assert (step["start_unix_nano"], step["end_unix_nano"]) == (101 * s, 103 * s)
    assert "topsecret" not in out.read_text()
    assert spans["cache lookup"]["attributes"]["attest.cache.miss_reason"] == \
        "input ***.txt changed"
