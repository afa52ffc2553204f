"""``attest run --trace`` end to end: real CLI runs exporting to loopback receivers that decode
the real wire formats (OTLP/HTTP protobuf, OTLP/gRPC, Jaeger Thrift over HTTP, Zipkin JSON v2,
JSON lines)."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import attest, free_port, write_pipeline
from tests.tracing.receivers import (
    Span,
    jaeger_thrift_receiver,
    otlp_grpc_receiver,
    otlp_http_receiver,
    spans_from_file,
    zipkin_receiver,
)

SEED_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SEED_PARENT = "00f067aa0ba902b7"
SEED_TRACEPARENT = f"00-{SEED_TRACE}-{SEED_PARENT}-01"
SECRET = "hunter2-s3cr3t"


def last_report(project: Path) -> dict[str, Any]:
    runs = sorted((project / ".attest" / "runs").glob("*.json"))
    return json.loads(runs[-1].read_text())


def pipeline(project: Path, tracing: str, steps: str | None = None) -> None:
    steps = steps or f"""
        build:
          run: echo "$TRACEPARENT" > tp-build.txt && echo built
          secrets: [DEPLOY_KEY]
        test:
          run: echo "token {SECRET}" > /dev/null; exit 3
          needs: [build]
        deploy:
          run: echo deploy
          needs: [test]
    """
    text = ("version: \"0.1\"\nname: build-test-deploy\nsteps:\n"
            + textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ") + "\n"
            + textwrap.dedent(tracing).strip("\n") + "\n")
    (project / "attest.yaml").write_text(text, encoding="utf-8")


def seed_tracing(exporter: str, endpoint: str, extra: str = "") -> str:
    """The seed's §4.1 block, with the endpoint pointed at the loopback receiver."""
    return f"""
        tracing:
          enabled: true
          service_name: "attest-pipeline"
          exporter:
            type: "{exporter}"
            endpoint: "{endpoint}"{extra}
          sampling:
            rate: 0.1
            always_sample_errors: true
    """


@contextmanager
def file_receiver(project: Path) -> Iterator[tuple[Any, str]]:
    class FromFile:
        requests = 1

        @property
        def spans(self) -> list[Span]:
            path = project / "spans.jsonl"
            return spans_from_file(path.read_text()) if path.exists() else []

    yield FromFile(), "spans.jsonl"


RECEIVERS: dict[str, tuple[str, Callable[..., AbstractContextManager[tuple[Any, str]]], str]] = {
    # name: (exporter type, receiver, extra exporter config)
    "otlp-http": ("otlp", otlp_http_receiver, ""),
    "otlp-grpc": ("otlp", otlp_grpc_receiver, "\n            protocol: grpc"),
    "jaeger-thrift": ("jaeger", jaeger_thrift_receiver, ""),
    "zipkin": ("zipkin", zipkin_receiver, ""),
}


def by_name(spans: list[Span]) -> dict[str, Span]:
    return {s["name"]: s for s in spans}


@pytest.mark.parametrize("kind", [*RECEIVERS, "file"])
def test_seed_traceparent_and_config_deliver_one_coherent_trace(project: Path, kind: str) -> None:
    if kind == "file":
        receiver_cm: AbstractContextManager[tuple[Any, str]] = file_receiver(project)
        exporter, extra = "file", ""
    else:
        exporter, factory, extra = RECEIVERS[kind]
        receiver_cm = factory()
    with receiver_cm as (got, endpoint):
        pipeline(project, seed_tracing(exporter, endpoint, extra))
        proc = attest("run", "--trace", cwd=project,
                      env={"TRACEPARENT": SEED_TRACEPARENT, "DEPLOY_KEY": SECRET})
        assert proc.returncode == 1, proc.stderr
        assert "could not export" not in proc.stderr
        spans = got.spans
    names = by_name(spans)
    assert {n for n in names if not n.startswith("cache ")} == {
        "RUN build-test-deploy", "step build", "step test", "step deploy"}
    step_ids = {names[f"step {n}"]["span_id"] for n in ("build", "test", "deploy")}
    for cache_span in (s for s in spans if s["name"].startswith("cache ")):
        assert cache_span["parent_id"] in step_ids  # cache lookup/store under their step
    assert {s["trace_id"] for s in spans} == {SEED_TRACE}
    root = names["RUN build-test-deploy"]
    assert root["parent_id"] == SEED_PARENT  # the run is a child of the remote span
    assert root["service"] == "attest-pipeline"
    assert root["error"] is True
    assert root["attrs"]["cicd.pipeline.name"] == "build-test-deploy"
    assert root["attrs"]["cicd.pipeline.run.id"] == last_report(project)["run_id"]
    assert root["attrs"]["cicd.pipeline.result"] == "failure"
    for step in ("build", "test", "deploy"):
        span = names[f"step {step}"]
        assert span["parent_id"] == root["span_id"]
        assert span["attrs"]["cicd.pipeline.task.name"] == step
        assert root["start"] <= span["start"] <= span["end"] <= root["end"]
    result = {n: names[f"step {n}"]["attrs"]["cicd.pipeline.task.run.result"]
              for n in ("build", "test", "deploy")}
    assert result == {"build": "success", "test": "failure", "deploy": "skip"}  # CI/CD semconv
    assert names["step test"]["error"] is True
    assert names["step build"]["error"] is False
    exit_code = names["step test"]["attrs"]["process.exit.code"]
    assert int(exit_code) == 3
    # the step process got the TRACEPARENT of its own span, sampled
    tp = (project / "tp-build.txt").read_text().strip()
    assert tp == f"00-{SEED_TRACE}-{names['step build']['span_id']}-01"
    assert last_report(project)["trace_id"] == SEED_TRACE
    # secrets never reach an attribute
    dumped = json.dumps(spans)
    assert SECRET not in dumped
    assert "***" in str(names["step test"]["attrs"]["attest.step.command"])


def test_jaeger_type_with_an_otlp_endpoint_speaks_otlp(project: Path) -> None:
    with otlp_http_receiver() as (got, base):
        pipeline(project, seed_tracing("jaeger", base + "/v1/traces"))
        proc = attest("run", cwd=project, env={"TRACEPARENT": SEED_TRACEPARENT})
        assert proc.returncode == 1, proc.stderr
    assert got.content_types and set(got.content_types) == {"application/x-protobuf"}
    assert {s["trace_id"] for s in got.spans} == {SEED_TRACE}


def test_jaeger_payload_is_application_x_thrift_with_child_of_references(project: Path
                                                                          ) -> None:
    with jaeger_thrift_receiver() as (got, endpoint):
        pipeline(project, seed_tracing("jaeger", endpoint))
        attest("run", cwd=project, env={"TRACEPARENT": SEED_TRACEPARENT})
    assert set(got.content_types) == {"application/x-thrift"}
    step = by_name(got.spans)["step build"]
    root = by_name(got.spans)["RUN build-test-deploy"]
    assert step["references"] == [{"type": 0, "trace_low": int(SEED_TRACE[16:], 16),
                                   "span_id": root["span_id"]}]
    assert root["resource"]["service.version"]


def test_nested_attest_run_inside_a_step_joins_the_same_trace(project: Path) -> None:
    inner = project / "inner"
    inner.mkdir()
    with otlp_http_receiver() as (got, endpoint):
        tracing = f"""
            tracing:
              exporter: {{type: otlp, endpoint: "{endpoint}"}}
              sampling: {{rate: 0.0, always_sample_errors: true}}
        """
        pipeline(inner, tracing, steps="""
            compile:
              run: echo "$TRACEPARENT" > tp-inner.txt
        """)
        (inner / "attest.yaml").write_text((inner / "attest.yaml").read_text().replace(
            "build-test-deploy", "inner"))
        pipeline(project, tracing.replace("rate: 0.0", "rate: 1.0"), steps=f"""
            outer:
              run: {sys.executable} -m attest_cli -C inner run --trace
        """)
        proc = attest("run", "--trace", cwd=project)
        assert proc.returncode == 0, proc.stderr
    spans = by_name(got.spans)
    outer_step, inner_root = spans["step outer"], spans["RUN inner"]
    assert len({s["trace_id"] for s in got.spans}) == 1
    assert inner_root["parent_id"] == outer_step["span_id"]
    assert spans["step compile"]["parent_id"] == inner_root["span_id"]
    assert spans["RUN build-test-deploy"]["parent_id"] is None
    # the inner run (rate 0) followed the outer run's keep decision, carried in tracestate
    tp = (inner / "tp-inner.txt").read_text().strip()
    assert tp.endswith(f"{spans['step compile']['span_id']}-01")


# -- sampling --------------------------------------------------------------------------------

def file_tracing(rate: float, always: bool) -> str:
    return f"""
        tracing:
          exporter: {{type: file, endpoint: spans.jsonl}}
          sampling: {{rate: {rate}, always_sample_errors: {str(always).lower()}}}
    """


def exported(project: Path) -> list[Span]:
    path = project / "spans.jsonl"
    return spans_from_file(path.read_text()) if path.exists() else []


OK_STEPS = """
    one: {run: echo "$TRACEPARENT" > tp.txt}
    two: {run: echo two, needs: [one]}
"""
FAILING_STEPS = """
    one: {run: echo "$TRACEPARENT" > tp.txt}
    two: {run: exit 1, needs: [one]}
"""


@pytest.mark.parametrize(("rate", "always", "steps", "env", "kept", "step_flag"), [
    (0.0, True, OK_STEPS, {}, False, "01"),       # may still be kept for an error: sampled
    (0.0, False, OK_STEPS, {}, False, "00"),      # dropped for sure: children told so
    (0.0, True, FAILING_STEPS, {}, True, "01"),   # the error keeps the whole trace
    (0.0, False, FAILING_STEPS, {}, False, "00"),
    (1.0, True, OK_STEPS, {"TRACEPARENT": f"00-{SEED_TRACE}-{SEED_PARENT}-00"}, False, "01"),
    (0.0, True, OK_STEPS, {"TRACEPARENT": SEED_TRACEPARENT}, True, "01"),  # parent-based
])
def test_sampling_decides_at_the_end_and_keeps_errors(project: Path, rate: float, always: bool,
                                                      steps: str, env: dict[str, str],
                                                      kept: bool, step_flag: str) -> None:
    pipeline(project, file_tracing(rate, always), steps=steps)
    proc = attest("run", "--trace", cwd=project, env=env)
    assert proc.returncode == (1 if steps is FAILING_STEPS else 0), proc.stderr
    spans = exported(project)
    if kept:
        assert {s["name"] for s in spans} >= {"RUN build-test-deploy", "step one", "step two"}
        assert len({s["trace_id"] for s in spans}) == 1
    else:
        assert spans == []
    assert (project / "tp.txt").read_text().strip().endswith("-" + step_flag)


# -- context in ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    f"00-{SEED_TRACE.upper()}-{SEED_PARENT}-01",   # uppercase hex
    f"00-{'0' * 32}-{SEED_PARENT}-01",             # all-zero trace id
    f"ff-{SEED_TRACE}-{SEED_PARENT}-01",           # version ff
    f"00-{SEED_TRACE[:-1]}-{SEED_PARENT}-01",      # wrong length
])
def test_malformed_traceparent_starts_a_new_trace_with_a_debug_line(project: Path,
                                                                    value: str) -> None:
    pipeline(project, file_tracing(1.0, True), steps=OK_STEPS)
    proc = attest("run", "--trace", "--log-level", "debug", "--log-format", "json",
                  cwd=project, env={"TRACEPARENT": value})
    assert proc.returncode == 0, proc.stderr
    root = by_name(exported(project))["RUN build-test-deploy"]
    assert root["parent_id"] is None
    assert root["trace_id"] != SEED_TRACE
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    ignored = [x for x in lines if "ignoring TRACEPARENT" in x["message"]]
    assert len(ignored) == 1 and ignored[0]["level"] == "DEBUG"


def test_future_traceparent_version_with_extra_fields_is_accepted(project: Path) -> None:
    pipeline(project, file_tracing(1.0, True),
             steps="one: {run: 'echo \"$TRACEPARENT $TRACESTATE\" > tp.txt'}")
    proc = attest("run", "--trace", cwd=project,
                  env={"TRACEPARENT": f"cc-{SEED_TRACE}-{SEED_PARENT}-01-what-the-future-holds",
                       "TRACESTATE": "vendor=abc,other=1"})
    assert proc.returncode == 0, proc.stderr
    spans = by_name(exported(project))
    root = spans["RUN build-test-deploy"]
    assert (root["trace_id"], root["parent_id"]) == (SEED_TRACE, SEED_PARENT)
    # tracestate is passed on to the step, attest's member first (W3C: updated key in front)
    traceparent, tracestate = (project / "tp.txt").read_text().split()
    assert traceparent == f"00-{SEED_TRACE}-{spans['step one']['span_id']}-01"
    assert tracestate == "attest=h1,vendor=abc,other=1"


def test_json_logs_carry_trace_and_span_ids(project: Path) -> None:
    pipeline(project, file_tracing(1.0, True), steps=OK_STEPS)
    proc = attest("run", "--trace", "--log-format", "json", cwd=project,
                  env={"TRACEPARENT": SEED_TRACEPARENT})
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    done = [x for x in lines if x["message"] == "Pipeline execution completed"]
    root = by_name(exported(project))["RUN build-test-deploy"]
    assert done and done[0]["trace_id"] == SEED_TRACE
    assert done[0]["span_id"] == root["span_id"]


def test_a_steps_log_lines_carry_its_own_span_while_others_run(project: Path) -> None:
    """Steps in flight together are served by one thread (the scheduler's event loop): what
    attest logs for a step still carries that step's span, and the run's own lines the
    root's."""
    steps = {f"s{i}": f"sleep 0.{i} && echo out > out{i}.txt" for i in range(1, 4)}
    write_pipeline(project, "name: p\n" + textwrap.dedent(file_tracing(1.0, True)) + "steps:\n"
                   + "".join(f"  {n}: {{run: '{cmd}', outputs: [out{n[1:]}.txt]}}\n"
                             for n, cmd in steps.items()))
    proc = attest("run", "--trace", "-j3", "--log-level", "debug", "--log-format", "json",
                  cwd=project)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    spans = by_name(exported(project))
    seen = 0
    for line in lines:
        step = line.get("fields", {}).get("step")
        if step in steps and line["message"] in ("Step started", "cache.miss", "cache.store"):
            assert line["span_id"] == spans[f"step {step}"]["span_id"], line
            seen += 1
    assert seen == 9  # started, missed and stored, for each of the three
    done = [x for x in lines if x["message"] == "Pipeline execution completed"]
    assert done[0]["span_id"] == spans["RUN p"]["span_id"]


def test_no_trace_ids_in_logs_when_tracing_is_off(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true'}\n")
    proc = attest("run", "--log-format", "json", cwd=project,
                  env={"TRACEPARENT": SEED_TRACEPARENT})
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    assert lines and not any("trace_id" in x for x in lines)


# -- configuration from OTEL_* ---------------------------------------------------------------

def test_otel_environment_is_used_below_attest_config(project: Path) -> None:
    write_pipeline(project, "name: p\nsteps:\n  a: {run: 'true'}\n")
    with otlp_http_receiver() as (got, base):
        proc = attest("run", "--trace", cwd=project, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_SERVICE_NAME": "from-otel",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci,team=build%20infra"})
        assert proc.returncode == 0, proc.stderr
        root = by_name(got.spans)["RUN p"]
        assert root["service"] == "from-otel"
        assert root["resource"]["deployment.environment"] == "ci"
        assert root["resource"]["team"] == "build infra"
        got.spans.clear()
        proc = attest("run", "--trace", cwd=project, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_SERVICE_NAME": "from-otel",
            "ATTEST_TRACING__SERVICE_NAME": "from-attest"})
        assert proc.returncode == 0, proc.stderr
        assert by_name(got.spans)["RUN p"]["service"] == "from-attest"


def test_otel_sdk_disabled_turns_off_configured_tracing_but_not_the_flag(project: Path
                                                                         ) -> None:
    pipeline(project, """
        tracing:
          enabled: true
          exporter: {type: file, endpoint: spans.jsonl}
    """, steps=OK_STEPS)
    proc = attest("run", cwd=project, env={"OTEL_SDK_DISABLED": "true"})
    assert proc.returncode == 0, proc.stderr
    assert exported(project) == []
    proc = attest("run", "--trace", cwd=project, env={"OTEL_SDK_DISABLED": "true"})
    assert proc.returncode == 0, proc.stderr
    assert "RUN build-test-deploy" in by_name(exported(project))


def test_tracing_off_imports_no_opentelemetry(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true'}\n")
    code = ("import sys\nfrom attest_cli.cli.entry import main\nsys.argv = ['attest', 'run']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('OTEL', sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                         text=True, timeout=60)
    assert "OTEL []" in out.stdout, out.stdout + out.stderr


# -- a collector that is down ----------------------------------------------------------------

@contextmanager
def black_hole() -> Iterator[int]:
    """Accepts TCP connections (kernel backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.mark.parametrize(("exporter", "protocol", "silent"), [
    ("otlp", "http/protobuf", True), ("otlp", "grpc", True), ("jaeger", "", True),
    ("otlp", "http/protobuf", False),
])
def test_dead_collector_warns_once_keeps_exit_code_and_is_bounded(
        project: Path, exporter: str, protocol: str, silent: bool) -> None:
    with black_hole() as hole:
        port = hole if silent else free_port()  # silent: hangs; else: connection refused
        path = "/api/traces" if exporter == "jaeger" else ""
        proto = f"\n                protocol: {protocol}" if protocol else ""
        tracing = f"""
            tracing:
              exporter:
                type: {exporter}
                endpoint: http://127.0.0.1:{port}{path}
                timeout: 1s{proto}
        """
        pipeline(project, tracing, steps=OK_STEPS)
        t0 = time.monotonic()
        proc = attest("run", "--trace", cwd=project, timeout=60)
        elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    warnings = [x for x in proc.stderr.splitlines() if "could not export" in x]
    assert len(warnings) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "opentelemetry" not in proc.stderr.lower()
    # bounded by exporter.timeout (1s) plus start-up; the SDK default would wait >= 10s
    assert elapsed < 8, elapsed


def test_failing_run_keeps_its_exit_code_with_a_dead_collector(project: Path) -> None:
    pipeline(project, f"""
        tracing:
          exporter: {{type: zipkin, endpoint: "http://127.0.0.1:{free_port()}/api/v2/spans",
                      timeout: 1s}}
    """, steps=FAILING_STEPS)
    proc = attest("run", "--trace", cwd=project)
    assert proc.returncode == 1
    assert sum("could not export" in x for x in proc.stderr.splitlines()) == 1


def test_console_exporter_writes_spans_to_stderr_not_stdout(project: Path) -> None:
    pipeline(project, "tracing:\n  exporter: {type: console}\n", steps=OK_STEPS)
    proc = attest("run", "--trace", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert '"name": "step one"' in proc.stderr
    assert "trace_id" not in proc.stdout


def test_root_span_carries_the_git_revision(project: Path) -> None:
    import subprocess

    pipeline(project, file_tracing(1.0, True), steps=OK_STEPS)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "attest.yaml"],
                 ["commit", "-q", "-m", "init"]):
        subprocess.run([*git, *args], cwd=project, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, check=True,
                          capture_output=True, text=True).stdout.strip()
    proc = attest("run", "--trace", cwd=project)
    assert proc.returncode == 0, proc.stderr
    root = by_name(exported(project))["RUN build-test-deploy"]
    assert root["attrs"]["vcs.ref.head.revision"] == head
    assert root["attrs"]["vcs.ref.head.name"] == "main"


def test_interrupted_run_ends_its_trace_as_cancelled(project: Path) -> None:
    import os
    import signal
    import subprocess

    pipeline(project, file_tracing(0.0, True), steps="""
        slow: {run: 'touch started; sleep 30'}
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTEST_", "OTEL_"))}
    env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    child = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "--trace"],
                             cwd=project, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (project / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130
    spans = by_name(exported(project))  # rate 0, but an interrupted run is an error: kept
    root = spans["RUN build-test-deploy"]
    assert root["error"] and root["attrs"]["cicd.pipeline.result"] == "cancellation"
    assert spans["step slow"]["error"]


@pytest.mark.parametrize("kind", ["otlp-http", "otlp-grpc", "zipkin", "jaeger-thrift"])
def test_exporter_headers_reach_the_collector(project: Path, kind: str) -> None:
    exporter, factory, extra = RECEIVERS[kind]
    with factory() as (got, endpoint):
        pipeline(project, seed_tracing(exporter, endpoint, extra
                                       + "\n            headers: {X-Tenant: acme}"),
                 steps=OK_STEPS)
        proc = attest("run", "--trace", cwd=project, env={"TRACEPARENT": SEED_TRACEPARENT})
        assert proc.returncode == 0, proc.stderr
    assert got.headers and all(h.get("x-tenant") == "acme" for h in got.headers)


def test_without_tracing_the_environment_traceparent_reaches_steps_untouched(project: Path
                                                                             ) -> None:
    pipeline(project, "", steps="one: {run: 'echo \"$TRACEPARENT\" > tp.txt'}")
    proc = attest("run", cwd=project, env={"TRACEPARENT": SEED_TRACEPARENT})
    assert proc.returncode == 0, proc.stderr
    assert (project / "tp.txt").read_text().strip() == SEED_TRACEPARENT
    assert last_report(project)["trace_id"] is None


def test_cached_steps_are_successful_spans_marked_as_cache_hits(project: Path) -> None:
    pipeline(project, file_tracing(1.0, True), steps="""
        one: {run: 'echo one > out.txt', outputs: [out.txt]}
    """)
    assert attest("run", "--trace", cwd=project).returncode == 0
    (project / "spans.jsonl").unlink()
    proc = attest("run", "--trace", cwd=project)
    assert proc.returncode == 0, proc.stderr
    step = by_name(exported(project))["step one"]
    assert step["attrs"]["cicd.pipeline.task.run.result"] == "success"
    assert step["attrs"]["attest.step.status"] == "cached"
    assert step["attrs"]["attest.step.cache_hit"] is True
    lookup = by_name(exported(project))["cache lookup"]
    assert lookup["parent_id"] == step["span_id"] and lookup["attrs"]["attest.cache.hit"]


def test_nested_runs_share_one_jsonl_file_without_losing_lines(project: Path) -> None:
    inner = project / "inner"
    inner.mkdir()
    shared = project / "all-spans.jsonl"
    tracing = f"""
        tracing:
          exporter: {{type: file, endpoint: "{shared}"}}
    """
    pipeline(inner, tracing, steps="""
        i1: {run: 'true'}
        i2: {run: 'true'}
    """)
    pipeline(project, tracing, steps=f"""
        outer1: {{run: '{sys.executable} -m attest_cli -C inner run --trace'}}
        outer2: {{run: '{sys.executable} -m attest_cli -C inner run --trace'}}
    """)
    proc = attest("run", "--trace", "-j", "2", cwd=project)
    assert proc.returncode == 0, proc.stderr
    spans = spans_from_file(shared.read_text())
    names = [s["name"] for s in spans]
    assert names.count("RUN build-test-deploy") == 3  # the outer run and two inner runs
    assert names.count("step i1") == 2 and names.count("step outer1") == 1
    assert len({s["trace_id"] for s in spans}) == 1


def test_otel_protocol_variable_selects_grpc(project: Path) -> None:
    write_pipeline(project, "name: p\nsteps:\n  a: {run: 'true'}\n")
    with otlp_grpc_receiver() as (got, endpoint):
        proc = attest("run", "--trace", cwd=project, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
        assert proc.returncode == 0, proc.stderr
    assert "RUN p" in by_name(got.spans)
    assert set(got.content_types) == {"application/grpc"}
