"""The run report's JSON: the steps go to orjson as objects, and mean what to_dict says."""

from __future__ import annotations

import json

import pytest

from attest_cli.engine.run_report import RunReport, StepResult, settle_times

pytestmark = pytest.mark.unit


def report(*steps: StepResult) -> RunReport:
    rep = RunReport(run_id="r", pipeline="p", pipeline_file="attest.yaml",
                    started_at=1796407061.0305583)
    rep.steps = list(steps)
    return rep


def test_the_json_is_to_dict_and_a_finished_step_is_to_the_microsecond() -> None:
    step = StepResult(name="a", command="cp a b", status="success", exit_code=0,
                      started_at=1796407061.0305583, finished_at=1796407061.0307231,
                      wall_seconds=0.00016498565673828125, cpu_user_seconds=0.0011234567,
                      outputs=[{"path": "b", "hash": "blake3:00"}], needs=["z"])
    settle_times(step)
    rep = report(step, StepResult(name="s", command="true", reason="skipped: why"))
    data = json.loads(rep.to_json())
    assert data == json.loads(json.dumps(rep.to_dict()))
    assert list(data["steps"][0]) == list(rep.to_dict()["steps"][0])  # the same key order
    first = data["steps"][0]
    assert (first["wall_seconds"], first["cpu_user_seconds"]) == (0.000165, 0.001123)
    assert first["started_at"] == 1796407061.030558
    assert data["steps_total"] == 2 and data["schema"] == "attest.run-report"


def test_a_name_that_is_not_utf8_still_writes_the_steps() -> None:
    rep = report(StepResult(name="a", command="cat caf\udce9.txt", status="success"))
    assert json.loads(rep.to_json())["steps"][0]["command"] == "cat caf\udce9.txt"
