"""``attest run`` end to end: real subprocess pipelines, as a user runs them."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from tests.e2e.helpers import alive, last_report, start_run, steps_by_name
from tests.support import attest, wait_for, write_pipeline


def test_independent_steps_overlap_in_time_with_parallelism(project: Path) -> None:
    # a rendezvous, not sleeps: each step ends only once the other has started, so the run
    # can only succeed if they overlap (the timeout turns a serialised run into a failure)
    write_pipeline(project, """
        steps:
          a: {run: 'touch a.up; until [ -e b.up ]; do sleep 0.01; done', timeout: 30}
          b: {run: 'touch b.up; until [ -e a.up ]; do sleep 0.01; done', timeout: 30}
    """)
    assert attest("run", "-j", "2", cwd=project).returncode == 0
    s = steps_by_name(last_report(project))
    assert s["a"]["started_at"] < s["b"]["finished_at"]
    assert s["b"]["started_at"] < s["a"]["finished_at"]
    assert {s["a"]["slot"], s["b"]["slot"]} == {0, 1}

    write_pipeline(project, """
        steps:
          a: {run: 'true'}
          b: {run: 'true'}
    """)
    assert attest("run", "-j", "1", cwd=project).returncode == 0
    s = steps_by_name(last_report(project))
    first, second = sorted(s.values(), key=lambda x: x["started_at"])
    assert second["started_at"] >= first["finished_at"]


def test_dependencies_run_in_order(project: Path) -> None:
    write_pipeline(project, """
        steps:
          test: {run: 'cat built.txt > tested.txt', needs: [build]}
          build: {run: 'echo artefact > built.txt'}
    """)
    proc = attest("run", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (project / "tested.txt").read_text() == "artefact\n"


def test_failure_skips_dependents_and_stops_new_work(project: Path) -> None:
    write_pipeline(project, """
        steps:
          bad: {run: 'echo boom; exit 3'}
          after: {run: 'touch after', needs: [bad]}
          other: {run: 'touch other', needs: [gate]}
          gate: {run: 'true'}
    """)
    # -j 1: bad (first in the file) fails before gate may start; no race with a sleep
    proc = attest("run", "-j", "1", cwd=project)
    assert proc.returncode == 1
    assert "pipeline 'proj' failed: bad" in proc.stderr
    s = steps_by_name(last_report(project))
    assert s["bad"]["status"] == "failure" and s["bad"]["exit_code"] == 3
    assert s["after"]["status"] == "skipped"
    assert "needs 'bad'" in s["after"]["reason"]
    assert s["other"]["status"] == "skipped"  # not started after the failure
    assert not (project / "after").exists() and not (project / "other").exists()
    assert "boom" in proc.stderr  # the failing step's output is shown


def test_keep_going_runs_everything_not_depending_on_the_failure(project: Path) -> None:
    write_pipeline(project, """
        steps:
          bad: {run: 'exit 1'}
          after: {run: 'touch after', needs: [bad]}
          other: {run: 'touch other', needs: [gate]}
          gate: {run: 'true'}
    """)
    proc = attest("run", "-j", "2", "--keep-going", cwd=project)
    assert proc.returncode == 1
    s = steps_by_name(last_report(project))
    assert s["other"]["status"] == "success" and (project / "other").exists()
    assert s["after"]["status"] == "skipped" and not (project / "after").exists()


def test_step_timeout_kills_the_process_group(project: Path) -> None:
    write_pipeline(project, """
        steps:
          slow:
            run: 'sleep 30 & echo $! > child.pid; wait'
            timeout: 0.5
    """)
    t0 = time.monotonic()
    proc = attest("run", cwd=project)
    assert proc.returncode == 1
    assert time.monotonic() - t0 < 20
    s = steps_by_name(last_report(project))["slow"]
    assert s["status"] == "failure" and s["timed_out"] is True
    assert s["reason"] == "timed out after 0.5s"
    child = int((project / "child.pid").read_text())
    assert wait_for(lambda: not alive(child), 5), "background child survived the timeout"


def test_global_timeout_applies_to_steps_without_their_own(project: Path) -> None:
    write_pipeline(project, """
        steps:
          slow: {run: sleep 30}
          own: {run: sleep 0.1, timeout: 10}
    """)
    proc = attest("run", "--timeout", "0.3", "--keep-going", cwd=project)
    s = steps_by_name(last_report(project))
    assert proc.returncode == 1
    assert s["slow"]["timed_out"] and s["own"]["status"] == "success"


def test_sigint_kills_running_steps_records_the_run_and_exits_130(project: Path) -> None:
    write_pipeline(project, """
        steps:
          hang: {run: 'sleep 60 & echo $! > sleep.pid; wait'}
          later: {run: 'touch later', needs: [hang]}
    """)
    proc = start_run(project)
    assert wait_for(lambda: (project / "sleep.pid").exists() and
                    (project / "sleep.pid").read_text().strip() != "", 20)
    sleeper = int((project / "sleep.pid").read_text())
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert wait_for(lambda: not alive(sleeper), 5), "the step's sleep was orphaned"
    report = last_report(project)
    assert report["status"] == "interrupted" and report["interrupted_by"] == 2
    s = steps_by_name(report)
    assert s["hang"]["status"] == "failure"
    assert s["later"]["status"] == "skipped" and not (project / "later").exists()


def test_sigterm_exits_143(project: Path) -> None:
    write_pipeline(project, "steps:\n  hang: {run: 'echo started > started; sleep 60'}\n")
    proc = start_run(project)
    assert wait_for(lambda: (project / "started").exists(), 20)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert last_report(project)["status"] == "interrupted"


def test_resource_figures_are_recorded_per_step(project: Path) -> None:
    py = sys.executable
    touch = "b = bytearray(80 * 1024 * 1024); b[::4096] = bytes(len(b[::4096]))"
    write_pipeline(project, f"""
        steps:
          memory: {{run: "{py} -c '{touch}'"}}
          cpu: {{run: "{py} -c 'sum(i * i for i in range(3_000_000))'"}}
    """)
    assert attest("run", cwd=project).returncode == 0
    s = steps_by_name(last_report(project))
    assert s["memory"]["max_rss_bytes"] > 80 * 1024 * 1024
    assert s["memory"]["max_rss_bytes"] > s["memory"]["max_rss_floor_bytes"]  # exact figure
    assert s["cpu"]["cpu_user_seconds"] > 0.05
    for step in s.values():
        assert step["wall_seconds"] > 0
        assert step["cpu_system_seconds"] >= 0


def test_output_is_captured_to_a_log_file_per_step(project: Path) -> None:
    write_pipeline(project, """
        steps:
          talk: {run: 'echo to-stdout; echo to-stderr >&2'}
    """)
    proc = attest("run", cwd=project)
    assert proc.stdout == ""  # stdout stays clean for machine output
    s = steps_by_name(last_report(project))["talk"]
    log = Path(s["log_file"]).read_text()
    assert "to-stdout" in log and "to-stderr" in log
    assert "[talk] to-stdout" in proc.stderr


def test_environment_is_merged_pipeline_then_step(project: Path) -> None:
    write_pipeline(project, """
        env: {A: pipeline, B: pipeline}
        steps:
          show: {run: 'echo "$A $B $AMBIENT $ATTEST_STEP" > env.txt', env: {B: step}}
    """)
    assert attest("run", cwd=project, env={"AMBIENT": "ambient"}).returncode == 0
    assert (project / "env.txt").read_text() == "pipeline step ambient show\n"


def test_secret_values_are_masked_in_output_logs_and_report(project: Path) -> None:
    write_pipeline(project, """
        steps:
          leak:
            run: 'echo "token is $PYPI_TOKEN"'
            secrets: [PYPI_TOKEN]
    """)
    proc = attest("run", "--log-format", "json", cwd=project, env={"PYPI_TOKEN": "s3cr3t-value"})
    assert proc.returncode == 0
    assert "s3cr3t-value" not in proc.stderr
    assert "token is ***" in proc.stderr
    report_text = next((project / ".attest" / "runs").glob("*.json")).read_text()
    log_text = Path(steps_by_name(json.loads(report_text))["leak"]["log_file"]).read_text()
    assert "s3cr3t-value" not in report_text and "s3cr3t-value" not in log_text
    assert "token is ***" in log_text


def test_step_selection_runs_needs_only(project: Path) -> None:
    write_pipeline(project, """
        steps:
          a: {run: touch a}
          b: {run: touch b, needs: [a]}
          c: {run: touch c}
    """)
    assert attest("run", "--step", "b", cwd=project).returncode == 0
    assert (project / "a").exists() and (project / "b").exists()
    assert not (project / "c").exists()
    assert [s["name"] for s in last_report(project)["steps"]] == ["a", "b"]


def test_dry_run_executes_nothing(project: Path) -> None:
    write_pipeline(project, """
        steps:
          a: {run: touch a}
          b: {run: touch b, needs: [a], timeout: 5}
    """)
    proc = attest("run", "--dry-run", cwd=project)
    assert proc.returncode == 0
    assert "[1] a: touch a" in proc.stdout and "[2] b: touch b  needs: a" in proc.stdout
    assert not (project / "a").exists() and not (project / ".attest" / "runs").exists()


def test_list_form_of_steps(project: Path) -> None:
    write_pipeline(project, """
        steps:
          - name: one
            run: echo 1 > one
          - name: two
            run: cat one > two
            needs: [one]
    """)
    assert attest("run", cwd=project).returncode == 0
    assert (project / "two").read_text() == "1\n"


def test_report_file_has_the_documented_schema(project: Path) -> None:
    write_pipeline(project, "name: demo\nsteps:\n  a: {run: 'true'}\n")
    assert attest("run", "--report", "out/report.json", cwd=project).returncode == 0
    rep = json.loads((project / "out" / "report.json").read_text())
    assert rep["schema"] == "attest.run-report" and rep["schema_version"] == 1
    assert rep["pipeline"] == "demo" and rep["status"] == "success" and rep["exit_code"] == 0
    assert rep["steps_total"] == 1 and rep["steps_success"] == 1
    step = rep["steps"][0]
    for key in ("name", "command", "status", "exit_code", "wall_seconds", "cpu_user_seconds",
                "cpu_system_seconds", "max_rss_bytes", "log_file"):
        assert key in step
    assert rep == last_report(project)


def test_working_dir_option_runs_elsewhere(project: Path, tmp_path: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'pwd > where.txt'}\n")
    proc = attest("-C", str(project), "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (project / "where.txt").read_text().strip() == str(project.resolve())
    bad = attest("-C", str(tmp_path / "missing"), "run", cwd=tmp_path)
    assert bad.returncode == 2 and "not a directory" in bad.stderr


def test_concurrent_runs_in_one_project_keep_separate_records(project: Path) -> None:
    # each run's step waits until all three have started: the runs really overlap
    write_pipeline(project, """
        steps:
          a:
            run: 'mkdir -p up && touch up/$ATTEST_RUN_ID &&
                  until [ $(ls up | wc -l) -ge 3 ]; do sleep 0.01; done; echo $ATTEST_RUN_ID'
            cache: false
            timeout: 60
    """)
    procs = [start_run(project) for _ in range(3)]
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    reports = [json.loads(p.read_text()) for p in (project / ".attest" / "runs").glob("*.json")]
    assert len({r["run_id"] for r in reports}) == 3
    for r in reports:
        log = Path(r["steps"][0]["log_file"]).read_text()
        assert log.strip() == r["run_id"]


def test_steps_get_default_signal_dispositions(project: Path) -> None:
    """Python ignores SIGPIPE; a step must not inherit that (`yes | head` must just end)."""
    write_pipeline(project, """
        steps:
          here: {run: 'yes | head -n 1 > here.txt; grep SigIgn /proc/self/status > ign.txt'}
    """)
    proc = attest("run", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (project / "here.txt").read_text() == "y\n"
    assert "Broken pipe" not in proc.stderr
    ignored = int((project / "ign.txt").read_text().split()[1], 16)
    assert not ignored & (1 << (13 - 1)), "SIGPIPE is ignored in the step"
