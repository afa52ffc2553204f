"""A busy live-metrics port never stops a pipeline: ``attest run`` warns once and runs without
its live endpoint, whoever holds the port (another program, or ``attest serve``)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.metrics.helpers import get, start_attest, stop
from tests.support import attest, free_port, wait_for_port, write_pipeline

PIPELINE = """
name: busy
steps:
  build: {run: 'echo built > out.txt', outputs: [out.txt]}
  test: {run: 'true', needs: [build]}
"""


def live_on(port: int) -> dict[str, str]:
    return {"ATTEST_MONITORING__PROMETHEUS__ENABLED": "true",
            "ATTEST_MONITORING__PROMETHEUS__ENDPOINT": f"127.0.0.1:{port}"}


def assert_ran_and_warned_once(project: Path, proc: object, port: int) -> None:
    stderr = proc.stderr  # type: ignore[attr-defined]
    assert proc.returncode == 0, stderr  # type: ignore[attr-defined]
    assert (project / "out.txt").read_text() == "built\n"
    warnings = [x for x in stderr.splitlines() if "already in use" in x]
    assert len(warnings) == 1, stderr
    assert f"port {port}" in warnings[0] and "monitoring.prometheus.endpoint" in warnings[0]
    assert "Traceback" not in stderr
    history = json.loads(attest("history", "--format", "json", cwd=project).stdout)
    assert [r["status"] for r in history] == ["success"]


def test_a_port_held_by_another_listener_is_a_warning_not_a_failed_run(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = attest("run", cwd=project, env=live_on(port))
    assert_ran_and_warned_once(project, proc, port)


def test_a_run_beside_attest_serve_on_the_same_port_still_runs(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    port = free_port()
    serve = start_attest(project, "serve", "--endpoint", f"127.0.0.1:{port}")
    try:
        assert wait_for_port(port, 20), stop(serve)
        proc = attest("run", cwd=project, env=live_on(port))
        assert_ran_and_warned_once(project, proc, port)
        code, body = get(f"http://127.0.0.1:{port}/metrics")  # serve kept its port
        assert code == 200 and 'pipeline_executions_total{pipeline="busy",status="success"} 1.0' \
            in body
    finally:
        stop(serve)
