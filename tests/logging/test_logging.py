"""Structured logs (SPEC §5, seed §3): JSON lines on stderr, levels and their precedence."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support import attest, write_pipeline


def json_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_completion_event_has_the_seed_fields(project: Path) -> None:
    write_pipeline(project, "name: build-test-deploy\nsteps:\n  a: {run: 'true'}\n"
                            "  b: {run: 'true', needs: [a]}\n")
    proc = attest("run", "--log-format", "json", cwd=project)
    assert proc.returncode == 0
    done = [e for e in json_lines(proc.stderr) if e["message"] == "Pipeline execution completed"]
    assert len(done) == 1
    event = done[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", event["timestamp"])
    assert event["level"] == "INFO" and event["target"] == "attest::pipeline"
    f = event["fields"]
    assert f["pipeline"] == "build-test-deploy" and f["steps_total"] == 2
    assert f["steps_success"] == 2 and isinstance(f["duration_ms"], int)
    assert f["cache_hit_rate"] == 0.0


def test_failed_run_logs_execution_failed_at_error(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'exit 1'}\n")
    proc = attest("run", "--log-format", "json", cwd=project)
    events = json_lines(proc.stderr)
    failed = [e for e in events if e["message"] == "Pipeline execution failed"]
    assert failed and failed[0]["level"] == "ERROR"
    assert failed[0]["fields"]["steps_success"] == 0


def test_auto_format_is_json_when_stderr_is_not_a_terminal(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true'}\n")
    proc = attest("run", cwd=project)
    assert json_lines(proc.stderr), proc.stderr


def test_text_format_is_human(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true'}\n")
    proc = attest("run", "--log-format", "text", cwd=project)
    assert not json_lines(proc.stderr)
    assert "INFO  Pipeline execution completed" in proc.stderr
    assert "\033[" not in proc.stderr  # no colour when not a terminal


def levels_logged(proc_stderr: str) -> set[str]:
    return {e["level"] for e in json_lines(proc_stderr)}


def test_level_precedence_flag_over_env_over_config(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true'}\n")
    assert attest("config", "set", "log_level", "warn", cwd=project).returncode == 0
    # config: warn -> no INFO lines
    assert levels_logged(attest("run", "--log-format", "json", cwd=project).stderr) == set()
    # env beats config: debug -> DEBUG lines appear
    env = {"ATTEST_LOG_LEVEL": "debug"}
    assert "DEBUG" in levels_logged(attest("run", "--log-format", "json", cwd=project,
                                           env=env).stderr)
    # flag beats env
    out = attest("run", "--log-format", "json", "--log-level", "info", cwd=project, env=env)
    assert levels_logged(out.stderr) == {"INFO"}


def test_trace_level_shows_cache_and_step_detail(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true', inputs: [in.txt]}\n")
    (project / "in.txt").write_text("x\n")
    proc = attest("run", "--log-format", "json", "--log-level", "trace", cwd=project)
    events = json_lines(proc.stderr)
    messages = {e["message"] for e in events}
    assert {"Step started", "Step finished"} <= messages
    # the key's components, folded from the lookup's summary only for this log
    (components,) = [e for e in events if e["message"] == "cache key components"]
    assert components["fields"]["step"] == "a"
    assert components["fields"]["inputs"].startswith("1 file(s) ")
    assert components["fields"]["command"].startswith("blake3:")


def test_bad_env_log_level_is_a_config_error(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true'}\n")
    proc = attest("run", cwd=project, env={"ATTEST_LOG_LEVEL": "chatty"})
    assert proc.returncode == 2
    assert "ATTEST_LOG_LEVEL" in proc.stderr and "expected one of" in proc.stderr
