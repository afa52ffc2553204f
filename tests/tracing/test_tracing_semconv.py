"""Spans follow the OpenTelemetry CI/CD semantic conventions: attribute names and enum values
are taken from the installed ``opentelemetry-semantic-conventions`` package, not retyped."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from opentelemetry.semconv._incubating.attributes.cicd_attributes import (
    CICD_PIPELINE_ACTION_NAME,
    CICD_PIPELINE_NAME,
    CICD_PIPELINE_RESULT,
    CICD_PIPELINE_RUN_ID,
    CICD_PIPELINE_TASK_NAME,
    CICD_PIPELINE_TASK_RUN_RESULT,
    CicdPipelineActionNameValues,
    CicdPipelineResultValues,
    CicdPipelineTaskRunResultValues,
)
from opentelemetry.semconv._incubating.attributes.host_attributes import HOST_NAME
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.service_attributes import SERVICE_VERSION

from attest_cli import __version__
from tests.support import attest, write_pipeline

TASK = CicdPipelineTaskRunResultValues
PIPELINE = """
name: ci
steps:
  cached: {run: 'echo c > c.txt', outputs: [c.txt]}
  ok: {run: 'true'}
  fails: {run: 'exit 3'}
  slow: {run: 'sleep 20', timeout: 0.5}
  after: {run: 'true', needs: [fails]}
tracing:
  exporter: {type: file, endpoint: spans.jsonl}
"""


def spans(project: Path) -> dict[str, dict[str, Any]]:
    lines = (project / "spans.jsonl").read_text().splitlines()
    return {d["name"]: d for d in map(json.loads, lines)}


def test_task_results_error_types_and_the_root_follow_the_cicd_conventions(project: Path
                                                                           ) -> None:
    write_pipeline(project, PIPELINE)
    assert attest("run", "--trace", "--keep-going", cwd=project).returncode == 1
    (project / "spans.jsonl").unlink()
    proc = attest("run", "--trace", "--keep-going", cwd=project)  # `cached` now replays
    assert proc.returncode == 1, proc.stderr
    got = spans(project)
    action = CicdPipelineActionNameValues.RUN.value
    root = got[f"{action} ci"]  # "{action} {pipeline}"
    assert root["kind"] == "server"
    attrs = root["attributes"]
    assert attrs[CICD_PIPELINE_ACTION_NAME] == action
    assert attrs[CICD_PIPELINE_NAME] == "ci"
    assert attrs[CICD_PIPELINE_RUN_ID]
    assert attrs[CICD_PIPELINE_RESULT] == CicdPipelineResultValues.FAILURE.value
    assert attrs[ERROR_TYPE] == "exit_code_3"  # the first failed step's class of error
    assert root["resource"][HOST_NAME] == socket.gethostname()
    assert root["resource"][SERVICE_VERSION] == __version__
    assert HOST_NAME not in attrs and SERVICE_VERSION not in attrs

    def task(name: str) -> dict[str, Any]:
        span = got[f"step {name}"]
        assert span["attributes"][CICD_PIPELINE_TASK_NAME] == name
        assert span["kind"] == "internal"
        return dict(span["attributes"])

    results = {n: task(n)[CICD_PIPELINE_TASK_RUN_RESULT]
               for n in ("cached", "ok", "fails", "slow", "after")}
    assert results == {"cached": TASK.SUCCESS.value, "ok": TASK.SUCCESS.value,
                       "fails": TASK.FAILURE.value, "slow": TASK.TIMEOUT.value,
                       "after": TASK.SKIP.value}
    assert set(results.values()) <= {v.value for v in TASK}
    assert task("cached")["attest.step.cache_hit"] is True
    assert task("fails")[ERROR_TYPE] == "exit_code_3"
    assert task("slow")[ERROR_TYPE] == "timeout"
    for name in ("cached", "ok", "after"):
        assert ERROR_TYPE not in task(name)  # only failed tasks carry error.type


def test_run_results_map_onto_the_spec_enum() -> None:
    from attest_cli.engine.run_report import StepResult
    from attest_cli.tracing.tracer import RUN_RESULT, task_result

    spec = {v.value for v in CicdPipelineResultValues}
    assert set(RUN_RESULT.values()) <= spec
    assert RUN_RESULT["interrupted"] == CicdPipelineResultValues.CANCELLATION.value
    interrupted = StepResult(name="s", command="c", status="failure", exit_code=130,
                             reason="killed by interrupt")
    assert task_result(interrupted) == (TASK.CANCELLATION.value, "interrupted")
    lost = StepResult(name="s", command="c", status="failure", exit_code=None,
                      reason="internal error: boom")
    assert task_result(lost) == (TASK.ERROR.value, "internal")
    killed = StepResult(name="s", command="c", status="failure", exit_code=-9, signal=9)
    assert task_result(killed) == (TASK.FAILURE.value, "SIGKILL")
