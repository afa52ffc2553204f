"""Issue 14: what a run leaves under .attest/ - no empty log files, a report written twice,
and retention of old runs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import attest, write_pipeline


def reports(project: Path) -> list[Path]:
    return sorted((project / ".attest" / "runs").glob("*.json"))


def log_files(project: Path) -> list[Path]:
    return sorted(p for p in (project / ".attest" / "logs").rglob("*") if p.is_file())


def test_no_empty_log_files_and_readers_take_a_missing_log_as_empty(project: Path) -> None:
    write_pipeline(project, """
        steps:
          silent: {run: 'true', outputs: [a.txt], inputs: [], cache: true}
          quiet_fail: {run: 'exit 3', cache: false}
          talk: {run: 'echo hello', cache: false}
    """)
    (project / "attest.yaml").write_text((project / "attest.yaml").read_text().replace(
        "run: 'true'", "run: 'touch a.txt'"))
    first = attest("run", "--keep-going", "--junit", "junit.xml", cwd=project)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    second = attest("run", "--keep-going", cwd=project)  # silent is restored from the cache
    assert second.returncode == 1, second.stderr
    files = log_files(project)
    assert [p.name for p in files] == ["talk.log", "talk.log"]
    assert all(p.read_text() == "hello\n" for p in files)
    steps = {s["name"]: s for s in json.loads(reports(project)[-1].read_text())["steps"]}
    assert steps["silent"]["status"] == "cached"
    junit = (project / "junit.xml").read_text()
    assert 'name="quiet_fail"' in junit and "exit code 3" in junit


def test_the_report_is_written_when_the_run_starts_and_ends_not_per_step(project: Path) -> None:
    # every step records the report file's identity and modification time as it runs
    probe = "stat -c '%i %y' .attest/runs/*.json >> seen.txt"
    needs = [""] + [f", needs: [s{i}]" for i in range(7)]
    steps = "\n".join(f"  s{i}: {{run: \"{probe}\", cache: false{needs[i]}}}" for i in range(8))
    (project / "attest.yaml").write_text(f"steps:\n{steps}\n")
    proc = attest("run", "-j", "1", cwd=project)
    assert proc.returncode == 0, proc.stderr
    seen = (project / "seen.txt").read_text().splitlines()
    assert len(seen) == 8 and len(set(seen)) == 1, seen  # unchanged while steps ran
    (report,) = reports(project)
    assert json.loads(report.read_text())["status"] == "success"  # rewritten at the end


def test_the_report_records_no_log_path_for_a_silent_step(project: Path) -> None:
    write_pipeline(project, """
        steps:
          silent: {run: 'true'}
          talk: {run: 'echo hi'}
    """)
    assert attest("run", cwd=project).returncode == 0
    steps = {s["name"]: s for s in json.loads(reports(project)[-1].read_text())["steps"]}
    assert steps["silent"]["log_file"] is None
    assert Path(steps["talk"]["log_file"]).read_text() == "hi\n"
    for s in steps.values():  # times to the microsecond, not to 17 digits
        for key in ("started_at", "finished_at", "wall_seconds", "cpu_user_seconds",
                    "cpu_system_seconds"):
            assert round(s[key], 6) == s[key], (key, s[key])


def _running_report(project: Path, run_id: str) -> Path:
    """The record of a run still in progress (another attest process), with its logs."""
    path = project / ".attest" / "runs" / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": "attest.run-report", "schema_version": 1,
                                "run_id": run_id, "pipeline": "p", "pipeline_file": "x",
                                "started_at": 1.0, "finished_at": None, "status": "running",
                                "steps": []}, separators=(",", ":")))
    logs = project / ".attest" / "logs" / run_id
    logs.mkdir(parents=True)
    (logs / "a.log").write_text("busy\n")
    return path


def test_retention_keeps_exactly_the_newest_n_runs_and_their_logs(project: Path) -> None:
    write_pipeline(project, """
        history: {keep_runs: 3}
        steps:
          talk: {run: 'echo hi', cache: false}
    """)
    running = _running_report(project, "20000101T000000.000Z-aaaaaa")  # oldest of all
    for _ in range(5):
        proc = attest("run", cwd=project)
        assert proc.returncode == 0, proc.stderr
    kept = [p for p in reports(project) if p != running]
    assert len(kept) == 3
    assert running.exists()  # a running run is never deleted, however old
    run_dirs = sorted(p.name for p in (project / ".attest" / "logs").iterdir())
    assert run_dirs == sorted([running.stem] + [p.stem for p in kept])
    newest = json.loads(kept[-1].read_text())
    assert newest["status"] == "success"


def test_keep_runs_zero_keeps_every_run(project: Path) -> None:
    write_pipeline(project, """
        history: {keep_runs: 0}
        steps:
          talk: {run: 'echo hi', cache: false}
    """)
    for _ in range(3):
        assert attest("run", cwd=project).returncode == 0
    assert len(reports(project)) == 3
