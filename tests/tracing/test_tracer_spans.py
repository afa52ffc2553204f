"""RunTracer fed run events directly; spans read back from the SDK's InMemorySpanExporter."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from attest_cli.engine.events import (
    CacheChecked,
    CacheStored,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from attest_cli.engine.masking import SecretMasker
from attest_cli.engine.run_report import RunReport, StepResult
from attest_cli.pipeline.model import Pipeline, Step
from attest_cli.tracing.config import TracingConfig
from attest_cli.tracing.tracer import RunTracer

pytestmark = pytest.mark.unit  # in-process: the fast layer (make test-unit)

T0 = 1_700_000_000.0


@pytest.fixture
def spans(tmp_path: Path) -> dict[str, ReadableSpan]:
    """One failed run of build -> test (+ a skipped deploy), traced and exported."""
    exporter = InMemorySpanExporter()
    tracer = RunTracer(TracingConfig(enabled=True), workdir=tmp_path, environ={},
                       masker=SecretMasker(["s3cret"]), pipeline_root=tmp_path,
                       make_exporter=lambda: exporter)
    steps = {n: Step(name=n, run="make") for n in ("build", "test", "deploy")}
    pipeline = Pipeline(name="p", path=tmp_path / "attest.yaml", root=tmp_path, steps=steps)
    report = RunReport(run_id="r1", pipeline="p", pipeline_file="attest.yaml", started_at=T0,
                       parallel=2)
    trace_id = tracer.start_root(report)
    assert trace_id is not None and len(trace_id) == 32
    build = StepResult(name="build", command="make TOKEN=***", status="success", exit_code=0,
                       started_at=T0 + 1, finished_at=T0 + 3, wall_seconds=2.0,
                       cache_backend="local")
    test = StepResult(name="test", command="make test", status="failure", exit_code=2,
                      started_at=T0 + 3, finished_at=T0 + 4, wall_seconds=1.0,
                      reason="exit code 2")
    deploy = StepResult(name="deploy", command="make deploy", status="skipped",
                        reason="needs 'test', which did not succeed")
    for event in [
        RunStarted(run_id="r1", pipeline=pipeline, selected=("build", "test", "deploy"),
                   parallel=2, report=report, at=T0),
        StepStarted(run_id="r1", step="build", command="make TOKEN=s3cret", slot=0, at=T0 + 1),
        CacheChecked(step="build", backend="local", hit=False, key="k1",
                     reason="no earlier entry for this step", duration=0.25, at=T0 + 1.25),
        CacheStored(step="build", backend="local", key="k1", bytes=42, duration=0.5,
                    at=T0 + 3),
        StepFinished(run_id="r1", result=build, at=T0 + 3),
        StepStarted(run_id="r1", step="test", command="make test", slot=0, at=T0 + 3),
        StepFinished(run_id="r1", result=test, at=T0 + 4),
        StepFinished(run_id="r1", result=deploy, at=T0 + 4),
    ]:
        tracer(event)
    report.steps = [build, test, deploy]
    report.status, report.exit_code, report.finished_at = "failure", 1, T0 + 5
    tracer(RunFinished(report=report, at=T0 + 5))
    tracer.close()
    return {s.name: s for s in exporter.get_finished_spans()}


def test_one_span_per_step_and_cache_operation_under_the_run(
        spans: dict[str, ReadableSpan]) -> None:
    assert set(spans) == {"RUN p", "step build", "cache lookup", "cache store", "step test",
                          "step deploy"}
    root = spans["RUN p"]
    assert root.parent is None
    trace_ids = {s.context.trace_id for s in spans.values()}
    assert trace_ids == {root.context.trace_id}
    for name in ("step build", "step test", "step deploy"):
        assert spans[name].parent is not None
        assert spans[name].parent.span_id == root.context.span_id
    build_id = spans["step build"].context.span_id
    assert spans["cache lookup"].parent.span_id == build_id  # type: ignore[union-attr]
    assert spans["cache store"].parent.span_id == build_id  # type: ignore[union-attr]


def test_timestamps_come_from_the_events(spans: dict[str, ReadableSpan]) -> None:
    ns = 1_000_000_000
    build = spans["step build"]
    assert (build.start_time, build.end_time) == ((T0 + 1) * ns, (T0 + 3) * ns)
    lookup = spans["cache lookup"]
    assert (lookup.start_time, lookup.end_time) == ((T0 + 1) * ns, (T0 + 1.25) * ns)
    root = spans["RUN p"]
    assert (root.start_time, root.end_time) == (T0 * ns, (T0 + 5) * ns)


def test_step_attributes_are_set_and_secrets_masked(spans: dict[str, ReadableSpan]) -> None:
    attrs = dict(spans["step build"].attributes or {})
    assert attrs["attest.step.command"] == "make TOKEN=***"
    assert attrs["cicd.pipeline.task.name"] == "build"
    assert attrs["cicd.pipeline.task.run.id"] == "r1/build"
    assert attrs["cicd.pipeline.task.run.result"] == "success"
    assert attrs["process.exit.code"] == 0
    assert attrs["attest.step.duration_seconds"] == 2.0
    assert attrs["attest.step.slot"] == 0
    lookup = dict(spans["cache lookup"].attributes or {})
    assert lookup == {"attest.cache.backend": "local", "attest.cache.hit": False,
                      "attest.cache.key": "k1",
                      "attest.cache.miss_reason": "no earlier entry for this step"}
    assert dict(spans["cache store"].attributes or {})["attest.cache.bytes"] == 42


def test_a_failed_step_and_run_carry_error_status(spans: dict[str, ReadableSpan]) -> None:
    test = spans["step test"]
    assert test.status.status_code is StatusCode.ERROR
    assert test.status.description == "exit code 2"
    assert [e.name for e in test.events] == ["exception"]
    assert dict(test.events[0].attributes or {})["exception.type"] == "StepFailed"
    root = spans["RUN p"]
    attrs = dict(root.attributes or {})
    assert attrs["cicd.pipeline.result"] == "failure"
    assert attrs["attest.run.failed_steps"] == "test"
    assert attrs["attest.run.parallel"] == 2
    assert attrs["attest.run.steps_selected"] == 3
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "pipeline failure: test"
    # each exception event lies inside its span (stamped at the end, not when handled)
    for span in (test, root):
        assert span.start_time <= span.events[0].timestamp <= span.end_time


def test_a_skipped_step_is_a_zero_length_span_saying_why(
        spans: dict[str, ReadableSpan]) -> None:
    deploy = spans["step deploy"]
    assert deploy.start_time == deploy.end_time
    attrs = dict(deploy.attributes or {})
    assert attrs["cicd.pipeline.task.run.result"] == "skip"  # the CI/CD semconv value
    assert attrs["attest.step.reason"] == "needs 'test', which did not succeed"
    assert deploy.status.status_code is StatusCode.UNSET
